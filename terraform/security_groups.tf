# Security groups. These rules are what make public subnets acceptable for the
# PoC (docs/cost.md): nothing but the ALB accepts connections from the internet,
# the API accepts only the ALB, the worker accepts nothing, and RDS (never in a
# public subnet, never publicly accessible) accepts only the two services.
# Terraform removes the default allow-all egress rule of each group.

resource "aws_security_group" "alb" {
  name        = "${local.name}-alb"
  description = "ALB: HTTP/HTTPS from the allowed CIDRs, out only to the API tasks"
  vpc_id      = aws_vpc.main.id

  tags = { Name = "${local.name}-alb" }
}

resource "aws_security_group" "api" {
  name        = "${local.name}-api"
  description = "API tasks: in from the ALB only; out to HTTPS and PostgreSQL"
  vpc_id      = aws_vpc.main.id

  tags = { Name = "${local.name}-api" }
}

resource "aws_security_group" "worker" {
  name        = "${local.name}-worker"
  description = "Worker tasks: no inbound; out to HTTPS and PostgreSQL"
  vpc_id      = aws_vpc.main.id

  tags = { Name = "${local.name}-worker" }
}

resource "aws_security_group" "db" {
  name        = "${local.name}-db"
  description = "RDS: PostgreSQL from the API and worker tasks only"
  vpc_id      = aws_vpc.main.id

  tags = { Name = "${local.name}-db" }
}

resource "aws_security_group" "endpoints" {
  count = local.interface_endpoints ? 1 : 0

  name        = "${local.name}-endpoints"
  description = "VPC interface endpoints: HTTPS from the ECS tasks"
  vpc_id      = aws_vpc.main.id

  tags = { Name = "${local.name}-endpoints" }
}

locals {
  service_security_groups = {
    api    = aws_security_group.api.id
    worker = aws_security_group.worker.id
  }
}

# --- ALB ---------------------------------------------------------------------

resource "aws_vpc_security_group_ingress_rule" "alb_http" {
  #checkov:skip=CKV_AWS_260:This is the public entry point of a public API (alb_ingress_cidrs can narrow it). Port 80 serves the API only in PoC mode; with a certificate it only redirects to 443.
  for_each = toset(var.alb_ingress_cidrs)

  security_group_id = aws_security_group.alb.id
  description       = local.https ? "HTTP (redirected to HTTPS)" : "HTTP"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = 80
  to_port           = 80
}

resource "aws_vpc_security_group_ingress_rule" "alb_https" {
  for_each = local.https ? toset(var.alb_ingress_cidrs) : toset([])

  security_group_id = aws_security_group.alb.id
  description       = "HTTPS"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

resource "aws_vpc_security_group_egress_rule" "alb_to_api" {
  security_group_id            = aws_security_group.alb.id
  description                  = "To the API tasks (traffic and health checks)"
  referenced_security_group_id = aws_security_group.api.id
  ip_protocol                  = "tcp"
  from_port                    = local.api_port
  to_port                      = local.api_port
}

# --- API ---------------------------------------------------------------------

resource "aws_vpc_security_group_ingress_rule" "api_from_alb" {
  security_group_id            = aws_security_group.api.id
  description                  = "From the ALB only"
  referenced_security_group_id = aws_security_group.alb.id
  ip_protocol                  = "tcp"
  from_port                    = local.api_port
  to_port                      = local.api_port
}

# --- egress shared by both services -------------------------------------------
# HTTPS out: ECR, SQS, Secrets Manager, CloudWatch Logs (or their VPC endpoints)
# and the Datadog intake (agent metrics, FireLens logs), which has no fixed IPs.

resource "aws_vpc_security_group_egress_rule" "https_out" {
  for_each = local.service_security_groups

  security_group_id = each.value
  description       = "HTTPS to AWS APIs and the Datadog intake"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

resource "aws_vpc_security_group_egress_rule" "postgres_out" {
  for_each = local.service_security_groups

  security_group_id            = each.value
  description                  = "PostgreSQL to RDS"
  referenced_security_group_id = aws_security_group.db.id
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
}

# --- RDS ---------------------------------------------------------------------

resource "aws_vpc_security_group_ingress_rule" "db_from_services" {
  for_each = local.service_security_groups

  security_group_id            = aws_security_group.db.id
  description                  = "PostgreSQL from the ${each.key} tasks"
  referenced_security_group_id = each.value
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
}

# --- VPC interface endpoints ---------------------------------------------------

resource "aws_vpc_security_group_ingress_rule" "endpoints_from_services" {
  for_each = { for k, v in local.service_security_groups : k => v if local.interface_endpoints }

  security_group_id            = aws_security_group.endpoints[0].id
  description                  = "HTTPS from the ${each.key} tasks"
  referenced_security_group_id = each.value
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
}
