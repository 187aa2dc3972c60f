output "namespace" {
  description = "Namespace of the workflows, the workspace S3 server and the workspace claim."
  value       = kubernetes_namespace_v1.workflows.metadata[0].name
}

output "workflow_service_account" {
  description = "Service account the workflow pods run as."
  value       = kubernetes_service_account_v1.workflow.metadata[0].name
}

output "workspace_pvc" {
  description = "ReadWriteMany claim of the shared workspace (mount it with subPath workspace at /workspace)."
  value       = kubernetes_persistent_volume_claim_v1.workspace.metadata[0].name
}

output "storage_class" {
  description = "Storage class of the workspace claim (for the static Filestore volume: a class without a provisioner)."
  value       = kubernetes_persistent_volume_claim_v1.workspace.spec[0].storage_class_name
}

output "workspace_s3_service" {
  description = "The workspace's S3 endpoint inside the cluster (rclone serve s3, ClusterIP)."
  value       = "http://${kubernetes_service_v1.workspace_s3.metadata[0].name}.${kubernetes_namespace_v1.workflows.metadata[0].name}.svc:9000"
}

output "workspace_s3_secret" {
  description = "Secret holding the workspace S3 credentials (keys root-user, root-password); the values are never outputs."
  value       = kubernetes_secret_v1.workspace_s3.metadata[0].name
}
