# IAM. The execution role (used by the ECS agent: pull the image, write
# awslogs, inject secrets) is separate from the task roles (used by the
# binaries: SQS on the send queue, and for the worker's role also the DLQ
# reads gift-admin needs; nothing else). The migrate and db-admin
# one-off tasks have an execution role of their own and no task role: they
# call no AWS API.

data "aws_iam_policy_document" "ecs_tasks_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

# --- execution roles ------------------------------------------------------------
# Two: one for the api and worker, one for the one-off tasks (migrate,
# db-admin), so that only the one-off task definitions can have the master
# user's password injected; the services' execution role cannot read it.

locals {
  execution_roles = {
    services = {
      name        = "${local.name}-ecs-execution"
      description = "ECS agent for the ${local.name} api and worker: image pull, logs, the app DB and Datadog secrets"
    }
    one_off = {
      name        = "${local.name}-ecs-admin-execution"
      description = "ECS agent for the ${local.name} migrate and db-admin tasks: image pull, logs, the master and app DB secrets"
    }
  }

  # Apart from the roles above, so that only the policies wait for the RDS
  # instance (the master secret is known once it exists).
  execution_role_secrets = {
    # DB_PASSWORD (the app role), the Datadog API key (sidecars).
    services = [aws_secretsmanager_secret.db_app.arn, local.datadog_api_key_secret_arn]
    # The RDS-managed master secret (DB_PASSWORD, PGPASSWORD), the app role's
    # (APP_DB_PASSWORD, which migrate sets on the role).
    one_off = [local.db_master_secret_arn, aws_secretsmanager_secret.db_app.arn]
  }
}

resource "aws_iam_role" "execution" {
  for_each = local.execution_roles

  name               = each.value.name
  description        = each.value.description
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

# ECR pull (GetAuthorizationToken has no resource scope) and awslogs.
resource "aws_iam_role_policy_attachment" "execution_managed" {
  for_each = local.execution_roles

  role       = aws_iam_role.execution[each.key].name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
}

data "aws_iam_policy_document" "execution_secrets" {
  for_each = local.execution_roles

  statement {
    sid       = "ReadInjectedSecrets"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = local.execution_role_secrets[each.key]
  }

  # Every one of them is encrypted with the stack's key (the master secret
  # through master_user_secret_kms_key_id).
  statement {
    sid       = "DecryptInjectedSecrets"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.main.arn]
  }
}

resource "aws_iam_role_policy" "execution_secrets" {
  for_each = local.execution_roles

  name   = "inject-secrets"
  role   = aws_iam_role.execution[each.key].id
  policy = data.aws_iam_policy_document.execution_secrets[each.key].json
}

# --- task roles: one per service, scoped to the queues ------------------------------

resource "aws_iam_role" "api_task" {
  name               = "${local.name}-api-task"
  description        = "gift-api: publish to the send queue"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

data "aws_iam_policy_document" "api_task" {
  statement {
    sid = "PublishSends"
    actions = [
      "sqs:SendMessage",
      "sqs:GetQueueAttributes",
    ]
    resources = [aws_sqs_queue.main.arn]
  }
}

resource "aws_iam_role_policy" "api_task" {
  name   = "sqs-send"
  role   = aws_iam_role.api_task.id
  policy = data.aws_iam_policy_document.api_task.json
}

resource "aws_iam_role" "worker_task" {
  name               = "${local.name}-worker-task"
  description        = "gift-worker: consume the send queue and relay the outbox to it; gift-admin (same task definition): redrive the DLQ"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

data "aws_iam_policy_document" "worker_task" {
  statement {
    sid = "ConsumeAndRelaySends"
    actions = [
      "sqs:ReceiveMessage",
      "sqs:DeleteMessage",
      "sqs:ChangeMessageVisibility",
      # The outbox relay runs inside the worker process and publishes.
      "sqs:SendMessage",
    ]
    resources = [aws_sqs_queue.main.arn]
  }

  # Not for the worker: gift-worker never reads the DLQ (it reads only
  # SQS_QUEUE_URL; SQS itself moves a message there after max_receives).
  # `gift-admin redrive-dlq` runs as a one-off task of the worker's task
  # definition (docs/runbook.md), so it has this role: it receives from the
  # DLQ, deletes what it decided, and makes the rest visible again. The
  # re-arm goes through the outbox, so it needs nothing more on the send
  # queue. GetQueueAttributes reads only metadata (depth, ARN); redrive-dlq
  # does not call it today.
  statement {
    sid = "AdminRedriveDlq"
    actions = [
      "sqs:ReceiveMessage",
      "sqs:DeleteMessage",
      "sqs:ChangeMessageVisibility",
      "sqs:GetQueueAttributes",
    ]
    resources = [aws_sqs_queue.dlq.arn]
  }
}

resource "aws_iam_role_policy" "worker_task" {
  name   = "sqs-consume"
  role   = aws_iam_role.worker_task.id
  policy = data.aws_iam_policy_document.worker_task.json
}

# --- RDS enhanced monitoring --------------------------------------------------------

data "aws_iam_policy_document" "rds_monitoring_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["monitoring.rds.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "rds_monitoring" {
  name               = "${local.name}-rds-monitoring"
  assume_role_policy = data.aws_iam_policy_document.rds_monitoring_assume.json
}

resource "aws_iam_role_policy_attachment" "rds_monitoring" {
  role       = aws_iam_role.rds_monitoring.name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
}

# --- VPC flow logs --------------------------------------------------------------------

data "aws_iam_policy_document" "flow_logs_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["vpc-flow-logs.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "flow_logs" {
  name               = "${local.name}-flow-logs"
  assume_role_policy = data.aws_iam_policy_document.flow_logs_assume.json
}

data "aws_iam_policy_document" "flow_logs" {
  statement {
    actions = [
      "logs:CreateLogStream",
      "logs:PutLogEvents",
      "logs:DescribeLogGroups",
      "logs:DescribeLogStreams",
    ]
    resources = [
      aws_cloudwatch_log_group.this["flow_logs"].arn,
      "${aws_cloudwatch_log_group.this["flow_logs"].arn}:*",
    ]
  }
}

resource "aws_iam_role_policy" "flow_logs" {
  name   = "write-flow-logs"
  role   = aws_iam_role.flow_logs.id
  policy = data.aws_iam_policy_document.flow_logs.json
}
