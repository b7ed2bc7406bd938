# A one-off psql task for the operator (docs/runbook.md): the database has no
# public endpoint and the app image has no shell, so SQL is run as a Fargate
# task in the worker's security group, as the master user with the password
# from the RDS-managed secret. It costs nothing while not running. Its output
# goes to CloudWatch (/ecs/<name>/db-admin); the `db_admin_run_task` output
# prints the command to start it.

resource "aws_cloudwatch_log_group" "db_admin" {
  #checkov:skip=CKV_AWS_338:Same retention policy as the other groups (7 or 30 days); see logs.tf.
  name              = "/ecs/${local.name}/db-admin"
  retention_in_days = local.log_retention_days
  kms_key_id        = aws_kms_key.main.arn
}

resource "aws_ecs_task_definition" "db_admin" {
  family                   = "${local.name}-db-admin"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = 256
  memory                   = 512
  execution_role_arn       = aws_iam_role.execution["one_off"].arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  container_definitions = jsonencode([{
    name      = "psql"
    image     = coalesce(var.db_admin_image, "public.ecr.aws/docker/library/postgres:${local.db_engine_major}-alpine")
    essential = true
    # Replaced per run: --overrides '{"containerOverrides":[{"name":"psql","command":["psql","-c","..."]}]}'
    command                = ["psql", "-c", "SELECT status, count(*) FROM gifts GROUP BY status ORDER BY status"]
    readonlyRootFilesystem = true
    environment = [
      { name = "PGHOST", value = aws_db_instance.main.address },
      { name = "PGPORT", value = tostring(aws_db_instance.main.port) },
      { name = "PGDATABASE", value = var.db_name },
      { name = "PGUSER", value = var.db_username },
      { name = "PGSSLMODE", value = "require" },
      { name = "PGAPPNAME", value = "${local.name}-db-admin" },
    ]
    secrets = [{ name = "PGPASSWORD", valueFrom = "${local.db_master_secret_arn}:password::" }]
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.db_admin.name
        awslogs-region        = var.aws_region
        awslogs-stream-prefix = "psql"
      }
    }
  }])
}
