#!/usr/bin/env bash
# Run `deloton migrate` once as an ECS task and wait for it; exits non-zero if it failed.
# Run it after `terraform apply` and before the services take a new image:
#   terraform -chdir=terraform apply ... && terraform/scripts/migrate.sh
# Needs the AWS CLI v2 and jq, with credentials for the account.
set -euo pipefail
cd "$(dirname "$0")/.."

out() { terraform output -raw "$1"; }
cluster=$(out ecs_cluster_name)
task_definition=$(out migrate_task_definition_arn)
subnets=$(terraform output -json private_subnet_ids | jq -r 'join(",")')
security_group=$(out tasks_security_group_id)

echo "starting the migration task on ${cluster} ..."
task_arn=$(aws ecs run-task \
  --cluster "${cluster}" \
  --task-definition "${task_definition}" \
  --launch-type FARGATE \
  --count 1 \
  --started-by "migrate.sh" \
  --network-configuration "awsvpcConfiguration={subnets=[${subnets}],securityGroups=[${security_group}],assignPublicIp=DISABLED}" \
  --query 'tasks[0].taskArn' --output text)
if [[ -z "${task_arn}" || "${task_arn}" == "None" ]]; then
  echo "the task did not start" >&2
  exit 1
fi
echo "task ${task_arn}: waiting for it to stop ..."
aws ecs wait tasks-stopped --cluster "${cluster}" --tasks "${task_arn}"

read -r exit_code reason < <(aws ecs describe-tasks --cluster "${cluster}" --tasks "${task_arn}" \
  --query 'tasks[0].[containers[0].exitCode, stoppedReason]' --output text)
echo "logs: aws logs tail /$(out ecs_cluster_name)/ecs/migrate --since 1h"
if [[ "${exit_code}" != "0" ]]; then
  echo "migration failed: exit code ${exit_code} (${reason})" >&2
  exit 1
fi
echo "migration done"
