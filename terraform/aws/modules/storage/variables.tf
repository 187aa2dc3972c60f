variable "name" {
  description = "Cluster name; prefixes resource names."
  type        = string
}

variable "role_names" {
  description = "Names of the IRSA roles (IAM is global: they carry the region)."
  type        = object({ workflow = string, efs_csi = string, autoscaler = string })

  validation {
    condition     = alltrue([for name in values(var.role_names) : length(name) <= 64])
    error_message = "IAM role names are at most 64 characters."
  }
}

variable "bucket" {
  description = "Name of the results bucket (globally unique)."
  type        = string
}

variable "glacier_after_days" {
  description = "Days after which results move to S3 Glacier Instant Retrieval (still read without a restore)."
  type        = number
  default     = 90
}

variable "noncurrent_expire_days" {
  description = "Days to keep overwritten or deleted versions of results before they expire."
  type        = number
  default     = 30
}

variable "repositories" {
  description = "ECR repositories to create, one per tool image (\"<name>/<tool>\")."
  type        = list(string)
}

variable "vpc_id" {
  description = "VPC of the cluster (for the EFS security group)."
  type        = string
}

variable "vpc_cidr" {
  description = "IPv4 range allowed to mount EFS (NFS, port 2049)."
  type        = string
}

variable "private_subnet_ids" {
  description = "Subnets that get an EFS mount target, one per zone."
  type        = list(string)
}

variable "oidc_provider_arn" {
  description = "ARN of the cluster's IAM OIDC provider."
  type        = string
}

variable "oidc_issuer" {
  description = "Issuer host/path of the cluster's service-account tokens (no https://)."
  type        = string
}

variable "workflow_namespace" {
  description = "Kubernetes namespace the pipelines run in."
  type        = string
  default     = "bioinfra"
}

variable "workflow_service_account" {
  description = "Kubernetes service account the pipelines' pods run as (in workflow_namespace)."
  type        = string
  default     = "bioinfra-workflow"
}
