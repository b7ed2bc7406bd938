output "aws_region" {
  description = "Region of the stack (export AWS_REGION=$(terraform output -raw aws_region))."
  value       = var.aws_region
}

output "alb_dns_name" {
  description = "Public DNS name of the ALB (point your domain's CNAME/alias here)."
  value       = aws_lb.main.dns_name
}

output "api_base_url" {
  description = "Base URL of the API."
  value       = local.https ? "https://${aws_lb.main.dns_name}" : "http://${aws_lb.main.dns_name}"
}

output "ecr_repository_url" {
  description = "ECR repository for the gift image (ECR_REPOSITORY in the deploy workflow is its name)."
  value       = aws_ecr_repository.app.repository_url
}

output "ecr_repository_name" {
  description = "ECR repository name -> GitHub variable ECR_REPOSITORY."
  value       = aws_ecr_repository.app.name
}

output "ecs_cluster_name" {
  description = "ECS cluster -> GitHub variable ECS_CLUSTER."
  value       = aws_ecs_cluster.main.name
}

output "ecs_api_service_name" {
  description = "API service -> GitHub variable ECS_API_SERVICE."
  value       = aws_ecs_service.api.name
}

output "ecs_worker_service_name" {
  description = "Worker service -> GitHub variable ECS_WORKER_SERVICE."
  value       = aws_ecs_service.worker.name
}

output "api_task_family" {
  description = "API task definition family -> GitHub variable ECS_API_TASK_FAMILY."
  value       = aws_ecs_task_definition.api.family
}

output "worker_task_family" {
  description = "Worker task definition family -> GitHub variable ECS_WORKER_TASK_FAMILY."
  value       = aws_ecs_task_definition.worker.family
}

output "migrate_task_family" {
  description = "Migrate task definition family -> GitHub variable ECS_MIGRATE_TASK_FAMILY (run before every rollout)."
  value       = aws_ecs_task_definition.migrate.family
}

output "migrate_network_configuration" {
  description = "--network-configuration of the migrate task (JSON) -> GitHub variable ECS_MIGRATE_NETWORK."
  value       = local.one_off_task_network
}

output "github_deploy_role_arn" {
  description = "Role the deploy workflow assumes -> GitHub variable AWS_DEPLOY_ROLE_ARN."
  value       = aws_iam_role.github_deploy.arn
}

output "sqs_queue_url" {
  description = "Main send queue (SQS_QUEUE_URL)."
  value       = aws_sqs_queue.main.url
}

output "sqs_dlq_url" {
  description = "Dead-letter queue (see the DLQ redrive procedure in docs/runbook.md)."
  value       = aws_sqs_queue.dlq.url
}

output "db_endpoint" {
  description = "RDS endpoint (DB_HOST:DB_PORT). Reachable only from the ECS tasks' security groups."
  value       = "${aws_db_instance.main.address}:${aws_db_instance.main.port}"
}

output "db_instance_identifier" {
  description = "RDS instance identifier (for aws rds describe-db-instances / describe-events)."
  value       = aws_db_instance.main.identifier
}

output "db_master_secret_arn" {
  description = "The RDS-managed secret of the master user (JSON: username, password; RDS rotates it). Used by the migrate and db-admin tasks only."
  value       = local.db_master_secret_arn
}

output "db_app_secret_arn" {
  description = "Secret of the app role (JSON: username, password): the api and worker's DB_PASSWORD."
  value       = aws_secretsmanager_secret.db_app.arn
}

output "datadog_api_key_secret_arn" {
  description = "Secret that must hold the Datadog API key (put its value by hand after the first apply)."
  value       = local.datadog_api_key_secret_arn
}

output "datadog_dashboard_url" {
  description = "The Datadog dashboard."
  value       = "https://${length(split(".", var.datadog_site)) == 2 ? "app.${var.datadog_site}" : var.datadog_site}${datadog_dashboard_json.main.url}"
}

output "mode" {
  description = "What the production_hardening switch resolved to."
  value = {
    production_hardening = local.hardening
    private_subnets      = local.private_subnets
    nat_gateways         = local.nat_count
    interface_endpoints  = local.interface_endpoints
    multi_az             = local.multi_az
    https                = local.https
    waf                  = local.waf
    container_insights   = local.container_insights
    autoscaling          = local.autoscaling
    log_retention_days   = local.log_retention_days
    api_tasks            = "${local.api_min_count}-${local.api_max_count}"
    worker_tasks         = "${local.worker_min_count}-${local.worker_max_count}"
  }
}

output "db_admin_run_task" {
  description = "Runs one SQL statement against RDS as a one-off Fargate task (replace the SQL); then read the result with db_admin_logs."
  value = join(" ", [
    "aws ecs run-task --region ${var.aws_region} --cluster ${aws_ecs_cluster.main.name}",
    "--launch-type FARGATE --task-definition ${aws_ecs_task_definition.db_admin.family}",
    "--network-configuration '${local.one_off_task_network}'",
    "--overrides '{\"containerOverrides\":[{\"name\":\"psql\",\"command\":[\"psql\",\"-v\",\"ON_ERROR_STOP=1\",\"-c\",\"SELECT status, count(*) FROM gifts GROUP BY status\"]}]}'",
  ])
}

output "db_admin_logs" {
  description = "Shows the output of the one-off psql tasks."
  value       = "aws logs tail ${aws_cloudwatch_log_group.db_admin.name} --region ${var.aws_region} --since 15m --follow"
}
