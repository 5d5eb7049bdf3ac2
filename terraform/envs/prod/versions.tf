terraform {
  required_version = ">= 1.5.0"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 6.41" # 6.41: google_cloud_run_v2_worker_pool
    }
    archive = {
      source  = "hashicorp/archive"
      version = "~> 2.4"
    }
  }

  # State is local until you add a bucket (see docs/deploy.md), for example:
  # backend "gcs" {
  #   bucket = "my-project-tfstate"
  #   prefix = "devgem/prod"
  # }
}

provider "google" {
  project = var.project
  region  = var.region
}
