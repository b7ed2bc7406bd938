# Shared locals: the PoC / production switch resolved once, names, tags.

data "aws_caller_identity" "current" {}

# Used only when var.availability_zones is not set. Pin the zones in tfvars for
# anything long-lived: the first az_count *available* zones can change if a
# zone is impaired at plan time, which would move subnets.
data "aws_availability_zones" "available" {
  #checkov:skip=CKV_AWS_394:Only a fallback: var.availability_zones pins the zone names (the example tfvars set it), and only the first az_count zones of this list are used.
  state = "available"
}

locals {
  name      = "${var.project}-${var.environment}"
  hardening = var.production_hardening

  # Each knob: explicit value if given, otherwise follow the switch.
  private_subnets     = coalesce(var.private_subnets_enabled, local.hardening)
  nat_per_az          = coalesce(var.nat_gateway_per_az, local.hardening)
  interface_endpoints = local.private_subnets && var.vpc_interface_endpoints_enabled
  multi_az            = coalesce(var.multi_az, local.hardening)
  autoscaling         = coalesce(var.autoscaling_enabled, local.hardening)
  waf                 = coalesce(var.waf_enabled, local.hardening)
  container_insights  = coalesce(var.container_insights, local.hardening)
  log_retention_days  = coalesce(var.log_retention_days, local.hardening ? 30 : 7)
  https               = var.acm_certificate_arn != null

  api_min_count    = coalesce(var.api_min_count, local.hardening ? 2 : 1)
  worker_min_count = coalesce(var.worker_min_count, local.hardening ? 2 : 1)
  api_max_count    = local.autoscaling ? max(var.api_max_count, local.api_min_count) : local.api_min_count
  worker_max_count = local.autoscaling ? max(var.worker_max_count, local.worker_min_count) : local.worker_min_count

  azs       = var.availability_zones != null ? var.availability_zones : slice(data.aws_availability_zones.available.names, 0, var.az_count)
  az_count  = length(local.azs)
  nat_count = local.private_subnets ? (local.nat_per_az ? local.az_count : 1) : 0

  account_id = data.aws_caller_identity.current.account_id
  api_port   = 8080

  tags = merge(
    {
      Project     = var.project
      Environment = var.environment
      ManagedBy   = "terraform"
    },
    var.tags,
  )
}
