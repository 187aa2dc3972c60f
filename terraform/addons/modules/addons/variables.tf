variable "name" {
  description = "Cluster name; labels every object (bioinfra.io/cluster)."
  type        = string
}

variable "target" {
  description = "Where the cluster runs: aws, gcp or onprem."
  type        = string

  validation {
    condition     = contains(["aws", "gcp", "onprem"], var.target)
    error_message = "target must be aws, gcp or onprem."
  }
}

variable "namespace" {
  description = "Namespace of workflows, Argo Workflows, the workspace S3 server and the workspace volume."
  type        = string
  default     = "bioinfra"
}

variable "charts" {
  description = "Helm charts to install, by key (argo_workflows, efs_csi, cluster_autoscaler, nvidia_device_plugin, nfs_subdir, nfs_server): repository, chart and pinned version. A key that is absent is not installed."
  type = map(object({
    repository = string
    chart      = string
    version    = string
  }))
}

variable "argo_server" {
  description = "Install the Argo Workflows server (ClusterIP; callers authenticate with their own Kubernetes token)."
  type        = bool
  default     = true
}

variable "argo_install" {
  description = "Install Argo Workflows; false: the cluster's existing Argo runs the Workflows (onprem.argo: existing)."
  type        = bool
  default     = true
}

variable "argo_instance_id" {
  description = "Controller instance ID (workflows.argoproj.io/controller-instanceid) of our Argo installed beside an existing one, which then keeps the CRDs; null: no instance ID, CRDs installed."
  type        = string
  default     = null
}

variable "workflow_service_account" {
  description = "Service account the workflow pods run as."
  type        = string
  default     = "bioinfra-workflow"
}

variable "workflow_service_account_annotations" {
  description = "Annotations of the workflow service account binding it to cloud IAM (eks.amazonaws.com/role-arn, iam.gke.io/gcp-service-account); empty on-prem."
  type        = map(string)
  default     = {}
}

variable "storage_mode" {
  description = "How the workspace volume is made: efs | filestore-pv | filestore-csi | existing-class | nfs-subdir | nfs-server."
  type        = string

  validation {
    condition     = contains(["efs", "filestore-pv", "filestore-csi", "existing-class", "nfs-subdir", "nfs-server"], var.storage_mode)
    error_message = "storage_mode must be efs, filestore-pv, filestore-csi, existing-class, nfs-subdir or nfs-server."
  }
}

variable "storage_class" {
  description = "The ReadWriteMany storage class of the workspace: created here (bioinfra-rwx) unless storage_mode is existing-class, where it names the existing one."
  type        = string
  default     = "bioinfra-rwx"
}

variable "workspace_pvc" {
  description = "Name of the shared ReadWriteMany volume claim (mounted at /workspace in workflow pods)."
  type        = string
  default     = "bioinfra-workspace"
}

variable "workspace_size_gb" {
  description = "Size requested for the workspace volume, GB (EFS and NFS do not enforce it; Filestore rounds up to its minimum)."
  type        = number
  default     = 100
}

variable "efs_id" {
  description = "aws: id of the EFS file system (storage stack output efs_id)."
  type        = string
  default     = ""
}

variable "efs_csi_role_arn" {
  description = "aws: IAM role of the EFS CSI controller (IRSA; storage stack output efs_csi_role_arn)."
  type        = string
  default     = ""
}

variable "autoscaler_role_arn" {
  description = "aws: IAM role of the cluster autoscaler (IRSA; storage stack output autoscaler_role_arn)."
  type        = string
  default     = ""
}

variable "region" {
  description = "aws: region of the cluster (for the cluster autoscaler)."
  type        = string
  default     = ""
}

variable "filestore_ip" {
  description = "gcp, storage_mode filestore-pv: address of the Filestore instance (storage stack output)."
  type        = string
  default     = ""
}

variable "filestore_share" {
  description = "gcp, storage_mode filestore-pv: name of the Filestore share (storage stack output)."
  type        = string
  default     = ""
}

variable "filestore_capacity_gb" {
  description = "gcp, storage_mode filestore-pv: capacity of the Filestore instance, GB (the static volume's size)."
  type        = number
  default     = 1024
}

variable "network_name" {
  description = "gcp, storage_mode filestore-csi: name of the VPC new Filestore instances join (network stack output)."
  type        = string
  default     = ""
}

variable "nfs_server" {
  description = "onprem, storage_mode nfs-subdir: host or IP of the existing NFS server."
  type        = string
  default     = ""
}

variable "nfs_path" {
  description = "onprem, storage_mode nfs-subdir: the exported directory on nfs_server."
  type        = string
  default     = ""
}

variable "gpu_device_plugin" {
  description = "Install the NVIDIA device plugin on the GPU pool (aws, onprem; GKE installs its own)."
  type        = bool
  default     = false
}

variable "gpu_node_selector" {
  description = "Node labels of the GPU pool (where the device plugin runs)."
  type        = map(string)
  default     = { "bioinfra.io/pool" = "gpu" }
}

variable "workspace_s3_name" {
  description = "Name of the workspace S3 server's Deployment, Service, NetworkPolicy and credentials Secret (kept from the MinIO install: users' remotes name the Service)."
  type        = string
  default     = "bioinfra-minio"
}

variable "workspace_s3_image" {
  description = "rclone image that serves the workspace volume as S3 (objects are plain files on the volume)."
  type        = string
}

variable "workspace_s3_args" {
  description = "Arguments of the rclone container (`serve s3 /export --addr :9000 ...`; bioinfra/targets/addons.py: WORKSPACE_S3_ARGS)."
  type        = list(string)
}

variable "workspace_uid" {
  description = "User and group id that owns the workspace files (the tool images run as 1000:1000)."
  type        = number
  default     = 1000
}

variable "system_pool" {
  description = "Where the addons' own pods (Argo, the workspace S3 server, provisioners, autoscaler) run: required node labels (aws, gcp), preferred node labels (onprem, whose nodes may carry none) and the tolerations a spot general pool needs."
  type = object({
    node_selector = map(string)
    preferred     = map(string)
    tolerations   = list(object({ key = string, operator = string }))
  })
  default = { node_selector = {}, preferred = {}, tolerations = [] }
}

variable "chart_placement" {
  description = "Per chart key, a Helm values document placing its pods (nodeSelector/affinity/tolerations at the chart's own keys); given after the release's other values, so it wins."
  type        = any
  default     = {}
}
