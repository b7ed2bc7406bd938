# CloudWatch log groups. With app_log_destination = "datadog" (default) the api
# and worker stdout goes through FireLens to Datadog and only the sidecars log
# here; with "cloudwatch" the app containers log here through awslogs.
# The RDS groups are created up front so that retention and encryption apply
# (RDS would otherwise create them with infinite retention).

locals {
  log_groups = {
    api            = "/ecs/${local.name}/api"
    worker         = "/ecs/${local.name}/worker"
    migrate        = "/ecs/${local.name}/migrate"
    log_router     = "/ecs/${local.name}/log-router"
    datadog_agent  = "/ecs/${local.name}/datadog-agent"
    flow_logs      = "/vpc/${local.name}/flow-logs"
    rds_postgresql = "/aws/rds/instance/${local.name}/postgresql"
    rds_upgrade    = "/aws/rds/instance/${local.name}/upgrade"
  }
}

resource "aws_cloudwatch_log_group" "this" {
  #checkov:skip=CKV_AWS_338:Retention is 7 days (PoC) or 30 days (production_hardening) by design (spec section 7); long-term log search lives in Datadog. Raise log_retention_days if an audit requirement asks for a year.
  for_each = local.log_groups

  name              = each.value
  retention_in_days = local.log_retention_days
  kms_key_id        = aws_kms_key.main.arn
}

# WAF requires the aws-waf-logs- prefix.
resource "aws_cloudwatch_log_group" "waf" {
  #checkov:skip=CKV_AWS_338:Same retention policy as the other groups (7 or 30 days); see above.
  count = local.waf ? 1 : 0

  name              = "aws-waf-logs-${local.name}"
  retention_in_days = local.log_retention_days
  kms_key_id        = aws_kms_key.main.arn
}
