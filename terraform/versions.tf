terraform {
  # 1.11: write-only arguments and ephemeral resources keep generated secrets out of the state.
  required_version = ">= 1.11.0, < 2.0.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.71.0"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.7.0"
    }
  }

  # Keep the state in S3 with locking; fill in and uncomment (see README "Deploy").
  # backend "s3" {
  #   bucket       = "my-terraform-state"
  #   key          = "deloton/terraform.tfstate"
  #   region       = "eu-west-2"
  #   encrypt      = true
  #   use_lockfile = true
  # }
}

provider "aws" {
  region = var.aws_region

  default_tags {
    tags = merge(var.tags, {
      Project   = "deloton-stream"
      ManagedBy = "terraform"
    })
  }
}
