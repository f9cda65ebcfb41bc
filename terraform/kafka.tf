# Kafka: the fleet's existing cluster (kafka_bootstrap_servers) or an MSK cluster created when
# it is empty. Either way the services authenticate with SASL/SCRAM over TLS, the credentials
# coming from Secrets Manager (JSON with "username" and "password").

locals {
  create_msk = var.kafka_bootstrap_servers == ""

  kafka_bootstrap = (
    local.create_msk ? aws_msk_cluster.this[0].bootstrap_brokers_sasl_scram : var.kafka_bootstrap_servers
  )
  kafka_credentials_secret_arn = (
    var.kafka_credentials_secret_arn != "" ? var.kafka_credentials_secret_arn : aws_secretsmanager_secret.kafka[0].arn
  )
  kafka_replication_factor = local.create_msk ? min(3, length(local.azs)) : var.kafka_replication_factor
}

# The SCRAM credentials. MSK requires the secret's name to start with AmazonMSK_ and a
# customer-managed key. The password is generated ephemerally and written write-only, so it
# is in neither the plan nor the state; bump kafka_credentials_version to rotate it.
ephemeral "random_password" "kafka" {
  length  = 32
  special = false
}

resource "aws_secretsmanager_secret" "kafka" {
  # checkov:skip=CKV2_AWS_57: SCRAM users have no rotation Lambda; rotation is kafka_credentials_version (README "Deploy")
  count                   = var.kafka_credentials_secret_arn == "" ? 1 : 0
  name                    = "AmazonMSK_${local.name}"
  description             = "Kafka SASL/SCRAM credentials of the Deloton services"
  kms_key_id              = aws_kms_key.main.arn
  recovery_window_in_days = 7
}

resource "aws_secretsmanager_secret_version" "kafka" {
  count     = var.kafka_credentials_secret_arn == "" ? 1 : 0
  secret_id = aws_secretsmanager_secret.kafka[0].id
  secret_string_wo = jsonencode({
    username = "deloton"
    password = ephemeral.random_password.kafka.result
  })
  secret_string_wo_version = var.kafka_credentials_version
}

resource "aws_msk_configuration" "this" {
  count          = local.create_msk ? 1 : 0
  name           = local.name
  kafka_versions = [var.msk_kafka_version]
  server_properties = join("\n", [
    "auto.create.topics.enable=true",
    "default.replication.factor=${local.kafka_replication_factor}",
    "min.insync.replicas=${max(1, local.kafka_replication_factor - 1)}",
    "num.partitions=${var.kafka_topic_partitions}",
    "log.retention.hours=168",
    "unclean.leader.election.enable=false",
  ])
}

resource "aws_cloudwatch_log_group" "msk" {
  count             = local.create_msk ? 1 : 0
  name              = "/${local.name}/msk"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.main.arn
}

resource "aws_msk_cluster" "this" {
  count                  = local.create_msk ? 1 : 0
  cluster_name           = local.name
  kafka_version          = var.msk_kafka_version
  number_of_broker_nodes = length(local.azs)
  enhanced_monitoring    = "PER_BROKER" # consumer-group lag comes at every level

  broker_node_group_info {
    instance_type   = var.msk_instance_type
    client_subnets  = aws_subnet.private[*].id
    security_groups = [aws_security_group.kafka[0].id]
    storage_info {
      ebs_storage_info {
        volume_size = var.msk_volume_size
      }
    }
  }

  configuration_info {
    arn      = aws_msk_configuration.this[0].arn
    revision = aws_msk_configuration.this[0].latest_revision
  }

  client_authentication {
    unauthenticated = false
    sasl {
      scram = true
    }
  }

  encryption_info {
    encryption_at_rest_kms_key_arn = aws_kms_key.main.arn
    encryption_in_transit {
      client_broker = "TLS"
      in_cluster    = true
    }
  }

  logging_info {
    broker_logs {
      cloudwatch_logs {
        enabled   = true
        log_group = aws_cloudwatch_log_group.msk[0].name
      }
    }
  }
}

resource "aws_msk_scram_secret_association" "this" {
  count           = local.create_msk ? 1 : 0
  cluster_arn     = aws_msk_cluster.this[0].arn
  secret_arn_list = [local.kafka_credentials_secret_arn]
  depends_on      = [aws_secretsmanager_secret_version.kafka]
}
