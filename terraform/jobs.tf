# The scheduled jobs: compress every 10 minutes, the daily report at 07:00 Europe/London,
# fleet health (per-bike data quality, incidents and ops emails) every minute.
# Lambda functions from the jobs image, started by EventBridge Scheduler. A run that fails
# after the retries lands in the SQS dead-letter queue, and an alarm fires on any failure.

locals {
  image_jobs = "${aws_ecr_repository.this["jobs"].repository_url}:${var.image_tag}"

  jobs = {
    compress = {
      handler             = "services.compress.handler.handler"
      schedule            = "rate(10 minutes)"
      schedule_timezone   = "UTC"
      timeout             = 600
      memory              = 1024
      reserved_concurrent = 1 # compress takes a lock anyway; a second run would only skip
    }
    report = {
      handler             = "services.report.handler.handler"
      schedule            = "cron(0 7 * * ? *)"
      schedule_timezone   = "Europe/London"
      timeout             = 300
      memory              = 2048
      reserved_concurrent = 1
    }
    quality = {
      handler             = "services.quality.handler.handler"
      schedule            = "rate(1 minute)"
      schedule_timezone   = "UTC"
      timeout             = 120
      memory              = 1024
      reserved_concurrent = 1 # a lock makes a second run skip anyway
    }
  }

  job_environment = {
    compress = {
      RETENTION_HOURS = tostring(var.retention_hours)
    }
    report = {
      REPORT_SENDER     = var.report_email_sender
      REPORT_RECIPIENTS = join(",", var.report_recipients)
      REPORT_BUCKET     = aws_s3_bucket.reports.id
      REPORT_TIMEZONE   = "Europe/London"
      REPORT_DIR        = "/tmp/reports" # the only writable path in Lambda
    }
    quality = {
      QUALITY_SENDER     = var.quality_email_sender
      QUALITY_RECIPIENTS = join(",", var.quality_recipients)
    }
  }
  # Lambda cannot inject secrets: the function reads the RDS-managed secret by its ARN.
  job_common_environment = {
    DATABASE_URL        = local.database_url
    DATABASE_SECRET_ARN = local.db_secret_arn
    AUTO_MIGRATE        = "false"
  }
}

resource "aws_sqs_queue" "jobs_dlq" {
  name                      = "${local.name}-jobs-dlq"
  message_retention_seconds = 1209600 # 14 days to look at what failed
  kms_master_key_id         = aws_kms_key.main.arn
}

data "aws_iam_policy_document" "jobs_dlq" {
  statement {
    sid       = "SchedulerDeadLetters"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.jobs_dlq.arn]
    principals {
      type        = "Service"
      identifiers = ["scheduler.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_sqs_queue_policy" "jobs_dlq" {
  queue_url = aws_sqs_queue.jobs_dlq.id
  policy    = data.aws_iam_policy_document.jobs_dlq.json
}

resource "aws_cloudwatch_log_group" "job" {
  for_each          = local.jobs
  name              = "/aws/lambda/${local.name}-${each.key}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.main.arn
}

data "aws_iam_policy_document" "lambda_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "job" {
  for_each           = local.jobs
  name               = "${local.name}-job-${each.key}"
  assume_role_policy = data.aws_iam_policy_document.lambda_assume.json
}

data "aws_iam_policy_document" "job" {
  # checkov:skip=CKV_AWS_111: the only unconstrained actions are Lambda's VPC network-interface calls, which have no resource-level permissions
  # checkov:skip=CKV_AWS_356: as above: the ec2 network-interface actions accept only "*"
  for_each = local.jobs
  statement {
    sid       = "WriteLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.job[each.key].arn}:*"]
  }
  statement {
    sid       = "ReadDatabaseSecret"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [local.db_secret_arn]
  }
  statement {
    sid       = "UseKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.main.arn]
  }
  statement {
    sid       = "DeadLetters"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.jobs_dlq.arn]
  }
  statement {
    sid = "VpcNetworkInterfaces"
    actions = [
      "ec2:CreateNetworkInterface",
      "ec2:DescribeNetworkInterfaces",
      "ec2:DeleteNetworkInterface",
      "ec2:AssignPrivateIpAddresses",
      "ec2:UnassignPrivateIpAddresses",
    ]
    resources = ["*"] # Lambda's ENI calls have no resource-level permissions
  }
  dynamic "statement" {
    for_each = each.key == "report" ? [1] : []
    content {
      sid       = "StoreReports"
      actions   = ["s3:PutObject", "s3:GetObject"]
      resources = ["${aws_s3_bucket.reports.arn}/*"]
    }
  }
}

resource "aws_iam_role_policy" "job" {
  for_each = local.jobs
  name     = "run-${each.key}"
  role     = aws_iam_role.job[each.key].id
  policy   = data.aws_iam_policy_document.job[each.key].json
}

resource "aws_iam_role_policy" "report_send_email" {
  name   = "ses-send-from-identity"
  role   = aws_iam_role.job["report"].id
  policy = data.aws_iam_policy_document.ses_send.json
}

resource "aws_iam_role_policy" "quality_send_email" {
  name   = "ses-send-from-identity"
  role   = aws_iam_role.job["quality"].id
  policy = data.aws_iam_policy_document.ses_send.json
}

resource "aws_lambda_function" "job" {
  # checkov:skip=CKV_AWS_272: code signing does not apply to container images; ECR scans them and tags are immutable
  for_each                       = local.jobs
  function_name                  = "${local.name}-${each.key}"
  role                           = aws_iam_role.job[each.key].arn
  package_type                   = "Image"
  image_uri                      = local.image_jobs
  architectures                  = [var.cpu_architecture == "ARM64" ? "arm64" : "x86_64"]
  timeout                        = each.value.timeout
  memory_size                    = each.value.memory
  reserved_concurrent_executions = each.value.reserved_concurrent
  kms_key_arn                    = aws_kms_key.main.arn

  image_config {
    command = [each.value.handler]
  }

  environment {
    variables = merge(local.job_common_environment, local.job_environment[each.key])
  }

  vpc_config {
    subnet_ids         = aws_subnet.private[*].id
    security_group_ids = [aws_security_group.jobs.id]
  }

  dead_letter_config {
    target_arn = aws_sqs_queue.jobs_dlq.arn
  }

  tracing_config {
    mode = "Active"
  }

  logging_config {
    log_format = "Text" # the services already write one JSON object a line
    log_group  = aws_cloudwatch_log_group.job[each.key].name
  }
}

resource "aws_iam_role_policy_attachment" "job_xray" {
  for_each   = local.jobs
  role       = aws_iam_role.job[each.key].name
  policy_arn = "arn:${local.partition}:iam::aws:policy/AWSXRayDaemonWriteAccess"
}

# Failed asynchronous runs: two retries by Lambda, then the dead-letter queue.
resource "aws_lambda_function_event_invoke_config" "job" {
  for_each                     = local.jobs
  function_name                = aws_lambda_function.job[each.key].function_name
  maximum_retry_attempts       = 2
  maximum_event_age_in_seconds = 3600
}

resource "aws_iam_role" "scheduler" {
  name               = "${local.name}-scheduler"
  assume_role_policy = data.aws_iam_policy_document.scheduler_assume.json
}

data "aws_iam_policy_document" "scheduler_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["scheduler.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

data "aws_iam_policy_document" "scheduler" {
  statement {
    actions   = ["lambda:InvokeFunction"]
    resources = [for f in aws_lambda_function.job : f.arn]
  }
  statement {
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.jobs_dlq.arn]
  }
  statement {
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = [aws_kms_key.main.arn]
  }
}

resource "aws_iam_role_policy" "scheduler" {
  name   = "invoke-jobs"
  role   = aws_iam_role.scheduler.id
  policy = data.aws_iam_policy_document.scheduler.json
}

resource "aws_scheduler_schedule" "job" {
  for_each                     = local.jobs
  name                         = "${local.name}-${each.key}"
  schedule_expression          = each.value.schedule
  schedule_expression_timezone = each.value.schedule_timezone
  kms_key_arn                  = aws_kms_key.main.arn

  flexible_time_window {
    mode = "OFF"
  }

  target {
    arn      = aws_lambda_function.job[each.key].arn
    role_arn = aws_iam_role.scheduler.arn
    input    = jsonencode({ source = "schedule", job = each.key })

    retry_policy {
      maximum_retry_attempts       = 2
      maximum_event_age_in_seconds = 3600
    }

    dead_letter_config {
      arn = aws_sqs_queue.jobs_dlq.arn
    }
  }
}
