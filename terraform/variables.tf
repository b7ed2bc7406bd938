# -----------------------------------------------------------------------------
# Identity
# -----------------------------------------------------------------------------

variable "project" {
  description = "Short project name, used as a prefix for every resource name."
  type        = string
  default     = "gift"

  # project + "-" + environment + the longest suffix ("-alb", "-api") must fit
  # the 32 characters of an ALB or target group name: 15 + 1 + 12 + 4 = 32
  # (scripts/check-infra computes this from the regexes). No trailing dash:
  # AWS refuses a load balancer name that ends with one.
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,13}[a-z0-9]$", var.project))
    error_message = "project must be lower-case letters, digits and dashes, start with a letter, not end with a dash (2-15 chars)."
  }
}

variable "environment" {
  description = "Environment name (poc, staging, prod, ...). Part of every resource name and the env tag in Datadog."
  type        = string
  default     = "poc"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,10}[a-z0-9]$", var.environment))
    error_message = "environment must be lower-case letters, digits and dashes, start with a letter, not end with a dash (2-12 chars)."
  }
}

variable "aws_region" {
  description = "AWS region for every resource. Also passed to the binaries as AWS_REGION."
  type        = string
  default     = "us-east-1"
}

variable "tags" {
  description = "Extra tags applied to every AWS resource."
  type        = map(string)
  default     = {}
}

# -----------------------------------------------------------------------------
# The switch: PoC (false) versus production hardening (true).
# Every individual knob below defaults to null, meaning "follow the switch";
# set one explicitly to override it.
# -----------------------------------------------------------------------------

variable "production_hardening" {
  description = "false = PoC (public subnets, no NAT, single-AZ RDS, HTTP, 7-day logs). true = private subnets + NAT, Multi-AZ RDS, HTTPS (ACM), autoscaling, WAF, 30-day logs."
  type        = bool
  default     = false
}

variable "private_subnets_enabled" {
  description = "Run the ECS tasks in private subnets behind NAT gateways. null follows production_hardening."
  type        = bool
  default     = null
}

variable "nat_gateway_per_az" {
  description = "One NAT gateway per AZ (true) or a single shared one (false). Only used with private subnets. null follows production_hardening."
  type        = bool
  default     = null
}

variable "vpc_interface_endpoints_enabled" {
  description = "Add interface endpoints (ECR api/dkr, CloudWatch Logs, Secrets Manager, SQS) so AWS traffic skips the NAT. Only used with private subnets. The S3 gateway endpoint is always added with private subnets (it is free). Datadog intake still needs the NAT."
  type        = bool
  default     = false
}

variable "multi_az" {
  description = "RDS Multi-AZ. null follows production_hardening."
  type        = bool
  default     = null
}

variable "autoscaling_enabled" {
  description = "Target-tracking autoscaling for both services. null follows production_hardening. When false the services run exactly *_min_count tasks."
  type        = bool
  default     = null
}

variable "waf_enabled" {
  description = "AWS WAF (managed common rules, known bad inputs, per-IP rate limit) on the ALB. null follows production_hardening."
  type        = bool
  default     = null
}

variable "container_insights" {
  description = "ECS Container Insights on the cluster. null follows production_hardening (the PoC relies on the Datadog agent's container metrics)."
  type        = bool
  default     = null
}

variable "log_retention_days" {
  description = "CloudWatch log retention. null = 7 days for the PoC, 30 days with production_hardening."
  type        = number
  default     = null
}

variable "acm_certificate_arn" {
  description = "ACM certificate for the HTTPS listener. When set, port 80 redirects to 443. Required when production_hardening is true."
  type        = string
  default     = null
}

variable "alb_ingress_cidrs" {
  description = "IPv4 CIDRs allowed to reach the ALB listeners."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "deletion_protection" {
  description = "Deletion protection on the ALB and the RDS instance. Set false (and apply) before `terraform destroy`."
  type        = bool
  default     = true
}

variable "waf_rate_limit_per_5min" {
  description = "Requests per 5 minutes per client IP before WAF blocks it."
  type        = number
  default     = 2000
}

# -----------------------------------------------------------------------------
# Network
# -----------------------------------------------------------------------------

variable "vpc_cidr" {
  description = "VPC CIDR. Subnets are /24 slices: public .0-.x, private app .10-.x, database .20-.x."
  type        = string
  default     = "10.40.0.0/16"
}

variable "availability_zones" {
  description = "Zone names to use, e.g. [\"us-east-1a\", \"us-east-1b\"]. Recommended: pins the layout. null = the first az_count available zones."
  type        = list(string)
  default     = null

  validation {
    condition     = var.availability_zones == null ? true : (length(var.availability_zones) >= 2 && length(var.availability_zones) <= 3)
    error_message = "availability_zones must list 2 or 3 zones."
  }
}

variable "az_count" {
  description = "Number of availability zones when availability_zones is null. The ALB and the RDS subnet group need at least 2 even for the PoC."
  type        = number
  default     = 2

  validation {
    condition     = var.az_count >= 2 && var.az_count <= 3
    error_message = "az_count must be 2 or 3."
  }
}

# -----------------------------------------------------------------------------
# Container image and task sizes
# -----------------------------------------------------------------------------

variable "image_tag" {
  description = "Image tag Terraform puts in the task definitions it registers. After bootstrap, the deploy workflow registers new revisions with the git SHA; Terraform ignores those (see docs/IMPORT_NOTES.md)."
  type        = string
  default     = "bootstrap"
}

variable "api_cpu" {
  description = "Fargate CPU units for the API task (app + Datadog agent + log router)."
  type        = number
  default     = 512
}

variable "api_memory" {
  description = "Fargate memory (MiB) for the API task."
  type        = number
  default     = 1024
}

variable "worker_cpu" {
  description = "Fargate CPU units for the worker task (app + Datadog agent + log router)."
  type        = number
  default     = 512
}

variable "worker_memory" {
  description = "Fargate memory (MiB) for the worker task."
  type        = number
  default     = 1024
}

variable "api_min_count" {
  description = "Minimum (and, without autoscaling, exact) number of API tasks. null = 1 for the PoC, 2 with production_hardening."
  type        = number
  default     = null
}

variable "api_max_count" {
  description = "Maximum number of API tasks when autoscaling is on."
  type        = number
  default     = 6
}

variable "worker_min_count" {
  description = "Minimum (and, without autoscaling, exact) number of worker tasks. null = 1 for the PoC, 2 with production_hardening."
  type        = number
  default     = null
}

variable "worker_max_count" {
  description = "Maximum number of worker tasks when autoscaling is on."
  type        = number
  default     = 4
}

variable "api_cpu_target_percent" {
  description = "Autoscaling target for the API service's average CPU."
  type        = number
  default     = 60
}

variable "worker_backlog_target" {
  description = "Autoscaling target for visible messages in the main queue (target tracking on ApproximateNumberOfMessagesVisible)."
  type        = number
  default     = 100
}

variable "worker_fargate_spot" {
  description = "Run the worker on FARGATE_SPOT. Safe for this worker: delivery is at-least-once and the status updates are conditional, so an interrupted task only causes a redelivery."
  type        = bool
  default     = false
}

# -----------------------------------------------------------------------------
# Database
# -----------------------------------------------------------------------------

variable "db_engine_version" {
  description = "PostgreSQL version: a major (\"15\", RDS picks the latest minor) or major.minor. The parameter-group family (postgres<major>) and the db-admin psql image follow its major."
  type        = string
  default     = "15"

  validation {
    condition     = can(regex("^(1[3-9]|[2-9][0-9])(\\.[0-9]+)?$", var.db_engine_version))
    error_message = "db_engine_version must be a PostgreSQL major from 13 on, optionally with a minor (15, 16.4)."
  }
}

variable "db_allow_major_version_upgrade" {
  description = "Let RDS apply a change of db_engine_version's major (a new parameter group of the new family is created before the old one goes). Set it for the apply that upgrades, after a snapshot."
  type        = bool
  default     = false
}

variable "db_instance_class" {
  description = "RDS instance class."
  type        = string
  default     = "db.t4g.micro"
}

variable "db_allocated_storage_gb" {
  description = "Initial gp3 storage in GiB."
  type        = number
  default     = 20
}

variable "db_max_allocated_storage_gb" {
  description = "Storage autoscaling ceiling in GiB."
  type        = number
  default     = 100
}

variable "db_name" {
  description = "Database name (DB_NAME)."
  type        = string
  default     = "gift"
}

variable "db_username" {
  description = "RDS master user: owns the schema, used only by the one-off migrate task (gift-admin migrate) and the db-admin psql task. RDS generates, keeps and rotates its password in Secrets Manager (manage_master_user_password); Terraform never sees it."
  type        = string
  default     = "gift"
}

variable "db_app_username" {
  description = "The data-only database role the api and worker connect as (DB_USER): SELECT, INSERT, UPDATE, DELETE on the tables, no DDL. gift-admin migrate creates it and sets its password from the app secret."
  type        = string
  default     = "gift_app"

  validation {
    condition     = can(regex("^[a-z_][a-z0-9_]{0,62}$", var.db_app_username)) && !contains(["rdsadmin", "postgres", "public"], var.db_app_username)
    error_message = "db_app_username must be a lower-case PostgreSQL identifier (letters, digits, underscores; at most 63) and not a reserved role."
  }

  validation {
    condition     = var.db_app_username != var.db_username
    error_message = "db_app_username must differ from db_username (the master user)."
  }
}

variable "db_app_password_version" {
  description = "Version of the app role's password. Terraform generates the password ephemerally and writes it write-only into Secrets Manager, so it is in neither the plan nor the state; change this number to write a new one (rotation: docs/IMPORT_NOTES.md)."
  type        = number
  default     = 1
}

variable "db_backup_retention_days" {
  description = "Automated backup retention."
  type        = number
  default     = 7
}

variable "db_skip_final_snapshot" {
  description = "Skip the final snapshot on destroy. Keep false anywhere data matters."
  type        = bool
  default     = false
}

variable "db_sslmode" {
  description = "DB_SSLMODE passed to the binaries. RDS enforces TLS (rds.force_ssl=1) so disable/prefer would fail or be pointless; verify-full needs the RDS CA bundle in the image."
  type        = string
  default     = "require"

  validation {
    condition     = contains(["require", "verify-ca", "verify-full"], var.db_sslmode)
    error_message = "db_sslmode must be require, verify-ca or verify-full (RDS enforces TLS)."
  }
}

variable "api_db_pool_max" {
  description = "DB_POOL_MAX for each API task. Small on purpose: creates and sends that find every connection busy share statements (docs/architecture.md)."
  type        = number
  default     = 5
}

variable "worker_db_pool_max" {
  description = "DB_POOL_MAX for each worker task."
  type        = number
  default     = 5
}

variable "db_acquire_timeout_ms" {
  description = "DB_ACQUIRE_TIMEOUT_MS: how long a request waits for a pooled connection."
  type        = number
  default     = 2000
}

# -----------------------------------------------------------------------------
# Application settings (each one becomes an environment variable; see the
# contract in ecs.tf and scripts/check-infra)
# -----------------------------------------------------------------------------

variable "log_level" {
  description = "LOG_LEVEL for both binaries (tracing filter syntax, e.g. info or info,sqlx=warn)."
  type        = string
  default     = "info"
}

variable "publish_grace_ms" {
  description = "PUBLISH_GRACE_MS (API)."
  type        = number
  default     = 5000
}

variable "max_body_bytes" {
  description = "MAX_BODY_BYTES (API)."
  type        = number
  default     = 16384
}

variable "request_timeout_ms" {
  description = "REQUEST_TIMEOUT_MS (API)."
  type        = number
  default     = 10000
}

variable "max_concurrent_requests" {
  description = "MAX_CONCURRENT_REQUESTS (API, per task)."
  type        = number
  default     = 512
}

variable "send_failure_rate" {
  description = "SEND_FAILURE_RATE: probability that the worker's pseudo send fails (0.0-1.0)."
  type        = number
  default     = 0.2

  validation {
    condition     = var.send_failure_rate >= 0 && var.send_failure_rate <= 1
    error_message = "send_failure_rate must be between 0.0 and 1.0."
  }
}

variable "max_receives" {
  description = "The retry budget. Used for BOTH the SQS redrive maxReceiveCount and the worker's MAX_RECEIVES, so the two cannot drift apart."
  type        = number
  default     = 5

  validation {
    condition     = var.max_receives >= 1 && var.max_receives <= 20
    error_message = "max_receives must be between 1 and 20."
  }
}

variable "worker_batch_size" {
  description = "WORKER_BATCH_SIZE: messages per ReceiveMessage call (SQS allows 1-10)."
  type        = number
  default     = 10

  validation {
    condition     = var.worker_batch_size >= 1 && var.worker_batch_size <= 10
    error_message = "worker_batch_size must be between 1 and 10."
  }
}

variable "worker_receives_per_batch" {
  description = "WORKER_RECEIVES_PER_BATCH: receives gathered into one batch while each comes back full (1-3); a backlog is then loaded and recorded this many receives' messages per statement."
  type        = number
  default     = 2

  validation {
    condition     = var.worker_receives_per_batch >= 1 && var.worker_receives_per_batch <= 3
    error_message = "worker_receives_per_batch must be between 1 and 3."
  }
}

variable "worker_batches_in_hand" {
  description = "WORKER_BATCHES_IN_HAND: received batches each worker task handles at once. Keep it below worker_db_pool_max: each batch uses one connection while it loads and records, the relay one more."
  type        = number
  default     = 4

  validation {
    condition     = var.worker_batches_in_hand >= 1 && var.worker_batches_in_hand <= 10
    error_message = "worker_batches_in_hand must be between 1 and 10."
  }
}

# A warning, as gift-worker's CONFIG_POOL_SMALL at start: the setting works, batches and relay
# passes wait for connections.
check "worker_pool_leaves_the_relay_a_connection" {
  assert {
    condition     = var.worker_batches_in_hand < var.worker_db_pool_max
    error_message = "worker_batches_in_hand (${var.worker_batches_in_hand}) is not below worker_db_pool_max (${var.worker_db_pool_max}): each batch takes a connection to load and to record, and the relay needs one more."
  }
}

variable "worker_wait_seconds" {
  description = "WORKER_WAIT_SECONDS: long-poll wait (SQS allows 0-20). Also the queue's receive_wait_time_seconds."
  type        = number
  default     = 20

  validation {
    condition     = var.worker_wait_seconds >= 0 && var.worker_wait_seconds <= 20
    error_message = "worker_wait_seconds must be between 0 and 20."
  }
}

variable "retry_backoff_seconds" {
  description = "RETRY_BACKOFF_SECONDS: after a failed send the worker sets the message's visibility to this, scheduling the next receive."
  type        = number
  default     = 5
}

variable "sqs_visibility_timeout_seconds" {
  description = "Main queue visibility timeout. Must exceed the worst processing time of one message (milliseconds in practice; bounded by DB_ACQUIRE_TIMEOUT_MS and statement time)."
  type        = number
  default     = 30
}

variable "relay_interval_ms" {
  description = "RELAY_INTERVAL_MS: how often the worker's outbox relay polls for unpublished rows."
  type        = number
  default     = 1000
}

variable "stale_queued_seconds" {
  description = "STALE_QUEUED_SECONDS: the relay publishes again the message of a gift still QUEUED this long after the message's last publish (a lost message heals itself). Set on the API and the worker alike."
  type        = number
  default     = 900
}

variable "heartbeat_file" {
  description = "HEARTBEAT_FILE: written by the worker loop, read by `gift-worker healthcheck`. Must be under /tmp (the only writable path: the root filesystem is read-only)."
  type        = string
  default     = "/tmp/gift-worker.heartbeat"

  validation {
    condition     = startswith(var.heartbeat_file, "/tmp/")
    error_message = "heartbeat_file must live under /tmp/ (the only writable mount)."
  }
}

variable "db_admin_image" {
  description = "Image of the one-off psql task (ops.tf). null = the ECR Public mirror of the official postgres image of db_engine_version's major (no Docker Hub pull limits)."
  type        = string
  default     = null
}

# -----------------------------------------------------------------------------
# Datadog
# -----------------------------------------------------------------------------

variable "datadog_site" {
  description = "Datadog site: datadoghq.com, datadoghq.eu, us3.datadoghq.com, us5.datadoghq.com, ap1.datadoghq.com ..."
  type        = string
  default     = "datadoghq.com"
}

variable "datadog_api_key_secret_arn" {
  description = "ARN of an existing Secrets Manager secret holding the Datadog API key (plain string). null = Terraform creates an empty secret; put the value in it by hand (docs/IMPORT_NOTES.md)."
  type        = string
  default     = null
}

variable "app_log_destination" {
  description = "Where the api and worker containers' stdout goes: datadog (FireLens/fluent-bit -> Datadog logs intake) or cloudwatch (awslogs)."
  type        = string
  default     = "datadog"

  validation {
    condition     = contains(["datadog", "cloudwatch"], var.app_log_destination)
    error_message = "app_log_destination must be datadog or cloudwatch."
  }
}

variable "datadog_agent_image" {
  description = "Datadog agent sidecar image."
  type        = string
  default     = "public.ecr.aws/datadog/agent:7"
}

variable "fluent_bit_image" {
  description = "FireLens log router image (AWS for Fluent Bit; contains /fluent-bit/configs/parse-json.conf)."
  type        = string
  default     = "public.ecr.aws/aws-observability/aws-for-fluent-bit:stable"
}

variable "datadog_notify" {
  description = "Notification handles appended to every monitor message, e.g. \"@slack-gift-alerts @pagerduty-gift\"."
  type        = string
  default     = ""
}

variable "datadog_aws_evaluation_delay_seconds" {
  description = "Evaluation delay for monitors on CloudWatch-crawled metrics (aws.*). Datadog's crawler lags ~10 min; with AWS metric streams this can drop to ~120."
  type        = number
  default     = 900
}

variable "datadog_create_aws_integration" {
  description = "Create the Datadog AWS integration (IAM role + datadog_integration_aws_account) for this account. It is account-wide: leave false if the account is already integrated (then make sure AWS/SQS is not excluded)."
  type        = bool
  default     = false
}

variable "datadog_aws_resource_collection" {
  description = "Datadog resource collection (extended_collection: resource configuration for the Resource Catalog). Off, the integration role gets only Datadog's standard permission set (metrics, tags); on, it also gets the AWS-managed SecurityAudit policy, which Datadog documents for resource collection."
  type        = bool
  default     = false
}

variable "datadog_distribution_percentiles" {
  description = "Enable percentiles (p50/p95/p99) on the distributions gift.accept_to_sent and gift.http.request.duration. Datadog accepts this only for a metric it has already received: set true after the first deploy. The setting is per metric name for the whole Datadog organisation, so only one stack per organisation sets it."
  type        = bool
  default     = false
}

variable "datadog_aws_account_id" {
  description = "Datadog's AWS account that assumes the integration role (464622532012 for the commercial sites; check Datadog's AWS integration docs for your site)."
  type        = string
  default     = "464622532012"
}

variable "api_5xx_percent_critical" {
  description = "API 5xx monitors (the app's answers, and the ALB's own 502/503/504): critical when 5xx exceed this percent of requests over 30 minutes (1.44 = 14.4x the 0.1% error budget of a 99.9% SLO)."
  type        = number
  default     = 1.44
}

variable "queue_age_critical_seconds" {
  description = "Oldest-message-age monitor threshold. The SLO is 95% of sends SENT within 5 minutes."
  type        = number
  default     = 300
}

variable "accept_to_sent_p95_critical_seconds" {
  description = "Accept-to-SENT monitor: critical when the p95 of gift.accept_to_sent over 30 minutes exceeds this (the SLO: 95% of sends SENT within 5 minutes). Needs datadog_distribution_percentiles."
  type        = number
  default     = 300
}

variable "outbox_age_critical_seconds" {
  description = "Outbox monitor: critical when the oldest due outbox row (gift.outbox.oldest_age) is older than this. The relay publishes due rows every RELAY_INTERVAL_MS, so a healthy value is a few seconds."
  type        = number
  default     = 120
}

variable "pseudo_send_failure_percent_critical" {
  description = "Pseudo-send failure monitor: critical when more than this percent of the worker's sends fail over 30 minutes. null = SEND_FAILURE_RATE x 100 + 25 (the designed failure rate plus a margin), at most 100."
  type        = number
  default     = null
}

variable "db_connections_critical" {
  description = "RDS connections monitor threshold. db.t4g.micro allows roughly 80-110 connections; (api tasks x api pool) + (worker tasks x worker pool) must stay under it."
  type        = number
  default     = 70
}

# -----------------------------------------------------------------------------
# GitHub Actions deploy role (OIDC)
# -----------------------------------------------------------------------------

variable "github_repository" {
  description = "owner/name of the GitHub repository whose main branch may deploy."
  type        = string
  default     = "example-org/gift-service"
}

variable "github_oidc_provider_arn" {
  description = "ARN of an existing token.actions.githubusercontent.com OIDC provider (one per account). null = Terraform creates it."
  type        = string
  default     = null
}
