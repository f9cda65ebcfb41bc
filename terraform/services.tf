# ECS on Fargate: ingest, alerts, api and dashboard from the one service image; the command
# picks the service. Settings reach them as environment variables (the names of
# services.common.config.Settings) and secrets by ARN, injected by ECS at start.

locals {
  image_services = "${aws_ecr_repository.this["services"].repository_url}:${var.image_tag}"

  services = {
    ingest = {
      command       = ["ingest"]
      port          = 9101
      health_path   = "/metrics"
      cpu           = var.ingest_cpu
      memory        = var.ingest_memory
      desired_count = var.ingest_desired_count
      public        = false
    }
    alerts = {
      command       = ["alerts", "--replication-factor", tostring(local.kafka_replication_factor)]
      port          = 9102
      health_path   = "/metrics"
      cpu           = 512
      memory        = 1024
      desired_count = 1
      public        = false
    }
    api = {
      command       = ["api"]
      port          = 8000
      health_path   = "/api/health"
      cpu           = 512
      memory        = 1024
      desired_count = var.api_min_count
      public        = true
    }
    dashboard = {
      command       = ["dashboard"]
      port          = 8050
      health_path   = "/health"
      cpu           = 512
      memory        = 1024
      desired_count = var.dashboard_min_count
      public        = true
    }
  }
  public_services = { for name, svc in local.services : name => svc if svc.public }

  # Every service's settings; each name is a field of Settings (tests/deploy checks it).
  common_environment = {
    KAFKA_BOOTSTRAP_SERVERS        = local.kafka_bootstrap
    KAFKA_SECURITY_PROTOCOL        = var.kafka_security_protocol
    KAFKA_SASL_MECHANISM           = var.kafka_sasl_mechanism
    KAFKA_TOPIC_PARTITIONS         = tostring(var.kafka_topic_partitions)
    KAFKA_TOPIC_REPLICATION_FACTOR = tostring(local.kafka_replication_factor)
    TOPIC_RAW                      = var.kafka_topic_raw
    DATABASE_URL                   = local.database_url
    AUTO_MIGRATE                   = "false"
    AWS_REGION                     = local.region
  }
  service_environment = {
    ingest = {
      INGEST_METRICS_PORT = "9101"
      INGEST_GROUP        = "deloton-ingest"
    }
    alerts = {
      ALERTS_METRICS_PORT = "9102"
      EMAIL_SENDER        = var.alert_email_sender
    }
    api = {
      API_PORT        = "8000"
      API_PATH_PREFIX = "/api"
    }
    dashboard = {
      DASHBOARD_PORT = "8050"
    }
  }
  # Secrets by ARN (JSON key suffix): ECS reads them with the execution role at task start.
  common_secrets = {
    DATABASE_PASSWORD   = "${local.db_secret_arn}:password::"
    KAFKA_SASL_USERNAME = "${local.kafka_credentials_secret_arn}:username::"
    KAFKA_SASL_PASSWORD = "${local.kafka_credentials_secret_arn}:password::"
  }
  secret_arns = [local.db_secret_arn, local.kafka_credentials_secret_arn]
}

resource "aws_ecs_cluster" "this" {
  name = local.name

  setting {
    name  = "containerInsights"
    value = "enhanced"
  }
}

resource "aws_ecs_cluster_capacity_providers" "this" {
  cluster_name       = aws_ecs_cluster.this.name
  capacity_providers = ["FARGATE"]

  default_capacity_provider_strategy {
    capacity_provider = "FARGATE"
    weight            = 1
  }
}

resource "aws_cloudwatch_log_group" "service" {
  for_each          = merge(local.services, { migrate = {} })
  name              = "/${local.name}/ecs/${each.key}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.main.arn
}

# --- IAM: the execution role pulls images, writes logs and reads the two secrets; each task
# role holds only what its service calls (alerts: SES send from the one identity) -----------

data "aws_iam_policy_document" "ecs_tasks_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "execution" {
  name               = "${local.name}-ecs-execution"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

data "aws_iam_policy_document" "execution" {
  statement {
    sid       = "PullImages"
    actions   = ["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"]
    resources = [aws_ecr_repository.this["services"].arn]
  }
  statement {
    sid       = "RegistryLogin"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"] # GetAuthorizationToken has no resource-level permissions
  }
  statement {
    sid       = "WriteLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = [for g in aws_cloudwatch_log_group.service : "${g.arn}:*"]
  }
  statement {
    sid       = "ReadSecrets"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = local.secret_arns
  }
  statement {
    sid       = "DecryptSecrets"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.main.arn]
  }
}

resource "aws_iam_role_policy" "execution" {
  name   = "pull-log-secrets"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution.json
}

resource "aws_iam_role" "task" {
  for_each           = merge(local.services, { migrate = {} })
  name               = "${local.name}-${each.key}"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

resource "aws_iam_role_policy" "alerts_send_email" {
  name   = "ses-send-from-identity"
  role   = aws_iam_role.task["alerts"].id
  policy = data.aws_iam_policy_document.ses_send.json
}

# --- task definitions and services -----------------------------------------------------------

resource "aws_ecs_task_definition" "service" {
  for_each                 = local.services
  family                   = "${local.name}-${each.key}"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = each.value.cpu
  memory                   = each.value.memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task[each.key].arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.cpu_architecture
  }

  container_definitions = jsonencode([
    {
      name                   = each.key
      image                  = local.image_services
      command                = each.value.command
      essential              = true
      readonlyRootFilesystem = true
      user                   = "10001:10001"
      portMappings           = [{ containerPort = each.value.port, protocol = "tcp" }]
      environment = [
        for k, v in merge(local.common_environment, local.service_environment[each.key]) :
        { name = k, value = v }
      ]
      secrets = [for k, v in local.common_secrets : { name = k, valueFrom = v }]
      healthCheck = {
        command     = ["CMD", "python", "-m", "services.common.healthcheck"]
        interval    = 30
        timeout     = 5
        retries     = 3
        startPeriod = 60
      }
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = aws_cloudwatch_log_group.service[each.key].name
          awslogs-region        = local.region
          awslogs-stream-prefix = each.key
        }
      }
      # The root filesystem is read-only; the state directory and the outbox are scratch.
      mountPoints = [{ sourceVolume = "scratch", containerPath = "/app", readOnly = false }]
      stopTimeout = 60
    }
  ])

  volume {
    name = "scratch"
  }
}

resource "aws_ecs_service" "service" {
  for_each               = local.services
  name                   = each.key
  cluster                = aws_ecs_cluster.this.id
  task_definition        = aws_ecs_task_definition.service[each.key].arn
  desired_count          = each.value.desired_count
  launch_type            = "FARGATE"
  propagate_tags         = "SERVICE"
  enable_execute_command = false
  # For ingest, desired_count is the scale-out knob; more tasks than partitions sit idle.
  health_check_grace_period_seconds = each.value.public ? 60 : null

  network_configuration {
    subnets          = aws_subnet.private[*].id
    security_groups  = [aws_security_group.tasks.id]
    assign_public_ip = false
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  dynamic "load_balancer" {
    for_each = each.value.public ? [each.key] : []
    content {
      target_group_arn = aws_lb_target_group.service[each.key].arn
      container_name   = each.key
      container_port   = each.value.port
    }
  }

  lifecycle {
    # Autoscaling owns the count of api and dashboard once they run.
    ignore_changes = [desired_count]
  }

  depends_on = [aws_lb_listener.https]
}

# --- one-off migration: `terraform/scripts/migrate.sh` runs it before the services start ------

resource "aws_ecs_task_definition" "migrate" {
  family                   = "${local.name}-migrate"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = 256
  memory                   = 512
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task["migrate"].arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.cpu_architecture
  }

  container_definitions = jsonencode([
    {
      name                   = "migrate"
      image                  = local.image_services
      command                = ["migrate"]
      essential              = true
      readonlyRootFilesystem = true
      user                   = "10001:10001"
      environment            = [for k, v in local.common_environment : { name = k, value = v }]
      secrets                = [for k, v in local.common_secrets : { name = k, valueFrom = v }]
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = aws_cloudwatch_log_group.service["migrate"].name
          awslogs-region        = local.region
          awslogs-stream-prefix = "migrate"
        }
      }
    }
  ])
}

# --- load balancer: HTTPS only; /api/* to the api, everything else to the dashboard ------------

resource "aws_lb" "this" {
  # checkov:skip=CKV2_AWS_28: a WAF web ACL is an operator's choice (cost, rules); attach one with aws_wafv2_web_acl_association
  name                       = local.name
  load_balancer_type         = "application"
  internal                   = false
  security_groups            = [aws_security_group.alb.id]
  subnets                    = aws_subnet.public[*].id
  drop_invalid_header_fields = true
  enable_deletion_protection = true

  access_logs {
    bucket  = aws_s3_bucket.logs.id
    prefix  = "alb"
    enabled = true
  }

  depends_on = [aws_s3_bucket_policy.logs] # the load balancer checks it may write there
}

resource "aws_lb_target_group" "service" {
  # checkov:skip=CKV_AWS_378: TLS ends at the load balancer; inside the VPC it forwards HTTP to tasks that only it may reach (security group)
  for_each             = local.public_services
  name                 = "${local.name}-${each.key}"
  port                 = each.value.port
  protocol             = "HTTP"
  target_type          = "ip"
  vpc_id               = aws_vpc.this.id
  deregistration_delay = 30

  health_check {
    path                = each.value.health_path
    matcher             = "200"
    interval            = 15
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }
}

resource "aws_lb_listener" "https" {
  load_balancer_arn = aws_lb.this.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  certificate_arn   = var.certificate_arn

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.service["dashboard"].arn
  }
}

resource "aws_lb_listener_rule" "api" {
  listener_arn = aws_lb_listener.https.arn
  priority     = 10

  action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.service["api"].arn
  }

  condition {
    path_pattern {
      values = ["/api", "/api/*"]
    }
  }
}

# --- autoscaling: api and dashboard follow CPU ------------------------------------------------

locals {
  autoscaled = {
    api       = { min = var.api_min_count, max = var.api_max_count }
    dashboard = { min = var.dashboard_min_count, max = var.dashboard_max_count }
  }
}

resource "aws_appautoscaling_target" "service" {
  for_each           = local.autoscaled
  service_namespace  = "ecs"
  resource_id        = "service/${aws_ecs_cluster.this.name}/${aws_ecs_service.service[each.key].name}"
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = each.value.min
  max_capacity       = each.value.max
}

resource "aws_appautoscaling_policy" "cpu" {
  for_each           = local.autoscaled
  name               = "${local.name}-${each.key}-cpu"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.service[each.key].service_namespace
  resource_id        = aws_appautoscaling_target.service[each.key].resource_id
  scalable_dimension = aws_appautoscaling_target.service[each.key].scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value       = var.autoscaling_cpu_target
    scale_in_cooldown  = 300
    scale_out_cooldown = 60
    predefined_metric_specification {
      predefined_metric_type = "ECSServiceAverageCPUUtilization"
    }
  }
}
