output "network" {
  description = "Self link of the VPC."
  value       = google_compute_network.this.self_link
}

output "network_name" {
  description = "Name of the VPC."
  value       = google_compute_network.this.name
}

output "subnetwork" {
  description = "Self link of the nodes' subnet."
  value       = google_compute_subnetwork.nodes.self_link
}

output "pods_range_name" {
  description = "Name of the subnet's secondary range for pods."
  value       = google_compute_subnetwork.nodes.secondary_ip_range[0].range_name
}

output "services_range_name" {
  description = "Name of the subnet's secondary range for services."
  value       = google_compute_subnetwork.nodes.secondary_ip_range[1].range_name
}

output "node_tag" {
  description = "Network tag the node pools carry (firewall target)."
  value       = local.node_tag
}
