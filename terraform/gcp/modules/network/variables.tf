variable "name" {
  description = "Cluster name; prefixes every resource name (networks, routers and firewalls take no labels, so the sweep finds them by this prefix)."
  type        = string
}

variable "region" {
  description = "Region of the subnet, router and NAT."
  type        = string
}

variable "subnet_cidr" {
  description = "Primary IPv4 range of the nodes' subnet."
  type        = string
}

variable "pods_cidr" {
  description = "Secondary range for pod IPs (VPC-native cluster)."
  type        = string
}

variable "services_cidr" {
  description = "Secondary range for Kubernetes service IPs."
  type        = string
}

variable "master_cidr" {
  description = "The control plane's private /28: the source of admission-webhook calls to the nodes."
  type        = string
}
