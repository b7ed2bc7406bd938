# ECS on Fargate: one cluster, two services (api, worker) running the same
# image with different commands. Each task has three containers:
#   gift-api | gift-worker   the application (read-only root fs, /tmp is a scratch volume)
#   log-router               FireLens / fluent-bit: app stdout -> Datadog logs (when app_log_destination = "datadog")
#   datadog-agent            metrics (ecs.fargate.*), DogStatsD on 127.0.0.1:8125 for the app's gift.* metrics, APM
# A third task definition, migrate, is no service: the deploy workflow runs it
# once per deploy (`gift-admin migrate`) before it rolls the services.

# -----------------------------------------------------------------------------
# The environment contract.
#
# These six maps are everything the binaries receive. scripts/check-infra
# parses them and compares their keys with every `env = "NAME"` in
# bins/src/**/*.rs, in both directions (for migrate: every name it sets must be
# read by gift-admin; for the worker: a name gift-worker does not read must be
# one gift-admin reads, since the operator runs gift-admin with the worker's
# task definition); keep them plain map literals so the check can read them.
# Not set here on purpose:
#   DATABASE_URL          - the alternative to DB_*; Terraform uses the split form
#   AWS_ENDPOINT_URL_SQS  - local emulators only; in AWS the SDK's default endpoint is right
# AWS_REGION is set explicitly (Fargate also injects it) because the binaries read it.
# -----------------------------------------------------------------------------
locals {
  app_common_environment = {
    LOG_LEVEL             = var.log_level
    AWS_REGION            = var.aws_region
    SQS_QUEUE_URL         = aws_sqs_queue.main.url
    DB_HOST               = aws_db_instance.main.address
    DB_PORT               = tostring(aws_db_instance.main.port)
    DB_NAME               = var.db_name
    DB_USER               = var.db_app_username
    DB_SSLMODE            = var.db_sslmode
    DB_ACQUIRE_TIMEOUT_MS = tostring(var.db_acquire_timeout_ms)
    # The outbox row's stale deadline: the API sets it after its own publish,
    # the worker's relay after each of its publishes, so both read one value.
    STALE_QUEUED_SECONDS = tostring(var.stale_queued_seconds)
    # The app role may not run DDL: the migrate task applies the migrations
    # as the master user before every rollout.
    RUN_MIGRATIONS = "false"
    # The agent sidecar shares the task's network namespace (awsvpc), so its
    # DogStatsD listener on localhost is reachable without
    # DD_DOGSTATSD_NON_LOCAL_TRAFFIC.
    DOGSTATSD_ADDR = "127.0.0.1:8125"
    # Unified service tagging (service, env, version) on the app's metrics.
    # The deploy workflow sets DD_VERSION to the git SHA of each revision it
    # registers; image_tag is the value of Terraform's first revision.
    DD_ENV     = var.environment
    DD_VERSION = var.image_tag
  }

  api_only_environment = {
    DD_SERVICE              = local.dd_service["api"]
    HOST                    = "0.0.0.0"
    PORT                    = tostring(local.api_port)
    DB_POOL_MAX             = tostring(var.api_db_pool_max)
    PUBLISH_GRACE_MS        = tostring(var.publish_grace_ms)
    MAX_BODY_BYTES          = tostring(var.max_body_bytes)
    REQUEST_TIMEOUT_MS      = tostring(var.request_timeout_ms)
    MAX_CONCURRENT_REQUESTS = tostring(var.max_concurrent_requests)
    # One runtime thread per whole vCPU of the task: a 0.5 vCPU task still shows the
    # container two CPUs, and a second thread there only adds wake-ups.
    TOKIO_WORKER_THREADS = tostring(max(1, floor(var.api_cpu / 1024)))
  }

  worker_only_environment = {
    DD_SERVICE                = local.dd_service["worker"]
    DB_POOL_MAX               = tostring(var.worker_db_pool_max)
    SEND_FAILURE_RATE         = tostring(var.send_failure_rate)
    WORKER_BATCH_SIZE         = tostring(var.worker_batch_size)
    WORKER_RECEIVES_PER_BATCH = tostring(var.worker_receives_per_batch)
    WORKER_BATCHES_IN_HAND    = tostring(var.worker_batches_in_hand)
    WORKER_WAIT_SECONDS       = tostring(var.worker_wait_seconds)
    RETRY_BACKOFF_SECONDS     = tostring(var.retry_backoff_seconds)
    MAX_RECEIVES              = tostring(var.max_receives) # same variable as the redrive maxReceiveCount
    RELAY_INTERVAL_MS         = tostring(var.relay_interval_ms)
    # The worker renews a slow send's message to this; it must be the queue's own.
    VISIBILITY_TIMEOUT_SECONDS = tostring(var.sqs_visibility_timeout_seconds)
    HEARTBEAT_FILE             = var.heartbeat_file
    TOKIO_WORKER_THREADS       = tostring(max(1, floor(var.worker_cpu / 1024)))
    # For gift-admin, not the worker: the runbook runs `gift-admin redrive-dlq`
    # as a one-off task of this task definition, so the override needs no URL.
    # gift-worker does not read it and never consumes the DLQ (iam.tf).
    SQS_DLQ_URL = aws_sqs_queue.dlq.url
  }

  # Injected by the ECS agent (execution role) from Secrets Manager.
  app_secrets = {
    DB_PASSWORD = "${aws_secretsmanager_secret.db_app.arn}:password::"
  }

  # The one-off migrate task: the master user applies the migrations, then
  # creates (or updates) the app role with APP_DB_PASSWORD and its grants.
  migrate_environment = {
    LOG_LEVEL   = var.log_level
    DB_HOST     = aws_db_instance.main.address
    DB_PORT     = tostring(aws_db_instance.main.port)
    DB_NAME     = var.db_name
    DB_SSLMODE  = var.db_sslmode
    DB_USER     = var.db_username
    APP_DB_USER = var.db_app_username
  }

  migrate_secrets = {
    DB_PASSWORD     = "${local.db_master_secret_arn}:password::"
    APP_DB_PASSWORD = "${aws_secretsmanager_secret.db_app.arn}:password::"
  }
}

# -----------------------------------------------------------------------------
# Container definitions
# -----------------------------------------------------------------------------
locals {
  image           = "${aws_ecr_repository.app.repository_url}:${var.image_tag}"
  logs_to_datadog = var.app_log_destination == "datadog"

  # The `service` tag of the app's metrics (DD_SERVICE); the monitors in
  # datadog.tf scope on it. Prefixed with the project, so two stacks in one
  # Datadog organisation with the same environment name stay apart.
  dd_service = { for svc in ["api", "worker"] : svc => "${var.project}-${svc}" }

  api_environment    = merge(local.app_common_environment, local.api_only_environment)
  worker_environment = merge(local.app_common_environment, local.worker_only_environment)
  app_secret_list    = [for k in sort(keys(local.app_secrets)) : { name = k, valueFrom = local.app_secrets[k] }]

  # Log configuration of an app container, per service. jsonencode/jsondecode
  # lets the two branches have different shapes.
  app_log_configuration = {
    for svc in ["api", "worker"] : svc => jsondecode(local.logs_to_datadog ? jsonencode({
      logDriver = "awsfirelens"
      options = {
        Name        = "datadog"
        Host        = "http-intake.logs.${var.datadog_site}"
        TLS         = "on"
        compress    = "gzip"
        provider    = "ecs"
        dd_source   = var.project
        dd_tags     = "project:${var.project},env:${var.environment},component:${svc}"
        Retry_Limit = "5"
      }
      secretOptions = [{ name = "apikey", valueFrom = local.datadog_api_key_secret_arn }]
      }) : jsonencode({
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.this[svc].name
        awslogs-region        = var.aws_region
        awslogs-stream-prefix = svc
      }
    }))
  }

  app_depends_on = local.logs_to_datadog ? [{ containerName = "log-router", condition = "START" }] : []

  # The agent tags the container's own metrics (ecs.fargate.*) with these. No
  # version label: the deploy workflow changes only the image and DD_VERSION.
  dd_docker_labels = {
    for svc in ["api", "worker"] : svc => {
      "com.datadoghq.tags.env"     = var.environment
      "com.datadoghq.tags.service" = local.dd_service[svc]
    }
  }

  # FireLens router. parse-json.conf ships in the AWS for Fluent Bit image and
  # lifts the app's JSON line into top-level fields, so Datadog sees
  # timestamp, status (the level), service, event, message, gift_id, request_id, ...
  log_router_container = {
    for svc in ["api", "worker"] : svc => {
      name      = "log-router"
      image     = var.fluent_bit_image
      essential = true
      user      = "0"
      firelensConfiguration = {
        type = "fluentbit"
        options = {
          enable-ecs-log-metadata = "true"
          config-file-type        = "file"
          config-file-value       = "/fluent-bit/configs/parse-json.conf"
        }
      }
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = aws_cloudwatch_log_group.this["log_router"].name
          awslogs-region        = var.aws_region
          awslogs-stream-prefix = svc
        }
      }
      memoryReservation = 64
    }
  }

  datadog_agent_container = {
    for svc in ["api", "worker"] : svc => {
      name      = "datadog-agent"
      image     = var.datadog_agent_image
      essential = false # a Datadog outage must not take the service down
      # DogStatsD is on by default and listens on 127.0.0.1:8125, the app
      # container's own localhost in awsvpc mode (DOGSTATSD_ADDR).
      environment = [
        { name = "ECS_FARGATE", value = "true" },
        { name = "DD_SITE", value = var.datadog_site },
        { name = "DD_ENV", value = var.environment },
        { name = "DD_TAGS", value = "project:${var.project} component:${svc}" },
        { name = "DD_APM_ENABLED", value = "true" },
      ]
      secrets = [{ name = "DD_API_KEY", valueFrom = local.datadog_api_key_secret_arn }]
      healthCheck = {
        command     = ["CMD", "/probe.sh"]
        interval    = 30
        timeout     = 5
        retries     = 3
        startPeriod = 60
      }
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = aws_cloudwatch_log_group.this["datadog_agent"].name
          awslogs-region        = var.aws_region
          awslogs-stream-prefix = svc
        }
      }
      memoryReservation = 256
    }
  }

  sidecars = {
    for svc in ["api", "worker"] : svc => concat(
      local.logs_to_datadog ? [local.log_router_container[svc]] : [],
      [local.datadog_agent_container[svc]],
    )
  }

  api_container = {
    name                   = "gift-api"
    image                  = local.image
    essential              = true
    command                = ["gift-api"]
    portMappings           = [{ name = "http", containerPort = local.api_port, hostPort = local.api_port, protocol = "tcp" }]
    environment            = [for k in sort(keys(local.api_environment)) : { name = k, value = local.api_environment[k] }]
    secrets                = local.app_secret_list
    dockerLabels           = local.dd_docker_labels["api"]
    readonlyRootFilesystem = true
    mountPoints            = [{ sourceVolume = "tmp", containerPath = "/tmp", readOnly = false }]
    stopTimeout            = 30
    logConfiguration       = local.app_log_configuration["api"]
    dependsOn              = local.app_depends_on
  }

  worker_container = {
    name                   = "gift-worker"
    image                  = local.image
    essential              = true
    command                = ["gift-worker"]
    environment            = [for k in sort(keys(local.worker_environment)) : { name = k, value = local.worker_environment[k] }]
    secrets                = local.app_secret_list
    dockerLabels           = local.dd_docker_labels["worker"]
    readonlyRootFilesystem = true
    mountPoints            = [{ sourceVolume = "tmp", containerPath = "/tmp", readOnly = false }]
    stopTimeout            = 30
    # Exits 0 while the worker loop's heartbeat file is fresh. Exec form: the
    # image has no shell. A wedged loop turns the task unhealthy and ECS replaces it.
    healthCheck = {
      command     = ["CMD", "/usr/local/bin/gift-worker", "healthcheck"]
      interval    = 30
      timeout     = 5
      retries     = 3
      startPeriod = 60
    }
    logConfiguration = local.app_log_configuration["worker"]
    dependsOn        = local.app_depends_on
  }
}

# -----------------------------------------------------------------------------
# Cluster
# -----------------------------------------------------------------------------

resource "aws_ecs_cluster" "main" {
  #checkov:skip=CKV_AWS_65:Container Insights follows production_hardening (var.container_insights). In the PoC the Datadog agent sidecar already collects per-container metrics and Datadog reads running/desired counts from the ECS API; Container Insights would add ~50 custom metrics (about $15/month, docs/cost.md) for the same data.
  name = local.name

  setting {
    name  = "containerInsights"
    value = local.container_insights ? "enabled" : "disabled"
  }
}

resource "aws_ecs_cluster_capacity_providers" "main" {
  cluster_name       = aws_ecs_cluster.main.name
  capacity_providers = ["FARGATE", "FARGATE_SPOT"]

  default_capacity_provider_strategy {
    capacity_provider = "FARGATE"
    weight            = 1
  }
}

locals {
  task_subnet_ids = local.private_subnets ? aws_subnet.private[*].id : aws_subnet.public[*].id
}

# -----------------------------------------------------------------------------
# Task definitions. Terraform registers the first revision (image_tag); the
# deploy workflow registers later ones from the latest ACTIVE revision with the
# new image, so Terraform-made changes ride along with the next deploy.
# -----------------------------------------------------------------------------

resource "aws_ecs_task_definition" "api" {
  #checkov:skip=CKV_AWS_336:The gift-api container has a read-only root filesystem. The FireLens router and the Datadog agent sidecars write runtime state (generated fluent-bit config, agent run files) to their own root filesystems and do not support read-only mode.
  family                   = "${local.name}-api"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.api_cpu
  memory                   = var.api_memory
  execution_role_arn       = aws_iam_role.execution["services"].arn
  task_role_arn            = aws_iam_role.api_task.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  volume {
    name = "tmp"
  }

  container_definitions = jsonencode(concat([local.api_container], local.sidecars["api"]))
}

resource "aws_ecs_task_definition" "worker" {
  #checkov:skip=CKV_AWS_336:The gift-worker container has a read-only root filesystem (its heartbeat file lives on the /tmp volume). The FireLens router and Datadog agent sidecars need writable root filesystems.
  family                   = "${local.name}-worker"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.worker_cpu
  memory                   = var.worker_memory
  execution_role_arn       = aws_iam_role.execution["services"].arn
  task_role_arn            = aws_iam_role.worker_task.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  volume {
    name = "tmp"
  }

  container_definitions = jsonencode(concat([local.worker_container], local.sidecars["worker"]))
}

# The schema migrations and the app role, once per deploy. No service runs it:
# .github/workflows/deploy.yml registers a revision with the new image, starts
# one task (`aws ecs run-task`, network from the migrate_network_configuration
# output), waits for it to stop and fails the deploy unless the container
# exited 0, all before it rolls the api. gift-admin logs `event=MIGRATED` on
# success. It runs in the worker's security group, which RDS admits; it has
# its own execution role (the only one besides db-admin's that may read the
# master secret), no task role (no AWS API calls) and no agent sidecar (a few
# seconds of work).
locals {
  migrate_container = {
    name                   = "gift-admin"
    image                  = local.image
    essential              = true
    command                = ["gift-admin", "migrate"]
    environment            = [for k in sort(keys(local.migrate_environment)) : { name = k, value = local.migrate_environment[k] }]
    secrets                = [for k in sort(keys(local.migrate_secrets)) : { name = k, valueFrom = local.migrate_secrets[k] }]
    readonlyRootFilesystem = true
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.this["migrate"].name
        awslogs-region        = var.aws_region
        awslogs-stream-prefix = "migrate"
      }
    }
  }
}

resource "aws_ecs_task_definition" "migrate" {
  family                   = "${local.name}-migrate"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = 256
  memory                   = 512
  execution_role_arn       = aws_iam_role.execution["one_off"].arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  container_definitions = jsonencode([local.migrate_container])

  # The task reads the app secret's value at start; it must exist first.
  depends_on = [aws_secretsmanager_secret_version.db_app, aws_iam_role_policy.execution_secrets]
}

locals {
  # awsvpcConfiguration for `aws ecs run-task` (migrate and db-admin).
  one_off_task_network = jsonencode({
    awsvpcConfiguration = {
      subnets        = local.task_subnet_ids
      securityGroups = [aws_security_group.worker.id]
      assignPublicIp = local.private_subnets ? "DISABLED" : "ENABLED"
    }
  })
}

# -----------------------------------------------------------------------------
# Services
# -----------------------------------------------------------------------------

resource "aws_ecs_service" "api" {
  #checkov:skip=CKV_AWS_333:Public IPs only in PoC mode (private_subnets_enabled = false), where tasks sit in public subnets without a NAT gateway and need a public IP to reach ECR, SQS, Secrets Manager and Datadog. The API security group admits only the ALB. production_hardening moves tasks to private subnets and turns this off.
  name                    = "${local.name}-api"
  cluster                 = aws_ecs_cluster.main.id
  task_definition         = aws_ecs_task_definition.api.arn
  desired_count           = local.api_min_count
  launch_type             = "FARGATE"
  platform_version        = "LATEST"
  enable_ecs_managed_tags = true
  propagate_tags          = "SERVICE"

  # Startup (pool, first connections) takes a few seconds; /healthz itself answers at once.
  health_check_grace_period_seconds  = 60
  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200

  # A deployment whose tasks keep failing (crash, failed ALB health checks)
  # is stopped and the previous task definition is restored automatically.
  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets          = local.task_subnet_ids
    security_groups  = [aws_security_group.api.id]
    assign_public_ip = !local.private_subnets
  }

  load_balancer {
    target_group_arn = aws_lb_target_group.api.arn
    container_name   = "gift-api"
    container_port   = local.api_port
  }

  wait_for_steady_state = false

  lifecycle {
    # task_definition: owned by the deploy workflow after the first apply.
    # desired_count: owned by Application Auto Scaling (autoscaling.tf), whose
    # min/max Terraform does manage.
    ignore_changes = [task_definition, desired_count]
  }

  depends_on = [
    aws_lb_listener.http,
    aws_lb_listener.https,
    aws_secretsmanager_secret_version.db_app,
    aws_iam_role_policy.execution_secrets,
    aws_iam_role_policy.api_task,
  ]
}

resource "aws_ecs_service" "worker" {
  #checkov:skip=CKV_AWS_333:Public IPs only in PoC mode, for outbound calls without a NAT gateway. The worker security group has no inbound rules at all. production_hardening moves tasks to private subnets and turns this off.
  name                    = "${local.name}-worker"
  cluster                 = aws_ecs_cluster.main.id
  task_definition         = aws_ecs_task_definition.worker.arn
  desired_count           = local.worker_min_count
  platform_version        = "LATEST"
  enable_ecs_managed_tags = true
  propagate_tags          = "SERVICE"

  capacity_provider_strategy {
    capacity_provider = var.worker_fargate_spot ? "FARGATE_SPOT" : "FARGATE"
    weight            = 1
  }

  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200

  # Tasks that crash or fail the container health check (stale heartbeat)
  # stop the rollout and restore the previous task definition.
  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets          = local.task_subnet_ids
    security_groups  = [aws_security_group.worker.id]
    assign_public_ip = !local.private_subnets
  }

  wait_for_steady_state = false

  lifecycle {
    ignore_changes = [task_definition, desired_count]
  }

  depends_on = [
    aws_ecs_cluster_capacity_providers.main,
    aws_secretsmanager_secret_version.db_app,
    aws_iam_role_policy.execution_secrets,
    aws_iam_role_policy.worker_task,
  ]
}
