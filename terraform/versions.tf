terraform {
  # 1.11+: write-only arguments (secret_string_wo keeps the app role's password
  # out of the state); ephemeral resources need 1.10, as does S3 native state
  # locking (use_lockfile) in the backend config.
  required_version = ">= 1.11.0"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # 5.88: aws_secretsmanager_secret_version.secret_string_wo / _wo_version.
      version = ">= 5.88, < 7.0"
    }
    datadog = {
      source = "DataDog/datadog"
      # 3.76: data source datadog_integration_aws_iam_permissions_standard
      # (the full list, datadog_integration_aws_iam_permissions, came in 3.72).
      # 4.x removes only what this configuration does not use (monitor
      # `locked`, the legacy datadog_integration_aws resources) and needs
      # Terraform >= 1.1.5.
      version = ">= 3.76, < 5.0"
    }
    random = {
      source = "hashicorp/random"
      # 3.7: the ephemeral random_password (value never in plan or state).
      version = "~> 3.7"
    }
  }

  # Partial configuration: bucket, key, region and use_lockfile come from
  # `terraform init -backend-config=backend.hcl` (see backend.hcl.example and
  # docs/IMPORT_NOTES.md). CI validates with `terraform init -backend=false`.
  backend "s3" {}
}

provider "aws" {
  region = var.aws_region

  default_tags {
    tags = local.tags
  }
}

# Credentials come from the environment (DD_API_KEY and DD_APP_KEY), never
# from tfvars, so they end up neither in the repository nor in the state.
provider "datadog" {
  api_url = "https://api.${var.datadog_site}/"
}
