# Datadog: the API key secret used by the sidecars, the (optional) AWS
# integration that brings the aws.* metrics, 8 monitors and one dashboard. docs/observability.md explains each
# monitor; docs/runbook.md says what to do when one fires.

# --- API key for the agent and FireLens -----------------------------------------

# Terraform creates the secret but never its value, so the key is neither in
# the repository nor in the state. Put it in once after the first apply:
#   aws secretsmanager put-secret-value --secret-id <output datadog_api_key_secret_arn> --secret-string "$DD_API_KEY"
resource "aws_secretsmanager_secret" "datadog_api_key" {
  #checkov:skip=CKV2_AWS_57:The value is a Datadog API key issued by Datadog, not an AWS credential; it is rotated in Datadog and then written here by hand (docs/IMPORT_NOTES.md). A rotation Lambda could not create Datadog keys.
  count = var.datadog_api_key_secret_arn == null ? 1 : 0

  name                    = "${local.name}/datadog-api-key"
  description             = "Datadog API key for the agent sidecars and FireLens (value set by hand)."
  kms_key_id              = aws_kms_key.main.arn
  recovery_window_in_days = 7
}

locals {
  datadog_api_key_secret_arn = var.datadog_api_key_secret_arn != null ? var.datadog_api_key_secret_arn : aws_secretsmanager_secret.datadog_api_key[0].arn

  # Tag filters. Datadog lower-cases tag values; the ALB and target group are
  # tagged with their CloudWatch dimension values (the ARN suffixes).
  dd_lb     = "loadbalancer:${lower(aws_lb.main.arn_suffix)}"
  dd_tg     = "targetgroup:${lower(aws_lb_target_group.api.arn_suffix)}"
  dd_api    = "clustername:${lower(aws_ecs_cluster.main.name)},servicename:${lower(aws_ecs_service.api.name)}"
  dd_worker = "clustername:${lower(aws_ecs_cluster.main.name)},servicename:${lower(aws_ecs_service.worker.name)}"
  dd_queue  = "queuename:${lower(aws_sqs_queue.main.name)}"
  dd_dlq    = "queuename:${lower(aws_sqs_queue.dlq.name)}"
  dd_db     = "dbinstanceidentifier:${lower(aws_db_instance.main.identifier)}"
  # Logs: `service` comes from the app's own JSON field (api | worker);
  # project/env come from the FireLens dd_tags.
  dd_logs = "project:${var.project} env:${var.environment}"

  dd_monitor_tags = ["project:${var.project}", "env:${var.environment}", "managed-by:terraform"]
  runbook_url     = "https://github.com/${var.github_repository}/blob/main/docs/runbook.md"
}

# --- AWS integration (account-wide, optional) -------------------------------------

resource "datadog_integration_aws_account" "main" {
  count = var.datadog_create_aws_integration ? 1 : 0

  aws_account_id = local.account_id
  aws_partition  = "aws"
  account_tags   = ["project:${var.project}"]

  aws_regions {
    include_only = [var.aws_region]
  }

  auth_config {
    aws_auth_config_role {
      role_name = "${local.name}-datadog-integration"
    }
  }

  logs_config {
    lambda_forwarder {}
  }

  metrics_config {
    # Only what the monitors and the dashboard use. AWS/SQS is excluded by
    # Datadog's defaults, so it must be listed explicitly.
    namespace_filters {
      include_only = ["AWS/ApplicationELB", "AWS/ECS", "AWS/RDS", "AWS/SQS"]
    }
  }

  # Resource collection needs more than the standard permissions (see below).
  resources_config {
    extended_collection = var.datadog_aws_resource_collection
  }

  traces_config {
    xray_services {}
  }
}

# The integration role's permissions: Datadog's standard set in one managed
# policy, plus the AWS-managed SecurityAudit policy only with resource
# collection. Not the full list (datadog_integration_aws_iam_permissions): it is
# about 690 actions, about 20,500 characters as JSON, and a managed policy holds
# at most 6,144. Splitting it would take four policies and more as Datadog's
# list grows, to grant resource-catalog reads this stack does not use; the
# standard set (about 105 actions, about 2,700 characters) is what metric and
# tag collection need. scripts/check-infra computes the size of every policy
# fed from these lists (scripts/data/datadog-aws-iam-permissions.json), and the
# precondition below checks the live list at plan time.
data "datadog_integration_aws_iam_permissions_standard" "main" {
  count = var.datadog_create_aws_integration ? 1 : 0
}

data "aws_iam_policy_document" "datadog_integration_assume" {
  count = var.datadog_create_aws_integration ? 1 : 0

  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "AWS"
      identifiers = ["arn:aws:iam::${var.datadog_aws_account_id}:root"]
    }

    condition {
      test     = "StringEquals"
      variable = "sts:ExternalId"
      values   = [datadog_integration_aws_account.main[0].auth_config.aws_auth_config_role.external_id]
    }
  }
}

resource "aws_iam_role" "datadog_integration" {
  count = var.datadog_create_aws_integration ? 1 : 0

  name               = "${local.name}-datadog-integration"
  description        = "Datadog AWS integration (CloudWatch metrics and resource tags, read-only)"
  assume_role_policy = data.aws_iam_policy_document.datadog_integration_assume[0].json
}

data "aws_iam_policy_document" "datadog_integration" {
  #checkov:skip=CKV_AWS_356:Datadog's integration needs account-wide List/Describe/Get actions; the list comes from Datadog's own data source. Its few writes (logs:PutSubscriptionFilter, s3:PutBucketNotification, events:CreateEventBus, sns:Publish) are what Datadog's log forwarding sets up.
  count = var.datadog_create_aws_integration ? 1 : 0

  statement {
    actions   = data.datadog_integration_aws_iam_permissions_standard.main[0].iam_permissions
    resources = ["*"]
  }
}

resource "aws_iam_policy" "datadog_integration" {
  count = var.datadog_create_aws_integration ? 1 : 0

  name   = "${local.name}-datadog-integration"
  policy = data.aws_iam_policy_document.datadog_integration[0].json

  lifecycle {
    # AWS counts a managed policy's characters without white space; jsonencode
    # writes none. The plan stops here instead of the apply at CreatePolicy.
    precondition {
      condition     = length(jsonencode(jsondecode(data.aws_iam_policy_document.datadog_integration[0].json))) <= 6144
      error_message = "Datadog's standard permission set no longer fits one managed policy (6,144 characters): split it over several aws_iam_policy resources."
    }
  }
}

resource "aws_iam_role_policy_attachment" "datadog_integration" {
  count = var.datadog_create_aws_integration ? 1 : 0

  role       = aws_iam_role.datadog_integration[0].name
  policy_arn = aws_iam_policy.datadog_integration[0].arn
}

# Datadog documents SecurityAudit for resource collection; an AWS-managed
# policy does not count against the 6,144 characters.
resource "aws_iam_role_policy_attachment" "datadog_integration_security_audit" {
  count = var.datadog_create_aws_integration && var.datadog_aws_resource_collection ? 1 : 0

  role       = aws_iam_role.datadog_integration[0].name
  policy_arn = "arn:aws:iam::aws:policy/SecurityAudit"
}

# --- logs ---------------------------------------------------------------------------
# No custom log pipeline is needed: after FireLens' parse-json the app's fields
# are top-level attributes, and the ones Datadog reserves are already right:
# `status` is the level (info | warn | error), `service` is api | worker,
# `message` is the text, `timestamp` is RFC 3339. The gift's outcome is in
# `event` (CREATED, QUEUED, SENT, RETRY, FAILED, ...), see docs/observability.md.

# --- monitors (8) -----------------------------------------------------------------------

resource "datadog_monitor" "alb_5xx" {
  name = "[${local.name}] API 5xx ratio above the error budget burn rate"
  type = "query alert"
  query = join("", [
    "sum(last_30m):(sum:aws.applicationelb.httpcode_elb_5xx{${local.dd_lb}}.as_count() + ",
    "sum:aws.applicationelb.httpcode_target_5xx{${local.dd_lb}}.as_count()) / ",
    "sum:aws.applicationelb.request_count{${local.dd_lb}}.as_count() * 100 > ${var.alb_5xx_percent_critical}",
  ])
  message = <<-EOT
    {{#is_alert}}{{value}}% of API requests returned 5xx over 30 minutes (critical: ${var.alb_5xx_percent_critical}%).{{/is_alert}}
    {{#is_warning}}{{value}}% of API requests returned 5xx over 30 minutes.{{/is_warning}}
    ELB 5xx (502/503/504) = no healthy target or a target that failed; target 5xx = the app answered 500/503 (often the database).
    Runbook: ${local.runbook_url}#first-response and #db-connection-failure
    ${var.datadog_notify}
  EOT

  monitor_thresholds {
    critical = var.alb_5xx_percent_critical
    warning  = var.alb_5xx_percent_critical / 2.4
  }

  evaluation_delay    = var.datadog_aws_evaluation_delay_seconds
  require_full_window = false
  notify_no_data      = false
  renotify_interval   = 60
  include_tags        = true
  tags                = local.dd_monitor_tags
}

resource "datadog_monitor" "alb_healthy_hosts" {
  name    = "[${local.name}] API has no healthy target behind the ALB"
  type    = "query alert"
  query   = "max(last_10m):sum:aws.applicationelb.healthy_host_count{${local.dd_lb},${local.dd_tg}} < 1"
  message = <<-EOT
    No API task has passed the /healthz check for 10 minutes: every request gets a 503 from the ALB.
    /healthz does not touch the database, so this means the API tasks are not running or not starting.
    Runbook: ${local.runbook_url}#first-response
    ${var.datadog_notify}
  EOT

  monitor_thresholds {
    critical = 1
  }

  evaluation_delay    = var.datadog_aws_evaluation_delay_seconds
  require_full_window = false
  notify_no_data      = true
  no_data_timeframe   = 30
  renotify_interval   = 30
  tags                = local.dd_monitor_tags
}

resource "datadog_monitor" "ecs_api_running" {
  name    = "[${local.name}] ECS api: running tasks below desired"
  type    = "query alert"
  query   = "max(last_15m):sum:aws.ecs.service.running{${local.dd_api}} - sum:aws.ecs.service.desired{${local.dd_api}} < 0"
  message = <<-EOT
    The api service has run fewer tasks than desired for 15 minutes: tasks are crashing, failing health checks or cannot be placed/pulled.
    Check the service events and the stopped tasks' "stopped reason".
    Runbook: ${local.runbook_url}#first-response
    ${var.datadog_notify}
  EOT

  monitor_thresholds {
    critical = 0
  }

  evaluation_delay    = var.datadog_aws_evaluation_delay_seconds
  require_full_window = false
  notify_no_data      = true
  no_data_timeframe   = 30
  renotify_interval   = 60
  tags                = local.dd_monitor_tags
}

resource "datadog_monitor" "ecs_worker_running" {
  name    = "[${local.name}] ECS worker: running tasks below desired"
  type    = "query alert"
  query   = "max(last_15m):sum:aws.ecs.service.running{${local.dd_worker}} - sum:aws.ecs.service.desired{${local.dd_worker}} < 0"
  message = <<-EOT
    The worker service has run fewer tasks than desired for 15 minutes. Sends are not being processed (and the outbox relay, which runs in the worker, is not publishing).
    Runbook: ${local.runbook_url}#worker-stopped
    ${var.datadog_notify}
  EOT

  monitor_thresholds {
    critical = 0
  }

  evaluation_delay    = var.datadog_aws_evaluation_delay_seconds
  require_full_window = false
  notify_no_data      = true
  no_data_timeframe   = 30
  renotify_interval   = 60
  tags                = local.dd_monitor_tags
}

resource "datadog_monitor" "sqs_oldest_message" {
  name    = "[${local.name}] Send queue: oldest message older than ${var.queue_age_critical_seconds}s"
  type    = "query alert"
  query   = "max(last_10m):max:aws.sqs.approximate_age_of_oldest_message{${local.dd_queue}} > ${var.queue_age_critical_seconds}"
  message = <<-EOT
    The oldest send request has waited {{value}} s (SLO: 95% of sends SENT within 5 minutes).
    Normal retries finish within about 30 s, so this is a backlog: the worker is stopped, too slow, or failing on the database.
    Runbook: ${local.runbook_url}#sqs-backlog (and #worker-stopped)
    ${var.datadog_notify}
  EOT

  monitor_thresholds {
    critical = var.queue_age_critical_seconds
    warning  = floor(var.queue_age_critical_seconds * 0.4)
  }

  evaluation_delay    = var.datadog_aws_evaluation_delay_seconds
  require_full_window = false
  notify_no_data      = false
  renotify_interval   = 60
  tags                = local.dd_monitor_tags
}

resource "datadog_monitor" "dlq_not_empty" {
  name    = "[${local.name}] Send DLQ is not empty"
  type    = "query alert"
  query   = "max(last_10m):max:aws.sqs.approximate_number_of_messages_visible{${local.dd_dlq}} > 0"
  message = <<-EOT
    {{value}} message(s) in the dead-letter queue: each is a send that used all ${var.max_receives} attempts; its gift should be FAILED.
    With SEND_FAILURE_RATE=${var.send_failure_rate} about ${format("%.3f", pow(var.send_failure_rate, var.max_receives) * 100)}% of sends end here by design; more than that means a real problem.
    Runbook: ${local.runbook_url}#dlq-redrive-failed-gifts
    ${var.datadog_notify}
  EOT

  monitor_thresholds {
    critical = 0
  }

  evaluation_delay    = var.datadog_aws_evaluation_delay_seconds
  require_full_window = false
  notify_no_data      = false
  renotify_interval   = 240
  tags                = local.dd_monitor_tags
}

resource "datadog_monitor" "worker_failure_logs" {
  name    = "[${local.name}] Worker errors or gifts finally FAILED"
  type    = "log alert"
  query   = "logs(\"service:worker ${local.dd_logs} (status:error OR @event:FAILED)\").index(\"*\").rollup(\"count\").last(\"10m\") > 10"
  message = <<-EOT
    {{value}} worker lines in 10 minutes at error level (STORE_ERROR = the database, RECEIVE_FAILED = SQS, STARTUP_FAILED, POISON_MESSAGE, UNKNOWN_GIFT)
    or with event FAILED (a gift used all ${var.max_receives} attempts; warning from the first one).
    RETRY lines (error_code SEND_FAILED, level warn) are expected at the pseudo-send failure rate ${var.send_failure_rate} and are not counted.
    Runbook: ${local.runbook_url}#db-connection-failure and #dlq-redrive-failed-gifts
    ${var.datadog_notify}
  EOT

  monitor_thresholds {
    critical = 10
    warning  = 0
  }

  enable_logs_sample = true
  notify_no_data     = false
  renotify_interval  = 60
  tags               = local.dd_monitor_tags
}

resource "datadog_monitor" "rds_connections" {
  name    = "[${local.name}] RDS connections near the limit"
  type    = "query alert"
  query   = "max(last_10m):max:aws.rds.database_connections{${local.dd_db}} > ${var.db_connections_critical}"
  message = <<-EOT
    {{value}} connections to ${aws_db_instance.main.identifier}. New connections will soon be refused and requests will fail with STORE_ERROR / 503.
    Each API task opens up to ${var.api_db_pool_max}, each worker task up to ${var.worker_db_pool_max}.
    Runbook: ${local.runbook_url}#db-connection-failure
    ${var.datadog_notify}
  EOT

  monitor_thresholds {
    critical = var.db_connections_critical
    warning  = floor(var.db_connections_critical * 0.8)
  }

  evaluation_delay    = var.datadog_aws_evaluation_delay_seconds
  require_full_window = false
  notify_no_data      = false
  renotify_interval   = 60
  tags                = local.dd_monitor_tags
}

# --- dashboard -------------------------------------------------------------------------

locals {
  dd_ts = { # one timeseries widget from metric queries
    for k, v in {
      alb_requests = { title = "ALB requests", q = ["sum:aws.applicationelb.request_count{${local.dd_lb}}.as_count()"], display = "bars" }
      alb_5xx = { title = "5xx: ELB (no/failed target) vs target (app)", display = "bars", q = [
        "sum:aws.applicationelb.httpcode_elb_5xx{${local.dd_lb}}.as_count()",
        "sum:aws.applicationelb.httpcode_target_5xx{${local.dd_lb}}.as_count()",
        "sum:aws.applicationelb.httpcode_target_4xx{${local.dd_lb}}.as_count()",
      ] }
      alb_latency = { title = "Target response time p95 / p50 (s) - SLO p95 < 0.3 s", display = "line", q = [
        "avg:aws.applicationelb.target_response_time.p95{${local.dd_lb}}",
        "avg:aws.applicationelb.target_response_time.p50{${local.dd_lb}}",
      ] }
      alb_healthy = { title = "Healthy / unhealthy API targets", display = "line", q = [
        "sum:aws.applicationelb.healthy_host_count{${local.dd_lb},${local.dd_tg}}",
        "sum:aws.applicationelb.un_healthy_host_count{${local.dd_lb},${local.dd_tg}}",
      ] }
      ecs_api = { title = "api tasks: running vs desired", display = "line", q = [
        "sum:aws.ecs.service.running{${local.dd_api}}",
        "sum:aws.ecs.service.desired{${local.dd_api}}",
      ] }
      ecs_worker = { title = "worker tasks: running vs desired", display = "line", q = [
        "sum:aws.ecs.service.running{${local.dd_worker}}",
        "sum:aws.ecs.service.desired{${local.dd_worker}}",
      ] }
      ecs_cpu = { title = "Service CPU % (of task size)", display = "line", q = [
        "avg:aws.ecs.cpuutilization{clustername:${lower(aws_ecs_cluster.main.name)}} by {servicename}",
      ] }
      ecs_mem = { title = "Service memory % (of task size)", display = "line", q = [
        "avg:aws.ecs.memory_utilization{clustername:${lower(aws_ecs_cluster.main.name)}} by {servicename}",
      ] }
      rds_cpu         = { title = "RDS CPU %", display = "line", q = ["avg:aws.rds.cpuutilization{${local.dd_db}}"] }
      rds_connections = { title = "RDS connections", display = "line", q = ["max:aws.rds.database_connections{${local.dd_db}}"] }
      rds_latency = { title = "RDS read / write latency (s)", display = "line", q = [
        "avg:aws.rds.read_latency{${local.dd_db}}",
        "avg:aws.rds.write_latency{${local.dd_db}}",
      ] }
      rds_storage = { title = "RDS free storage (bytes)", display = "line", q = ["min:aws.rds.free_storage_space{${local.dd_db}}"] }
      sqs_depth = { title = "Send queue: visible vs in flight", display = "line", q = [
        "max:aws.sqs.approximate_number_of_messages_visible{${local.dd_queue}}",
        "max:aws.sqs.approximate_number_of_messages_not_visible{${local.dd_queue}}",
      ] }
      sqs_age = { title = "Send queue: age of oldest message (s) - alert at ${var.queue_age_critical_seconds}", display = "line", q = [
        "max:aws.sqs.approximate_age_of_oldest_message{${local.dd_queue}}",
      ] }
      sqs_flow = { title = "Send queue: sent vs deleted", display = "bars", q = [
        "sum:aws.sqs.number_of_messages_sent{${local.dd_queue}}.as_count()",
        "sum:aws.sqs.number_of_messages_deleted{${local.dd_queue}}.as_count()",
      ] }
      sqs_dlq = { title = "DLQ: visible messages (should be 0)", display = "bars", q = [
        "max:aws.sqs.approximate_number_of_messages_visible{${local.dd_dlq}}",
      ] }
    } :
    k => {
      definition = {
        type        = "timeseries"
        title       = v.title
        show_legend = true
        requests    = [for q in v.q : { q = q, display_type = v.display }]
      }
    }
  }

  dd_log_count_by = {
    for k, v in {
      worker_outcomes = { title = "Worker outcomes by event (SENT, RETRY, FAILED, SKIPPED, RELAYED)", query = "service:worker ${local.dd_logs} @event:*", facet = "@event" }
      error_codes     = { title = "Warn/error lines by error_code (RETRY/SEND_FAILED is expected at the pseudo-send rate)", query = "${local.dd_logs} status:(warn OR error)", facet = "@error_code" }
    } :
    k => {
      definition = {
        type        = "timeseries"
        title       = v.title
        show_legend = true
        requests = [{
          response_format = "timeseries"
          display_type    = "bars"
          queries = [{
            data_source = "logs"
            name        = "lines"
            indexes     = ["*"]
            compute     = { aggregation = "count" }
            search      = { query = v.query }
            group_by    = [{ facet = v.facet, limit = 10, sort = { aggregation = "count", order = "desc" } }]
          }]
          formulas = [{ formula = "lines" }]
        }]
      }
    }
  }

  dd_group = { for k, v in {
    alb   = { title = "ALB - API traffic", widgets = ["alb_requests", "alb_5xx", "alb_latency", "alb_healthy"] }
    ecs   = { title = "ECS - api and worker", widgets = ["ecs_api", "ecs_worker", "ecs_cpu", "ecs_mem"] }
    db    = { title = "Database - RDS PostgreSQL", widgets = ["rds_cpu", "rds_connections", "rds_latency", "rds_storage"] }
    queue = { title = "Queue - SQS send queue and DLQ", widgets = ["sqs_depth", "sqs_age", "sqs_flow", "sqs_dlq"] }
    } : k => {
    definition = {
      type        = "group"
      title       = v.title
      layout_type = "ordered"
      widgets     = [for w in v.widgets : local.dd_ts[w]]
    }
  } }
}

resource "datadog_dashboard_json" "main" {
  dashboard = jsonencode({
    title       = "${local.name} gift service"
    description = "ALB, ECS, database and queue for ${local.name}. Managed by Terraform (terraform/datadog.tf); edits in the UI are overwritten. Runbook: ${local.runbook_url}"
    layout_type = "ordered"
    reflow_type = "auto"
    widgets = [
      {
        definition = {
          type         = "manage_status"
          title        = "Monitors of ${local.name}"
          query        = "tag:\"project:${var.project}\" tag:\"env:${var.environment}\""
          summary_type = "monitors"
          sort         = "status,asc"
        }
      },
      local.dd_group["alb"],
      local.dd_group["ecs"],
      local.dd_group["db"],
      local.dd_group["queue"],
      {
        definition = {
          type        = "group"
          title       = "Gift flow - application logs"
          layout_type = "ordered"
          widgets = [
            local.dd_log_count_by["worker_outcomes"],
            local.dd_log_count_by["error_codes"],
            {
              definition = {
                type    = "log_stream"
                title   = "Worker errors and FAILED gifts"
                query   = "service:worker ${local.dd_logs} (status:error OR @event:FAILED)"
                indexes = []
                columns = ["service", "@event", "@gift_id", "@request_id", "@error_code", "@error_message"]
                sort    = { column = "time", order = "desc" }
              }
            },
          ]
        }
      },
    ]
  })
}
