output "results_bucket" {
  description = "Name of the results bucket."
  value       = aws_s3_bucket.results.id
}

output "efs_id" {
  description = "ID of the shared EFS file system (for the efs.csi.aws.com storage class)."
  value       = aws_efs_file_system.shared.id
}

output "repository_urls" {
  description = "ECR repository URL per repository name."
  value       = { for name, repo in aws_ecr_repository.tools : name => repo.repository_url }
}

output "workflow_role_arn" {
  description = "IAM role for the workflow service account (eks.amazonaws.com/role-arn annotation)."
  value       = aws_iam_role.workflow.arn
}

output "efs_csi_role_arn" {
  description = "IAM role of the EFS CSI controller (kube-system/efs-csi-controller-sa; eks.amazonaws.com/role-arn)."
  value       = aws_iam_role.efs_csi.arn
}

output "autoscaler_role_arn" {
  description = "IAM role of the cluster autoscaler (kube-system/cluster-autoscaler; eks.amazonaws.com/role-arn)."
  value       = aws_iam_role.autoscaler.arn
}
