# Where results, images and shared files live, and who may touch them: the pipelines' Kubernetes
# service account acts as one Google service account (Workload Identity) that can use the results
# bucket and nothing else.

resource "google_storage_bucket" "results" {
  #checkov:skip=CKV_GCP_62:usage logs need a second bucket per cluster that destroy must also empty; object access is recorded by Cloud Audit Logs (Data Access) project-wide
  name     = var.bucket
  location = upper(var.region)

  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  # Never deleted with data inside by Terraform: `bioinfra destroy` keeps it or empties it on request.
  force_destroy = false

  versioning {
    enabled = true
  }

  lifecycle_rule {
    condition {
      age = var.archive_after_days
    }
    action {
      type          = "SetStorageClass"
      storage_class = "ARCHIVE"
    }
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = var.noncurrent_delete_days
      with_state                 = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }
}

resource "google_artifact_registry_repository" "images" {
  #checkov:skip=CKV_GCP_84:a customer-managed key needs a KMS key ring, and key rings can never be deleted, so destroy could not leave the project clean; Google-managed encryption applies
  repository_id = var.repository_id
  location      = var.region
  format        = "DOCKER"
  description   = "bioinfra ${var.name}: tool images (fastqc, bwa-mem2, cellprofiler)"

  # A tag names one image forever: tags are version + content hash, pushed once.
  docker_config {
    immutable_tags = true
  }
}

resource "google_artifact_registry_repository_iam_member" "nodes_pull" {
  repository = google_artifact_registry_repository.images.name
  location   = google_artifact_registry_repository.images.location
  role       = "roles/artifactregistry.reader"
  member     = "serviceAccount:${var.node_service_account}"
}

resource "google_service_account" "workflow" {
  account_id   = var.workflow_account_id
  display_name = "bioinfra ${var.name} pipelines"
  description  = "Pods of bioinfra ${var.name} pipelines (Workload Identity): the results bucket only"
}

resource "google_storage_bucket_iam_member" "workflow" {
  bucket = google_storage_bucket.results.name
  role   = "roles/storage.objectUser"
  member = "serviceAccount:${google_service_account.workflow.email}"
}

# The Kubernetes service account <namespace>/<name> may act as the Google service account.
# Ref https://cloud.google.com/kubernetes-engine/docs/how-to/workload-identity
resource "google_service_account_iam_member" "workload_identity" {
  service_account_id = google_service_account.workflow.name
  role               = "roles/iam.workloadIdentityUser"
  member             = "serviceAccount:${var.workload_pool}[${var.workflow_namespace}/${var.workflow_service_account}]"
}

resource "google_filestore_instance" "workspace" {
  count = var.filestore ? 1 : 0

  name        = "${var.name}-workspace"
  description = "bioinfra ${var.name}: shared workspace (ReadWriteMany)"
  location    = var.filestore_location
  tier        = var.filestore_tier

  file_shares {
    name        = "workspace"
    capacity_gb = var.filestore_capacity_gb
  }

  networks {
    network      = var.network
    modes        = ["MODE_IPV4"]
    connect_mode = "DIRECT_PEERING"
  }
}
