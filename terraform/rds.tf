# PostgreSQL on RDS, in the database subnets (no internet route), reachable
# only from the API and worker security groups. TLS is enforced in both modes
# (rds.force_ssl = 1): it costs nothing and the binaries connect with
# DB_SSLMODE=require.

locals {
  # "16.4" -> "16": the parameter-group family and the psql image follow the major.
  db_engine_major = split(".", var.db_engine_version)[0]
}

resource "random_password" "db" {
  length  = 40
  special = true
  # RDS forbids / @ " and space in the master password; keep to URL-safe extras
  # so the value also works inside a DATABASE_URL if someone builds one by hand.
  override_special = "-_.~"
}

resource "aws_secretsmanager_secret" "db_password" {
  #checkov:skip=CKV2_AWS_57:No automatic rotation: tasks read DB_PASSWORD once at start (ECS secret injection), so a rotation Lambda would break running tasks until they are replaced. Rotation is a documented manual procedure (docs/IMPORT_NOTES.md).
  name                    = "${local.name}/db-password"
  description             = "Master password of the ${local.name} RDS instance; injected into the api and worker tasks as DB_PASSWORD."
  kms_key_id              = aws_kms_key.main.arn
  recovery_window_in_days = 7
}

resource "aws_secretsmanager_secret_version" "db_password" {
  secret_id     = aws_secretsmanager_secret.db_password.id
  secret_string = random_password.db.result
}

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
  #checkov:skip=CKV_AWS_161:IAM database authentication is not used: the binaries authenticate with the Secrets Manager password (DB_PASSWORD). IAM tokens expire every 15 minutes and would need a token-refreshing connection pool.
  identifier     = local.name
  engine         = "postgres"
  engine_version = var.db_engine_version
  instance_class = var.db_instance_class

  db_name  = var.db_name
  username = var.db_username
  password = random_password.db.result
  port     = 5432

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
