# Alarms to one encrypted SNS topic: ingest falling behind, alert emails failing, 5xx from the
# load balancer or the api/dashboard, failed job runs and dead letters.

resource "aws_sns_topic" "alarms" {
  name              = "${local.name}-alarms"
  kms_master_key_id = aws_kms_key.main.arn
}

resource "aws_sns_topic_subscription" "alarm_email" {
  for_each  = toset(var.alarm_emails)
  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "email"
  endpoint  = each.value
}

locals {
  alarm_actions = [aws_sns_topic.alarms.arn]
}

# --- ingest lag ------------------------------------------------------------------------------

# MSK publishes each consumer group's lag (enhanced monitoring); an existing cluster's lag is
# watched where that cluster is monitored, and here by tasks not running (below).
resource "aws_cloudwatch_metric_alarm" "ingest_lag" {
  count               = local.create_msk ? 1 : 0
  alarm_name          = "${local.name}-ingest-lag"
  alarm_description   = "ingest is more than ${var.ingest_lag_alarm_seconds} s behind the raw topic"
  namespace           = "AWS/Kafka"
  metric_name         = "EstimatedMaxTimeLag"
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 5
  threshold           = var.ingest_lag_alarm_seconds
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "breaching"
  dimensions = {
    "Cluster Name"   = aws_msk_cluster.this[0].cluster_name
    "Consumer Group" = local.service_environment.ingest.INGEST_GROUP
    "Topic"          = var.kafka_topic_raw
  }
  alarm_actions = local.alarm_actions
  ok_actions    = local.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "service_not_running" {
  for_each            = local.services
  alarm_name          = "${local.name}-${each.key}-not-running"
  alarm_description   = "${each.key} has fewer running tasks than asked for"
  namespace           = "ECS/ContainerInsights"
  metric_name         = "RunningTaskCount"
  statistic           = "Minimum"
  period              = 60
  evaluation_periods  = 5
  threshold           = 1
  comparison_operator = "LessThanThreshold"
  treat_missing_data  = "breaching"
  dimensions = {
    ClusterName = aws_ecs_cluster.this.name
    ServiceName = aws_ecs_service.service[each.key].name
  }
  alarm_actions = local.alarm_actions
  ok_actions    = local.alarm_actions
}

# --- alert failures ----------------------------------------------------------------------------

# The alerts service logs one JSON line per email that failed for good.
resource "aws_cloudwatch_log_metric_filter" "alert_email_failed" {
  name           = "${local.name}-alert-email-failed"
  log_group_name = aws_cloudwatch_log_group.service["alerts"].name
  pattern        = "{ $.msg = \"alert email failed\" }"

  metric_transformation {
    name          = "AlertEmailFailed"
    namespace     = "Deloton"
    value         = "1"
    default_value = "0"
  }
}

# ... and one line per alert that could not be delivered before it went stale (expired).
resource "aws_cloudwatch_log_metric_filter" "alert_expired" {
  name           = "${local.name}-alert-expired"
  log_group_name = aws_cloudwatch_log_group.service["alerts"].name
  pattern        = "{ $.msg = \"alert expired undelivered\" }"

  metric_transformation {
    name          = "AlertExpired"
    namespace     = "Deloton"
    value         = "1"
    default_value = "0"
  }
}

resource "aws_cloudwatch_log_metric_filter" "alerts_errors" {
  name           = "${local.name}-alerts-errors"
  log_group_name = aws_cloudwatch_log_group.service["alerts"].name
  pattern        = "{ $.level = \"error\" }"

  metric_transformation {
    name          = "AlertsErrors"
    namespace     = "Deloton"
    value         = "1"
    default_value = "0"
  }
}

resource "aws_cloudwatch_metric_alarm" "alert_failures" {
  for_each = {
    AlertEmailFailed = "an alert email could not be delivered"
    AlertExpired     = "an alert went stale before SES accepted it (SES outage or throttling)"
    AlertsErrors     = "the alerts service logged errors (database or delivery)"
  }
  alarm_name          = "${local.name}-${each.key}"
  alarm_description   = each.value
  namespace           = "Deloton"
  metric_name         = each.key
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  depends_on = [
    aws_cloudwatch_log_metric_filter.alert_email_failed,
    aws_cloudwatch_log_metric_filter.alert_expired,
    aws_cloudwatch_log_metric_filter.alerts_errors,
  ]
}

# --- 5xx -----------------------------------------------------------------------------------------

resource "aws_cloudwatch_metric_alarm" "http_5xx" {
  for_each = {
    HTTPCode_ELB_5XX_Count    = "the load balancer answered 5xx (no healthy target, timeouts)"
    HTTPCode_Target_5XX_Count = "the api or the dashboard answered 5xx"
  }
  alarm_name          = "${local.name}-${each.key}"
  alarm_description   = each.value
  namespace           = "AWS/ApplicationELB"
  metric_name         = each.key
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = var.http_5xx_alarm_threshold
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  dimensions = {
    LoadBalancer = aws_lb.this.arn_suffix
  }
  alarm_actions = local.alarm_actions
  ok_actions    = local.alarm_actions
}

# --- failed job runs -------------------------------------------------------------------------

resource "aws_cloudwatch_metric_alarm" "job_errors" {
  for_each            = local.jobs
  alarm_name          = "${local.name}-${each.key}-failed"
  alarm_description   = "a ${each.key} run failed"
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  statistic           = "Sum"
  period              = 600
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  dimensions = {
    FunctionName = aws_lambda_function.job[each.key].function_name
  }
  alarm_actions = local.alarm_actions
  ok_actions    = local.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "jobs_dead_letters" {
  alarm_name          = "${local.name}-jobs-dead-letters"
  alarm_description   = "a scheduled run failed after its retries and is in the dead-letter queue"
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  dimensions = {
    QueueName = aws_sqs_queue.jobs_dlq.name
  }
  alarm_actions = local.alarm_actions
}
