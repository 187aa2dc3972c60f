output "cluster_name" {
  description = "Name of the GKE cluster."
  value       = google_container_cluster.this.name
}

output "cluster_id" {
  description = "Id of the cluster (projects/P/locations/R/clusters/N), for node pools."
  value       = google_container_cluster.this.id
}

output "cluster_endpoint" {
  description = "Address of the Kubernetes API."
  value       = google_container_cluster.this.endpoint
}

output "cluster_ca" {
  description = "Base64 CA certificate of the Kubernetes API."
  value       = google_container_cluster.this.master_auth[0].cluster_ca_certificate
}

output "node_service_account" {
  description = "Email of the nodes' service account."
  value       = google_service_account.nodes.email
}

output "workload_pool" {
  description = "Workload Identity pool of the cluster."
  value       = google_container_cluster.this.workload_identity_config[0].workload_pool
}
