output "results_bucket" {
  description = "Name of the results bucket."
  value       = google_storage_bucket.results.name
}

output "repository_url" {
  description = "Docker path of the image repository (<region>-docker.pkg.dev/<project>/<repository>)."
  value       = "${var.region}-docker.pkg.dev/${var.project}/${google_artifact_registry_repository.images.repository_id}"
}

output "workflow_service_account" {
  description = "Email of the Google service account the pipelines' pods act as."
  value       = google_service_account.workflow.email
}

output "filestore_ip" {
  description = "IP address of the Filestore instance (empty without one)."
  value       = var.filestore ? google_filestore_instance.workspace[0].networks[0].ip_addresses[0] : ""
}

output "filestore_share" {
  description = "Name of the Filestore share (empty without one)."
  value       = var.filestore ? google_filestore_instance.workspace[0].file_shares[0].name : ""
}
