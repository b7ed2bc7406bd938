# Datadog: the API key secret used by the sidecars, the (optional) AWS
# integration that brings the aws.* metrics, the percentile setting of the
# app's distributions, 12 monitors and one dashboard. docs/observability.md
# explains each monitor; docs/runbook.md says what to do when one fires.
#
# Two sources of metrics. aws.* come from CloudWatch through the integration,
# about 10 minutes late (datadog_aws_evaluation_delay_seconds). gift.* come from
# the binaries through DogStatsD to the agent sidecar within seconds, tagged
# service (<project>-api | <project>-worker, local.dd_service), env and version; they see
# what AWS cannot (which route failed, accept-to-SENT time, the outbox) and the
# monitors use them where they do. The AWS ones stay where they stand on their
# own: what the ALB answers without the app, task counts, the queue, RDS.

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
  # The app's own metrics (DogStatsD), by the unified service tags.
  dd_app_api    = "env:${lower(var.environment)},service:${local.dd_service["api"]}"
  dd_app_worker = "env:${lower(var.environment)},service:${local.dd_service["worker"]}"
  # The ALB health checks are requests too in the app's count; not in the ALB's.
  dd_api_traffic = "${local.dd_app_api},!route:/healthz"
  # Logs: `service` comes from the app's own JSON field (DD_SERVICE, the same
  # local.dd_service names; gift-admin's lines say `admin`); project/env come
  # from the FireLens dd_tags.
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
# `status` is the level (info | warn | error), `service` is DD_SERVICE
# (<project>-api | <project>-worker; `admin` for gift-admin run as a one-off
# task of the worker's task definition, which does not read DD_SERVICE),
# `message` is the text, `timestamp` is RFC 3339. The gift's outcome is in
# `event` (CREATED, QUEUED, SENT, RETRY, FAILED, ...), see docs/observability.md.

# --- percentiles of the app's distributions ----------------------------------------
# A distribution's p50/p95/p99 are queryable only once percentiles are enabled
# for the metric, and Datadog enables them only for a metric it has received:
# turn datadog_distribution_percentiles on after the first deploy. Until then the
# accept-to-SENT monitor has no data and the p95 graphs are empty. The tag lists
# are the queryable tags (an allow-list, which also bounds the percentile cost).

resource "datadog_metric_tag_configuration" "percentiles" {
  for_each = var.datadog_distribution_percentiles ? {
    "gift.accept_to_sent"        = ["env", "service", "version"]
    "gift.http.request.duration" = ["env", "service", "version", "route", "method", "status"]
  } : {}

  metric_name         = each.key
  metric_type         = "distribution"
  tags                = each.value
  include_percentiles = true
}

# --- monitors (12) -----------------------------------------------------------------------

locals {
  pseudo_send_failure_critical = coalesce(var.pseudo_send_failure_percent_critical, min(100, var.send_failure_rate * 100 + 25))
}

# 1. The app's 5xx answers, seconds after they happen and by route (the ALB
# would say the same 10+ minutes later, without the route).
resource "datadog_monitor" "api_5xx" {
  name = "[${local.name}] API 5xx ratio above the error budget burn rate"
  type = "query alert"
  query = join("", [
    "sum(last_30m):sum:gift.http.requests{${local.dd_api_traffic},status:5*}.as_count() / ",
    "sum:gift.http.requests{${local.dd_api_traffic}}.as_count() * 100 > ${var.api_5xx_percent_critical}",
  ])
  message = <<-EOT
    {{#is_alert}}{{value}}% of API requests were answered 5xx over 30 minutes (critical: ${var.api_5xx_percent_critical}%).{{/is_alert}}
    {{#is_warning}}{{value}}% of API requests were answered 5xx over 30 minutes.{{/is_warning}}
    503 = the database or the queue is unavailable (or load shedding), 500 = a bug or a panic. The dashboard's API group splits them by route.
    5xx the ALB produces itself (no target, a reset, a timeout) are monitor 12.
    Runbook: ${local.runbook_url}#first-response and #db-connection-failure
    ${var.datadog_notify}
  EOT

  monitor_thresholds {
    critical = var.api_5xx_percent_critical
    warning  = var.api_5xx_percent_critical / 2.4
  }

  evaluation_delay    = 60
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

# 5. The queue's view: the one monitor that fires when nothing consumes at all
# (the worker's own metrics are then silent).
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
  query   = "logs(\"service:${local.dd_service["worker"]} ${local.dd_logs} (status:error OR @event:FAILED)\").index(\"*\").rollup(\"count\").last(\"10m\") > 10"
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
    Each API task opens up to ${var.api_db_pool_max}, each worker task up to ${var.worker_db_pool_max} (dashboard: gift.db.pool.* by service).
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

# 9. The send SLO itself: 95% of sends SENT within 5 minutes of the 202. The
# percentile over the whole window, not an average of per-interval p95s.
resource "datadog_monitor" "accept_to_sent_slo" {
  name    = "[${local.name}] Accept to SENT p95 above ${var.accept_to_sent_p95_critical_seconds}s (send SLO)"
  type    = "query alert"
  query   = "percentile(last_30m):p95:gift.accept_to_sent{${local.dd_app_worker}} > ${var.accept_to_sent_p95_critical_seconds}"
  message = <<-EOT
    95% of the gifts SENT in the last 30 minutes took up to {{value}} s from QUEUED (the accepted send's 202, or a later re-arm or retry) to SENT; the SLO is 95% within 5 minutes.
    Retries take seconds each, so minutes mean a backlog: the queue (monitor 5), the outbox (monitor 10), the worker or the database.
    Only SENT gifts count: sends that are not delivered at all show in monitors 5, 6 and 10, and a re-armed send counts from its re-arm.
    Runbook: ${local.runbook_url}#accept-to-sent-above-the-slo (and #sqs-backlog)
    ${var.datadog_notify}
  EOT

  monitor_thresholds {
    critical = var.accept_to_sent_p95_critical_seconds
    warning  = floor(var.accept_to_sent_p95_critical_seconds * 0.4)
  }

  evaluation_delay    = 60
  require_full_window = false
  notify_no_data      = false
  renotify_interval   = 60
  tags                = local.dd_monitor_tags
}

# 10. Accepted sends whose message is not on the queue yet: the relay does not
# publish (SQS refuses, the worker's relay is wedged). The worker reports the
# gauge every 10 s, so no data means no worker reports at all.
resource "datadog_monitor" "outbox_oldest_age" {
  name    = "[${local.name}] Outbox: a due send unpublished for over ${var.outbox_age_critical_seconds}s"
  type    = "query alert"
  query   = "max(last_5m):max:gift.outbox.oldest_age{${local.dd_app_worker}} > ${var.outbox_age_critical_seconds}"
  message = <<-EOT
    {{#is_alert}}The oldest due outbox row has waited {{value}} s to be published to SQS.{{/is_alert}}
    {{#is_warning}}The oldest due outbox row has waited {{value}} s to be published to SQS.{{/is_warning}}
    {{#is_no_data}}No worker has reported gift.outbox.oldest_age for 30 minutes: the worker is down or its metrics do not reach the agent (DOGSTATSD_ADDR).{{/is_no_data}}
    The relay in the worker publishes due rows every ${var.relay_interval_ms} ms; PUBLISH_FAILED warnings say why it cannot (SQS, IAM), RELAY_FAILED errors mean the database.
    Runbook: ${local.runbook_url}#outbox-not-publishing (and #worker-stopped)
    ${var.datadog_notify}
  EOT

  monitor_thresholds {
    critical = var.outbox_age_critical_seconds
    warning  = floor(var.outbox_age_critical_seconds / 4)
  }

  evaluation_delay    = 60
  require_full_window = false
  notify_no_data      = true
  no_data_timeframe   = 30
  renotify_interval   = 60
  tags                = local.dd_monitor_tags
}

# 11. The worker's sends fail more often than designed. Each failure is retried
# through SQS, so this shows before the DLQ fills.
resource "datadog_monitor" "pseudo_send_failures" {
  name = "[${local.name}] Worker sends failing above ${format("%.4g", local.pseudo_send_failure_critical)}%"
  type = "query alert"
  query = join("", [
    "sum(last_30m):sum:gift.worker.pseudo_sends{${local.dd_app_worker},outcome:error}.as_count() / ",
    "sum:gift.worker.pseudo_sends{${local.dd_app_worker}}.as_count() * 100 > ${local.pseudo_send_failure_critical}",
  ])
  message = <<-EOT
    {{value}}% of the worker's send attempts failed over 30 minutes; SEND_FAILURE_RATE is ${var.send_failure_rate}, so about ${format("%.4g", var.send_failure_rate * 100)}% is the design.
    Every failed attempt is retried after RETRY_BACKOFF_SECONDS, up to ${var.max_receives} receives; more failures mean later SENTs and more FAILED gifts.
    With few sends (at night) a handful of failures can cross the line: check the count on the dashboard before acting.
    Runbook: ${local.runbook_url}#send-failures-above-the-designed-rate (and #dlq-redrive-failed-gifts)
    ${var.datadog_notify}
  EOT

  # Datadog wants the warning below the critical; none when they would meet.
  monitor_thresholds {
    critical = local.pseudo_send_failure_critical
    warning  = var.send_failure_rate * 100 + 10 < local.pseudo_send_failure_critical ? var.send_failure_rate * 100 + 10 : null
  }

  evaluation_delay    = 60
  require_full_window = false
  notify_no_data      = false
  renotify_interval   = 60
  tags                = local.dd_monitor_tags
}

# 12. The 5xx the ALB answers itself, which the app never sees: 502 (a task
# reset the connection or died mid-request), 503 (no healthy target, also
# monitor 2), 504 (a task did not answer in time).
resource "datadog_monitor" "alb_elb_5xx" {
  name = "[${local.name}] ALB-generated 5xx ratio above the error budget burn rate"
  type = "query alert"
  query = join("", [
    "sum(last_30m):sum:aws.applicationelb.httpcode_elb_5xx{${local.dd_lb}}.as_count() / ",
    "sum:aws.applicationelb.request_count{${local.dd_lb}}.as_count() * 100 > ${var.api_5xx_percent_critical}",
  ])
  message = <<-EOT
    {{value}}% of the requests to the ALB got a 5xx from the ALB itself over 30 minutes (critical: ${var.api_5xx_percent_critical}%), not from the app.
    502 = a task reset the connection or exited mid-request, 503 = no healthy target, 504 = a task did not answer within the idle timeout.
    Runbook: ${local.runbook_url}#alb-generated-5xx (and #first-response)
    ${var.datadog_notify}
  EOT

  monitor_thresholds {
    critical = var.api_5xx_percent_critical
    warning  = var.api_5xx_percent_critical / 2.4
  }

  evaluation_delay    = var.datadog_aws_evaluation_delay_seconds
  require_full_window = false
  notify_no_data      = false
  renotify_interval   = 60
  include_tags        = true
  tags                = local.dd_monitor_tags
}

# --- dashboard -------------------------------------------------------------------------

locals {
  # One pool graph per service: size, in use, waiting, summed over its tasks.
  dd_pool_ts = {
    for svc, scope in { api = local.dd_app_api, worker = local.dd_app_worker } : "pool_${svc}" => {
      title                 = "${svc} DB pool: size, in use, waiting (all tasks)"
      display               = "line"
      q                     = [for gauge in ["size", "in_use", "waiting"] : "sum:gift.db.pool.${gauge}{${scope}}"]
    }
  }

  dd_ts = { # one timeseries widget from metric queries
    for k, v in merge({
      # The app's own metrics (DogStatsD). The p95/p50 lines need
      # datadog_distribution_percentiles; avg and max work without it.
      app_requests = { title = "API requests by HTTP status (app; without /healthz)", display = "bars", q = [
        "sum:gift.http.requests{${local.dd_api_traffic}} by {status}.as_count()",
      ] }
      app_latency = { title = "API latency p95 by route (s) - SLO p95 < 0.3 s", display = "line", q = [
        "p95:gift.http.request.duration{${local.dd_api_traffic}} by {route}",
        "avg:gift.http.request.duration{${local.dd_api_traffic}}",
      ] }
      app_sends = { title = "Sends by outcome (accepted, replayed, conflict, not_found)", display = "bars", q = [
        "sum:gift.sends{${local.dd_app_api}} by {outcome}.as_count()",
      ] }
      accept_to_sent = { title = "Accept to SENT p95 / p50 / max (s) - SLO p95 < ${var.accept_to_sent_p95_critical_seconds} s", display = "line", q = [
        "p95:gift.accept_to_sent{${local.dd_app_worker}}",
        "p50:gift.accept_to_sent{${local.dd_app_worker}}",
        "max:gift.accept_to_sent{${local.dd_app_worker}}",
      ] }
      worker_outcomes = { title = "Worker outcomes (sent, lost_race, duplicate, retry_later, failed, poison, error)", display = "bars", q = [
        "sum:gift.worker.outcomes{${local.dd_app_worker}} by {outcome}.as_count()",
      ] }
      pseudo_sends = { title = "Pseudo-sends ok vs error (SEND_FAILURE_RATE ${var.send_failure_rate})", display = "bars", q = [
        "sum:gift.worker.pseudo_sends{${local.dd_app_worker}} by {outcome}.as_count()",
      ] }
      worker_received = { title = "Messages received; average batch size", display = "line", q = [
        "sum:gift.worker.received{${local.dd_app_worker}}.as_count()",
        "avg:gift.worker.batch.size{${local.dd_app_worker}}",
      ] }
      outbox = { title = "Outbox: rows (due or in their grace); age of the oldest due (s) - alert at ${var.outbox_age_critical_seconds}", display = "line", q = [
        "max:gift.outbox.depth{${local.dd_app_worker}}",
        "max:gift.outbox.oldest_age{${local.dd_app_worker}}",
      ] }
      relay = { title = "Relay: published, publish failures, re-armed stale QUEUED", display = "bars", q = [
        "sum:gift.relay.published{${local.dd_app_worker}}.as_count()",
        "sum:gift.relay.publish_failures{${local.dd_app_worker}}.as_count()",
        "sum:gift.relay.rearmed{${local.dd_app_worker}}.as_count()",
      ] }
      # AWS metrics (CloudWatch through the integration).
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
    }, local.dd_pool_ts) :
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
      error_codes = { title = "Warn/error lines by error_code (RETRY/SEND_FAILED is expected at the pseudo-send rate)", query = "${local.dd_logs} status:(warn OR error)", facet = "@error_code" }
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
    app_api  = { title = "API - application metrics", widgets = ["app_requests", "app_latency", "app_sends", "pool_api"] }
    app_flow = { title = "Gift flow - worker, outbox and relay", widgets = ["accept_to_sent", "worker_outcomes", "pseudo_sends", "worker_received", "outbox", "relay", "pool_worker"] }
    alb      = { title = "ALB - API traffic", widgets = ["alb_requests", "alb_5xx", "alb_latency", "alb_healthy"] }
    ecs      = { title = "ECS - api and worker", widgets = ["ecs_api", "ecs_worker", "ecs_cpu", "ecs_mem"] }
    db       = { title = "Database - RDS PostgreSQL", widgets = ["rds_cpu", "rds_connections", "rds_latency", "rds_storage"] }
    queue    = { title = "Queue - SQS send queue and DLQ", widgets = ["sqs_depth", "sqs_age", "sqs_flow", "sqs_dlq"] }
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
    description = "The app's metrics (API, gift flow), then ALB, ECS, database and queue for ${local.name}. Managed by Terraform (terraform/datadog.tf); edits in the UI are overwritten. Runbook: ${local.runbook_url}"
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
      local.dd_group["app_api"],
      local.dd_group["app_flow"],
      local.dd_group["alb"],
      local.dd_group["ecs"],
      local.dd_group["db"],
      local.dd_group["queue"],
      {
        definition = {
          type        = "group"
          title       = "Application logs"
          layout_type = "ordered"
          widgets = [
            local.dd_log_count_by["error_codes"],
            {
              definition = {
                type    = "log_stream"
                title   = "Worker errors and FAILED gifts"
                query   = "service:${local.dd_service["worker"]} ${local.dd_logs} (status:error OR @event:FAILED)"
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
