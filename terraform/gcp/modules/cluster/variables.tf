variable "name" {
  description = "Cluster name."
  type        = string
}

variable "project" {
  description = "Project id (for the Workload Identity pool and the node service account's roles)."
  type        = string
}

variable "region" {
  description = "Region of the (regional) cluster."
  type        = string
}

variable "zones" {
  description = "Zones the nodes run in; empty = every zone GKE picks in the region."
  type        = list(string)
  default     = []
}

variable "network" {
  description = "Self link of the VPC (network stack)."
  type        = string
}

variable "subnetwork" {
  description = "Self link of the nodes' subnet (network stack)."
  type        = string
}

variable "pods_range_name" {
  description = "Secondary range of the subnet for pod IPs."
  type        = string
}

variable "services_range_name" {
  description = "Secondary range of the subnet for service IPs."
  type        = string
}

variable "release_channel" {
  description = "GKE release channel: RAPID, REGULAR or STABLE."
  type        = string
  default     = "REGULAR"

  validation {
    condition     = contains(["RAPID", "REGULAR", "STABLE"], var.release_channel)
    error_message = "release_channel must be RAPID, REGULAR or STABLE."
  }
}

variable "master_cidr" {
  description = "The control plane's private /28."
  type        = string
}

variable "private_endpoint" {
  description = "Kubernetes API reachable only inside the VPC."
  type        = bool
  default     = false
}

variable "master_authorized_networks" {
  description = "CIDRs that may reach the Kubernetes API endpoint."
  type        = list(string)
}

variable "deletion_protection" {
  description = "Terraform refuses to delete the cluster while true (bioinfra destroy sets it false first)."
  type        = bool
  default     = true
}

variable "filestore_csi" {
  description = "Enable the Filestore CSI driver (ReadWriteMany volumes on Filestore)."
  type        = bool
  default     = false
}

variable "node_service_account_id" {
  description = "account_id of the nodes' service account (6-30 characters)."
  type        = string
}
