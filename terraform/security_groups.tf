# Least-privilege security groups: one rule a resource, sources named by security group.
# Only the load balancer accepts traffic from outside the VPC, on 443 alone. Egress to any
# address is allowed only on 443 (AWS APIs and SES through NAT or endpoints).

resource "aws_security_group" "alb" {
  name        = "${local.name}-alb"
  description = "Load balancer: HTTPS in from the allowed CIDRs, out to the api and dashboard tasks"
  vpc_id      = aws_vpc.this.id
}

resource "aws_vpc_security_group_ingress_rule" "alb_https" {
  for_each          = toset(var.alb_ingress_cidr_blocks)
  security_group_id = aws_security_group.alb.id
  description       = "HTTPS from ${each.value}"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = each.value
}

resource "aws_vpc_security_group_egress_rule" "alb_to_tasks" {
  for_each                     = local.public_services
  security_group_id            = aws_security_group.alb.id
  description                  = "To the ${each.key} tasks"
  ip_protocol                  = "tcp"
  from_port                    = each.value.port
  to_port                      = each.value.port
  referenced_security_group_id = aws_security_group.tasks.id
}

resource "aws_security_group" "tasks" {
  name        = "${local.name}-tasks"
  description = "ECS tasks: in from the load balancer only; out to PostgreSQL, Kafka and HTTPS"
  vpc_id      = aws_vpc.this.id
}

resource "aws_vpc_security_group_ingress_rule" "tasks_from_alb" {
  for_each                     = local.public_services
  security_group_id            = aws_security_group.tasks.id
  description                  = "${each.key} from the load balancer"
  ip_protocol                  = "tcp"
  from_port                    = each.value.port
  to_port                      = each.value.port
  referenced_security_group_id = aws_security_group.alb.id
}

resource "aws_security_group" "jobs" {
  name        = "${local.name}-jobs"
  description = "Lambda jobs: no inbound; out to PostgreSQL and HTTPS"
  vpc_id      = aws_vpc.this.id
}

# Tasks and jobs share their outbound needs.
locals {
  workload_security_groups = {
    tasks = aws_security_group.tasks.id
    jobs  = aws_security_group.jobs.id
  }
}

resource "aws_vpc_security_group_egress_rule" "workload_https" {
  for_each          = local.workload_security_groups
  security_group_id = each.value
  description       = "HTTPS to AWS APIs (ECR, logs, Secrets Manager, SES, S3) via NAT or endpoints"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_vpc_security_group_egress_rule" "workload_postgres" {
  for_each                     = local.workload_security_groups
  security_group_id            = each.value
  description                  = "PostgreSQL"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = aws_security_group.database.id
}

resource "aws_vpc_security_group_egress_rule" "tasks_kafka_msk" {
  count                        = local.create_msk ? 1 : 0
  security_group_id            = aws_security_group.tasks.id
  description                  = "Kafka (MSK, SASL/SCRAM over TLS)"
  ip_protocol                  = "tcp"
  from_port                    = 9096
  to_port                      = 9096
  referenced_security_group_id = aws_security_group.kafka[0].id
}

resource "aws_vpc_security_group_egress_rule" "tasks_kafka_existing" {
  for_each          = local.create_msk ? toset([]) : toset(var.kafka_cidr_blocks)
  security_group_id = aws_security_group.tasks.id
  description       = "Kafka (existing cluster) at ${each.value}"
  ip_protocol       = "tcp"
  from_port         = var.kafka_port
  to_port           = var.kafka_port
  cidr_ipv4         = each.value
}

resource "aws_security_group" "database" {
  name        = "${local.name}-database"
  description = "PostgreSQL: in from the tasks and the jobs only; no outbound"
  vpc_id      = aws_vpc.this.id
}

resource "aws_vpc_security_group_ingress_rule" "database_from_workloads" {
  for_each                     = local.workload_security_groups
  security_group_id            = aws_security_group.database.id
  description                  = "PostgreSQL from ${each.key}"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = each.value
}

resource "aws_security_group" "kafka" {
  count       = local.create_msk ? 1 : 0
  name        = "${local.name}-kafka"
  description = "MSK brokers: SASL/SCRAM over TLS from the tasks only"
  vpc_id      = aws_vpc.this.id
}

resource "aws_vpc_security_group_ingress_rule" "kafka_from_tasks" {
  count                        = local.create_msk ? 1 : 0
  security_group_id            = aws_security_group.kafka[0].id
  description                  = "Kafka SASL/SCRAM TLS from the tasks"
  ip_protocol                  = "tcp"
  from_port                    = 9096
  to_port                      = 9096
  referenced_security_group_id = aws_security_group.tasks.id
}

resource "aws_security_group" "endpoints" {
  name        = "${local.name}-endpoints"
  description = "VPC interface endpoints: HTTPS from the tasks and jobs"
  vpc_id      = aws_vpc.this.id
}

resource "aws_vpc_security_group_ingress_rule" "endpoints_from_workloads" {
  for_each                     = local.workload_security_groups
  security_group_id            = aws_security_group.endpoints.id
  description                  = "HTTPS from ${each.key}"
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
  referenced_security_group_id = each.value
}
