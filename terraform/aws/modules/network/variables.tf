variable "name" {
  description = "Cluster name; prefixes every resource name and fills the kubernetes.io/cluster/<name> subnet tag."
  type        = string
}

variable "flow_logs_role_name" {
  description = "Name of the IAM role VPC flow logs write as (IAM is global: it carries the region)."
  type        = string

  validation {
    condition     = length(var.flow_logs_role_name) <= 64
    error_message = "IAM role names are at most 64 characters."
  }
}

variable "cidr" {
  description = "IPv4 range of the VPC; split into one public and one private subnet per availability zone."
  type        = string
  default     = "10.0.0.0/16"
}

variable "az_count" {
  description = "How many availability zones to spread subnets over (EKS needs at least two)."
  type        = number
  default     = 2

  validation {
    condition     = var.az_count >= 2 && var.az_count <= 6
    error_message = "az_count must be between 2 and 6: EKS needs subnets in at least two zones."
  }
}

variable "single_nat_gateway" {
  description = "One NAT gateway for all zones (cheaper) instead of one per zone (survives a zone outage)."
  type        = bool
  default     = true
}

variable "flow_log_retention_days" {
  description = "Days to keep VPC flow logs in CloudWatch."
  type        = number
  default     = 30
}

variable "excluded_zone_ids" {
  description = "Availability zone IDs never used: those where EKS does not place control planes (us-east-1 use1-az3, us-west-1 usw1-az2, ca-central-1 cac1-az3). Ref https://docs.aws.amazon.com/eks/latest/userguide/network-reqs.html"
  type        = list(string)
  default     = ["use1-az3", "usw1-az2", "cac1-az3"]
}
