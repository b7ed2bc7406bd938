# PostgreSQL on RDS, in the database subnets (no internet route), reachable
# only from the API and worker security groups. TLS is enforced in both modes
# (rds.force_ssl = 1): it costs nothing and the binaries connect with
# DB_SSLMODE=require.
#
# Two database roles, and no password of either in the Terraform state:
#   master (var.db_username)      RDS generates, keeps and rotates its password in
#                                 a Secrets Manager secret of its own
#                                 (manage_master_user_password). Only the one-off
#                                 migrate task and the db-admin psql task use it.
#   app (var.db_app_username)     what the api and worker connect as: data only,
#                                 no DDL. Its password is generated ephemerally
#                                 and written write-only into the db-app secret;
#                                 `gift-admin migrate` creates the role and sets
#                                 that password on every run.

locals {
  # "16.4" -> "16": the parameter-group family and the psql image follow the major.
  db_engine_major = split(".", var.db_engine_version)[0]

  # JSON secrets with the keys username and password (the shape RDS uses for the
  # master secret); ECS picks one key with "<arn>:password::".
  db_master_secret_arn = aws_db_instance.main.master_user_secret[0].secret_arn
}

# --- the app role's secret -------------------------------------------------------

# Ephemeral: generated on every plan and apply, never stored. It reaches AWS only
# through the write-only secret_string_wo below, which Terraform sends when
# secret_string_wo_version changes (on create, and when db_app_password_version
# is raised).
ephemeral "random_password" "db_app" {
  length  = 40
  special = true
  # URL-safe extras, so the value also works inside a DATABASE_URL built by hand.
  override_special = "-_.~"
}

resource "aws_secretsmanager_secret" "db_app" {
  #checkov:skip=CKV2_AWS_57:No rotation Lambda: tasks read DB_PASSWORD once at start (ECS secret injection) and the role's password is set by `gift-admin migrate`, so a rotation is db_app_password_version + apply + a deploy (docs/IMPORT_NOTES.md), not a Lambda that would change the role under running tasks.
  name                    = "${local.name}/db-app"
  description             = "Password of the ${var.db_app_username} role (JSON: username, password): DB_PASSWORD of the api and worker tasks, APP_DB_PASSWORD of the migrate task."
  kms_key_id              = aws_kms_key.main.arn
  recovery_window_in_days = 7
}

resource "aws_secretsmanager_secret_version" "db_app" {
  secret_id = aws_secretsmanager_secret.db_app.id
  secret_string_wo = jsonencode({
    username = var.db_app_username
    password = ephemeral.random_password.db_app.result
  })
  secret_string_wo_version = var.db_app_password_version
}

# --- instance ----------------------------------------------------------------------

resource "aws_db_subnet_group" "main" {
  name       = local.name
  subnet_ids = aws_subnet.database[*].id
}

resource "aws_db_parameter_group" "main" {
  # name_prefix: a change of family (a new major) or any other replacement
  # creates the new group before the old one is destroyed, and two groups cannot
  # share a name.
  name_prefix = "${local.name}-pg${local.db_engine_major}-"
  family      = "postgres${local.db_engine_major}"
  description = "${local.name}: TLS enforced, slow-query and DDL logging"

  parameter {
    name         = "rds.force_ssl"
    value        = "1"
    apply_method = "pending-reboot"
  }

  # Log statements slower than 500 ms (the API's p95 SLO is 300 ms end to end).
  parameter {
    name  = "log_min_duration_statement"
    value = "500"
  }

  # Migrations are the only DDL; logging them leaves a trail of schema changes.
  parameter {
    name  = "log_statement"
    value = "ddl"
  }

  parameter {
    name  = "log_lock_waits"
    value = "1"
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_db_instance" "main" {
  #checkov:skip=CKV_AWS_157:Multi-AZ follows the production_hardening switch (var.multi_az). The PoC runs single-AZ on purpose to halve the database cost (docs/cost.md).
  #checkov:skip=CKV_AWS_161:IAM database authentication is not used: the binaries authenticate with passwords from Secrets Manager (DB_PASSWORD). IAM tokens expire every 15 minutes and would need a token-refreshing connection pool.
  identifier     = local.name
  engine         = "postgres"
  engine_version = var.db_engine_version
  instance_class = var.db_instance_class

  db_name  = var.db_name
  username = var.db_username
  # RDS creates the master password and keeps it in a secret encrypted with the
  # stack's key; the execution role may decrypt it (iam.tf).
  manage_master_user_password   = true
  master_user_secret_kms_key_id = aws_kms_key.main.arn
  port                          = 5432

  allocated_storage     = var.db_allocated_storage_gb
  max_allocated_storage = var.db_max_allocated_storage_gb
  storage_type          = "gp3"
  storage_encrypted     = true
  kms_key_id            = aws_kms_key.main.arn

  multi_az               = local.multi_az
  db_subnet_group_name   = aws_db_subnet_group.main.name
  vpc_security_group_ids = [aws_security_group.db.id]
  publicly_accessible    = false
  parameter_group_name   = aws_db_parameter_group.main.name
  ca_cert_identifier     = "rds-ca-rsa2048-g1"

  backup_retention_period   = var.db_backup_retention_days
  backup_window             = "17:00-17:30"
  maintenance_window        = "sun:18:00-sun:18:30"
  copy_tags_to_snapshot     = true
  deletion_protection       = var.deletion_protection
  skip_final_snapshot       = var.db_skip_final_snapshot
  final_snapshot_identifier = "${local.name}-final"

  auto_minor_version_upgrade  = true
  allow_major_version_upgrade = var.db_allow_major_version_upgrade
  # Production changes wait for the maintenance window; the PoC applies at once.
  apply_immediately = !local.hardening

  enabled_cloudwatch_logs_exports       = ["postgresql", "upgrade"]
  monitoring_interval                   = 60
  monitoring_role_arn                   = aws_iam_role.rds_monitoring.arn
  performance_insights_enabled          = true
  performance_insights_retention_period = 7
  performance_insights_kms_key_id       = aws_kms_key.main.arn

  depends_on = [aws_cloudwatch_log_group.this]
}
