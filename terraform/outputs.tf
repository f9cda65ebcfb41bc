output "load_balancer_dns_name" {
  description = "DNS name of the load balancer: point the certificate's host name at it (CNAME or alias)."
  value       = aws_lb.this.dns_name
}

output "ecr_services_repository_url" {
  description = "Push docker/Dockerfile's image here, tagged with image_tag."
  value       = aws_ecr_repository.this["services"].repository_url
}

output "ecr_jobs_repository_url" {
  description = "Push docker/Dockerfile.lambda's image here, tagged with image_tag."
  value       = aws_ecr_repository.this["jobs"].repository_url
}

output "ecs_cluster_name" {
  description = "The ECS cluster of the services and the migration task."
  value       = aws_ecs_cluster.this.name
}

output "migrate_task_definition_arn" {
  description = "One-off migration task (scripts/migrate.sh runs it)."
  value       = aws_ecs_task_definition.migrate.arn
}

output "private_subnet_ids" {
  description = "Private subnets for one-off tasks."
  value       = aws_subnet.private[*].id
}

output "tasks_security_group_id" {
  description = "Security group for one-off tasks (reaches PostgreSQL and Kafka)."
  value       = aws_security_group.tasks.id
}

output "database_endpoint" {
  description = "Private address of the PostgreSQL instance."
  value       = aws_db_instance.this.address
}

output "database_secret_arn" {
  description = "Secrets Manager ARN of the RDS-managed master credentials."
  value       = local.db_secret_arn
}

output "kafka_bootstrap_servers" {
  description = "Bootstrap servers the services use (MSK SASL/SCRAM or the existing cluster)."
  value       = local.kafka_bootstrap
}

output "kafka_credentials_secret_arn" {
  description = "Secrets Manager ARN of the Kafka SASL credentials."
  value       = local.kafka_credentials_secret_arn
}

output "reports_bucket" {
  description = "S3 bucket of the daily reports."
  value       = aws_s3_bucket.reports.id
}

output "ses_dkim_tokens" {
  description = "Publish each as a CNAME <token>._domainkey.<email_domain> -> <token>.dkim.amazonses.com."
  value       = aws_sesv2_email_identity.domain.dkim_signing_attributes[0].tokens
}

output "alarms_topic_arn" {
  description = "SNS topic every alarm notifies."
  value       = aws_sns_topic.alarms.arn
}

output "job_function_names" {
  description = "Lambda functions of the scheduled jobs (invoke one by hand to test it)."
  value       = { for k, f in aws_lambda_function.job : k => f.function_name }
}
