terraform {
  required_providers {
    google = {
      source = "hashicorp/google"
      # google_cloud_run_v2_worker_pool is in the google provider from 6.41.
      version = ">= 6.41"
    }
  }
}
