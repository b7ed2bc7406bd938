terraform {
  # 1.10+ for S3 native state locking (use_lockfile) in the backend config.
  required_version = ">= 1.10.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.80, < 7.0"
    }
    datadog = {
      source  = "DataDog/datadog"
      version = "~> 3.60"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.6"
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
