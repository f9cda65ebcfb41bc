# --- general -------------------------------------------------------------------------------------

variable "name" {
  description = "Prefix of every resource name (lowercase letters, digits and hyphens)."
  type        = string
  default     = "deloton"
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}$", var.name))
    error_message = "name must be 2-21 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "aws_region" {
  description = "AWS region to deploy into."
  type        = string
  default     = "eu-west-2"
}

variable "tags" {
  description = "Tags added to every resource (with Project and ManagedBy)."
  type        = map(string)
  default     = {}
}

variable "image_tag" {
  description = "Tag of the images pushed to both ECR repositories (immutable: use the git SHA)."
  type        = string
}

variable "cpu_architecture" {
  description = "CPU architecture of the images and of Fargate/Lambda: X86_64 or ARM64."
  type        = string
  default     = "X86_64"
  validation {
    condition     = contains(["X86_64", "ARM64"], var.cpu_architecture)
    error_message = "cpu_architecture must be X86_64 or ARM64."
  }
}

variable "log_retention_days" {
  description = "Days CloudWatch keeps the logs of services, jobs, MSK and VPC flow logs."
  type        = number
  default     = 365
}

# --- network -------------------------------------------------------------------------------------

variable "vpc_cidr" {
  description = "CIDR block of the VPC (a /16; subnets are /24 carved from it)."
  type        = string
  default     = "10.40.0.0/16"
}

variable "az_count" {
  description = "Availability zones to spread subnets, tasks, the database standby and MSK brokers over."
  type        = number
  default     = 3
  validation {
    condition     = var.az_count >= 2 && var.az_count <= 3
    error_message = "az_count must be 2 or 3 (the load balancer and RDS need two)."
  }
}

variable "enable_nat_gateway" {
  description = "NAT gateways for outbound traffic from private subnets (needed for SES and an external Kafka)."
  type        = bool
  default     = true
}

variable "single_nat_gateway" {
  description = "One shared NAT gateway (cheaper) instead of one per availability zone (survives an AZ loss)."
  type        = bool
  default     = true
}

variable "enable_vpc_endpoints" {
  description = "Interface endpoints (ECR, logs, Secrets Manager, STS, CloudWatch, KMS) and the S3 gateway endpoint."
  type        = bool
  default     = false
}

variable "alb_ingress_cidr_blocks" {
  description = "CIDR blocks allowed to reach the load balancer on 443."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "certificate_arn" {
  description = "ARN of the ACM certificate for the load balancer's HTTPS listener."
  type        = string
  validation {
    condition     = can(regex("^arn:aws[a-z-]*:acm:", var.certificate_arn))
    error_message = "certificate_arn must be an ACM certificate ARN."
  }
}

# --- database ------------------------------------------------------------------------------------

variable "db_engine_version" {
  description = "RDS PostgreSQL engine version (major.minor)."
  type        = string
  default     = "17.6"
}

variable "db_instance_class" {
  description = "RDS instance class."
  type        = string
  default     = "db.m7g.large"
}

variable "db_name" {
  description = "Name of the database the services use."
  type        = string
  default     = "deloton"
}

variable "db_username" {
  description = "Master user name; its password is created and rotated by RDS in Secrets Manager."
  type        = string
  default     = "deloton"
}

variable "db_allocated_storage" {
  description = "Initial storage of the database in GiB."
  type        = number
  default     = 100
}

variable "db_max_allocated_storage" {
  description = "Upper bound in GiB for storage autoscaling."
  type        = number
  default     = 500
}

variable "db_multi_az" {
  description = "A synchronous standby in a second availability zone."
  type        = bool
  default     = true
}

variable "db_backup_retention_days" {
  description = "Days of automated backups (point-in-time recovery window)."
  type        = number
  default     = 14
  validation {
    condition     = var.db_backup_retention_days >= 7 && var.db_backup_retention_days <= 35
    error_message = "db_backup_retention_days must be between 7 and 35."
  }
}

variable "db_performance_insights" {
  description = "Performance Insights (7 days, the free tier, encrypted with the project key)."
  type        = bool
  default     = true
}

variable "db_monitoring_interval" {
  description = "Seconds between Enhanced Monitoring samples (0 turns it off; 1, 5, 10, 15, 30 or 60)."
  type        = number
  default     = 60
  validation {
    condition     = contains([0, 1, 5, 10, 15, 30, 60], var.db_monitoring_interval)
    error_message = "db_monitoring_interval must be one of 0, 1, 5, 10, 15, 30, 60."
  }
}

# --- kafka ---------------------------------------------------------------------------------------

variable "kafka_bootstrap_servers" {
  description = "Bootstrap servers of an existing Kafka cluster; empty creates an MSK cluster."
  type        = string
  default     = ""
}

variable "kafka_credentials_secret_arn" {
  description = "Secrets Manager ARN of the existing cluster's SASL credentials (JSON: username, password); empty creates one."
  type        = string
  default     = ""
}

variable "kafka_credentials_version" {
  description = "Bump to generate and store a new SCRAM password (rotation); the password never enters the state."
  type        = number
  default     = 1
}

variable "kafka_security_protocol" {
  description = "Client security protocol: SASL_SSL (MSK with SCRAM), SSL or PLAINTEXT (existing clusters only)."
  type        = string
  default     = "SASL_SSL"
  validation {
    condition     = contains(["SASL_SSL", "SSL", "PLAINTEXT"], var.kafka_security_protocol)
    error_message = "kafka_security_protocol must be SASL_SSL, SSL or PLAINTEXT."
  }
}

variable "kafka_sasl_mechanism" {
  description = "SASL mechanism with SASL_SSL: SCRAM-SHA-512 (MSK) or SCRAM-SHA-256 or PLAIN."
  type        = string
  default     = "SCRAM-SHA-512"
}

variable "kafka_cidr_blocks" {
  description = "CIDR blocks of an existing cluster's brokers (egress from the tasks); unused with MSK."
  type        = list(string)
  default     = []
}

variable "kafka_port" {
  description = "Broker port of an existing cluster; unused with MSK (9096, SASL/SCRAM over TLS)."
  type        = number
  default     = 9096
}

variable "kafka_replication_factor" {
  description = "Replication factor of the topics the services create on an existing cluster (MSK: min(3, brokers))."
  type        = number
  default     = 3
}

variable "kafka_topic_partitions" {
  description = "Partitions of the topics the services create: the most ingest tasks that can share the work."
  type        = number
  default     = 12
}

variable "kafka_topic_raw" {
  description = "Topic the bikes write their raw log lines to."
  type        = string
  default     = "deloton"
}

variable "msk_kafka_version" {
  description = "Apache Kafka version of the MSK cluster."
  type        = string
  default     = "3.9.x"
}

variable "msk_instance_type" {
  description = "MSK broker instance type (one broker per availability zone)."
  type        = string
  default     = "kafka.m7g.large"
}

variable "msk_volume_size" {
  description = "EBS storage per MSK broker in GiB."
  type        = number
  default     = 100
}

# --- registry and services -----------------------------------------------------------------------

variable "ecr_keep_images" {
  description = "Tagged images each ECR repository keeps (older ones expire)."
  type        = number
  default     = 30
}

variable "ingest_desired_count" {
  description = "ingest tasks: the scale-out knob, at most kafka_topic_partitions."
  type        = number
  default     = 2
  validation {
    condition     = var.ingest_desired_count >= 1 && var.ingest_desired_count <= var.kafka_topic_partitions
    error_message = "ingest_desired_count must be between 1 and kafka_topic_partitions (extra tasks would sit idle)."
  }
}

variable "ingest_cpu" {
  description = "CPU units of an ingest task (1024 = 1 vCPU)."
  type        = number
  default     = 1024
}

variable "ingest_memory" {
  description = "Memory of an ingest task in MiB."
  type        = number
  default     = 2048
}

variable "api_min_count" {
  description = "Fewest api tasks."
  type        = number
  default     = 2
}

variable "api_max_count" {
  description = "Most api tasks autoscaling may run."
  type        = number
  default     = 6
}

variable "dashboard_min_count" {
  description = "Fewest dashboard tasks."
  type        = number
  default     = 2
}

variable "dashboard_max_count" {
  description = "Most dashboard tasks autoscaling may run."
  type        = number
  default     = 6
}

variable "autoscaling_cpu_target" {
  description = "Average CPU percentage the api and dashboard services are scaled to hold."
  type        = number
  default     = 60
}

# --- jobs, email, storage ------------------------------------------------------------------------

variable "retention_hours" {
  description = "Hours of full-resolution readings compress keeps in the daily schema."
  type        = number
  default     = 12
}

variable "email_domain" {
  description = "Domain SES sends from (its DKIM records must be published in DNS)."
  type        = string
}

variable "alert_email_sender" {
  description = "From address of the riders' heart-rate alerts (in email_domain)."
  type        = string
}

variable "report_email_sender" {
  description = "From address of the daily report (in email_domain)."
  type        = string
}

variable "report_recipients" {
  description = "Addresses the daily report is emailed to."
  type        = list(string)
}

variable "quality_email_sender" {
  description = "From address of the fleet health incident emails (in email_domain)."
  type        = string
}

variable "quality_recipients" {
  description = "Operations addresses emailed when a bike's data quality opens or clears an incident."
  type        = list(string)
}

variable "reports_retention_days" {
  description = "Days the reports bucket keeps a report."
  type        = number
  default     = 730
}

variable "access_log_retention_days" {
  description = "Days the logs bucket keeps load balancer and S3 access logs."
  type        = number
  default     = 90
}

# --- monitoring ----------------------------------------------------------------------------------

variable "alarm_emails" {
  description = "Addresses subscribed to the alarms topic (each must confirm the subscription)."
  type        = list(string)
  default     = []
}

variable "ingest_lag_alarm_seconds" {
  description = "Alarm when ingest is further behind the raw topic than this many seconds (MSK)."
  type        = number
  default     = 60
}

variable "http_5xx_alarm_threshold" {
  description = "Alarm when the load balancer counts more 5xx answers than this in 5 minutes."
  type        = number
  default     = 10
}
