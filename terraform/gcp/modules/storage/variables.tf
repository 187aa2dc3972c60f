variable "name" {
  description = "Cluster name; prefixes resource names."
  type        = string
}

variable "project" {
  description = "Project id (Workload Identity members name it)."
  type        = string
}

variable "region" {
  description = "Region of the bucket and the image repository."
  type        = string
}

variable "bucket" {
  description = "Name of the results bucket (globally unique)."
  type        = string
}

variable "archive_after_days" {
  description = "Days after which results move to the ARCHIVE storage class."
  type        = number
  default     = 90
}

variable "noncurrent_delete_days" {
  description = "Days to keep overwritten or deleted versions of results."
  type        = number
  default     = 30
}

variable "repository_id" {
  description = "Artifact Registry repository for the tool images."
  type        = string
}

variable "node_service_account" {
  description = "Email of the nodes' service account (cluster stack): may pull from the repository."
  type        = string
}

variable "workload_pool" {
  description = "Workload Identity pool of the cluster (cluster stack), <project>.svc.id.goog."
  type        = string
}

variable "workflow_namespace" {
  description = "Kubernetes namespace the pipelines run in."
  type        = string
  default     = "bioinfra"
}

variable "workflow_service_account" {
  description = "Kubernetes service account of the pipelines' pods."
  type        = string
  default     = "bioinfra-workflow"
}

variable "workflow_account_id" {
  description = "account_id of the Google service account the pipelines act as (6-30 characters)."
  type        = string
}

variable "network" {
  description = "Name of the VPC (network stack), for Filestore."
  type        = string
}

variable "filestore" {
  description = "Create a Filestore instance for ReadWriteMany volumes."
  type        = bool
  default     = false
}

variable "filestore_tier" {
  description = "Filestore tier: BASIC_HDD, BASIC_SSD, ZONAL or REGIONAL."
  type        = string
  default     = "BASIC_HDD"
}

variable "filestore_capacity_gb" {
  description = "Filestore capacity, GB (BASIC_HDD from 1024)."
  type        = number
  default     = 1024
}

variable "filestore_location" {
  description = "Zone (BASIC_*, ZONAL tiers) or region (REGIONAL tier) of the Filestore instance."
  type        = string
  default     = ""
}
