variable "name" {
  description = "EKS cluster name."
  type        = string
}

variable "kubernetes_version" {
  description = "Kubernetes minor version of the control plane, e.g. \"1.35\"."
  type        = string
}

variable "role_names" {
  description = "Names of the control plane's and the nodes' IAM roles (IAM is global: they carry the region)."
  type        = object({ cluster = string, node = string })

  validation {
    condition     = alltrue([for name in values(var.role_names) : length(name) <= 64])
    error_message = "IAM role names are at most 64 characters."
  }
}

variable "subnet_ids" {
  description = "Private subnets (two or more zones) for the control plane's network interfaces."
  type        = list(string)
}

variable "private_endpoint" {
  description = "Serve the Kubernetes API only inside the VPC (no public endpoint)."
  type        = bool
  default     = false
}

variable "public_access_cidrs" {
  description = "Networks allowed to reach the public API endpoint when it is enabled."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "log_retention_days" {
  description = "Days to keep control-plane logs in CloudWatch."
  type        = number
  default     = 30
}

variable "access_entries" {
  description = "Authentication mode API_AND_CONFIG_MAP with an access entry (cluster admin) for the caller and each of admin_arns. false only where the EKS API has no access entries (an emulator)."
  type        = bool
  default     = true
}

variable "network_policy_agent" {
  description = "Install the VPC CNI as a managed add-on with enableNetworkPolicy, so that NetworkPolicies are enforced. false only where the EKS API has no add-ons (an emulator)."
  type        = bool
  default     = true
}

variable "admin_arns" {
  description = "IAM role or user ARNs given AmazonEKSClusterAdminPolicy on the whole cluster, besides the identity that applies this module."
  type        = list(string)
  default     = []
}

variable "upgrade_support_type" {
  description = "The cluster's upgrade policy: STANDARD (upgraded by EKS when standard support ends) or EXTENDED (kept, at the extended-support price). null only where the EKS API has no upgrade policy (an emulator)."
  type        = string
  default     = "STANDARD"

  validation {
    condition     = var.upgrade_support_type == null ? true : contains(["STANDARD", "EXTENDED"], var.upgrade_support_type)
    error_message = "upgrade_support_type is STANDARD, EXTENDED or null."
  }
}
