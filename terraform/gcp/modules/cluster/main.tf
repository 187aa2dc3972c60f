# GKE Standard, regional, private nodes, Workload Identity, Shielded Nodes, Dataplane V2 (which
# enforces NetworkPolicy). Node pools are created by the stack root, one per configured pool, so
# the default pool is removed right after creation.
# Ref https://cloud.google.com/kubernetes-engine/docs/how-to/hardening-your-cluster

# Nodes run as their own service account with only what nodes need (logs, metrics, pulling images
# is granted per repository by the storage stack), never as the Compute Engine default account.
# Ref https://cloud.google.com/kubernetes-engine/docs/how-to/service-accounts#default-gke-service-agent
resource "google_service_account" "nodes" {
  account_id   = var.node_service_account_id
  display_name = "bioinfra ${var.name} GKE nodes"
  description  = "Nodes of bioinfra cluster ${var.name}: logging, monitoring; image pulls granted per repository"
}

resource "google_project_iam_member" "nodes" {
  project = var.project
  role    = "roles/container.defaultNodeServiceAccount"
  member  = "serviceAccount:${google_service_account.nodes.email}"
}

resource "google_container_cluster" "this" {
  #checkov:skip=CKV_GCP_12:Dataplane V2 (ADVANCED_DATAPATH) enforces NetworkPolicy itself; the network_policy block turns on Calico, which GKE rejects beside it
  #checkov:skip=CKV_GCP_66:the project's default Binary Authorization policy admits every image, so enforcing it adds an API to enable without a control; images are pinned by digest instead
  #checkov:skip=CKV_GCP_65:Google Groups for RBAC needs a Google Workspace domain with a gke-security-groups group, which research projects often lack; IAM roles grant access instead
  name           = var.name
  description    = "bioinfra cluster ${var.name}"
  location       = var.region
  node_locations = length(var.zones) > 0 ? var.zones : null

  network         = var.network
  subnetwork      = var.subnetwork
  networking_mode = "VPC_NATIVE"

  # Dataplane V2 (eBPF) enforces NetworkPolicy without the Calico add-on.
  datapath_provider = "ADVANCED_DATAPATH"

  deletion_protection = var.deletion_protection

  # The provider's default_labels (bioinfra-cluster, ...) are merged into these.
  resource_labels = {
    "bioinfra-component" = "cluster"
  }

  # Pools are separate resources (the stack root): the default pool only exists because the API
  # requires one at creation.
  remove_default_node_pool = true
  initial_node_count       = 1

  release_channel {
    channel = var.release_channel
  }

  ip_allocation_policy {
    cluster_secondary_range_name  = var.pods_range_name
    services_secondary_range_name = var.services_range_name
  }

  private_cluster_config {
    enable_private_nodes    = true
    enable_private_endpoint = var.private_endpoint
    master_ipv4_cidr_block  = var.master_cidr

    master_global_access_config {
      enabled = true
    }
  }

  master_authorized_networks_config {
    dynamic "cidr_blocks" {
      for_each = var.master_authorized_networks
      content {
        cidr_block   = cidr_blocks.value
        display_name = "bioinfra ${cidr_blocks.key}"
      }
    }
  }

  master_auth {
    client_certificate_config {
      issue_client_certificate = false
    }
  }

  workload_identity_config {
    workload_pool = "${var.project}.svc.id.goog"
  }

  enable_shielded_nodes       = true
  enable_intranode_visibility = true
  enable_legacy_abac          = false

  # Scale down sooner and pack pods tighter: the bill stops when the work stops.
  cluster_autoscaling {
    autoscaling_profile = "OPTIMIZE_UTILIZATION"
  }

  addons_config {
    http_load_balancing {
      disabled = false
    }
    gce_persistent_disk_csi_driver_config {
      enabled = true
    }
    gcp_filestore_csi_driver_config {
      enabled = var.filestore_csi
    }
  }

  logging_config {
    enable_components = ["SYSTEM_COMPONENTS", "WORKLOADS"]
  }

  monitoring_config {
    enable_components = ["SYSTEM_COMPONENTS"]
  }

  maintenance_policy {
    daily_maintenance_window {
      start_time = "03:00"
    }
  }

  # The short-lived default pool: same hardening as the real pools, for the minutes it exists.
  node_config {
    service_account = google_service_account.nodes.email
    oauth_scopes    = ["https://www.googleapis.com/auth/cloud-platform"]

    shielded_instance_config {
      enable_secure_boot          = true
      enable_integrity_monitoring = true
    }

    workload_metadata_config {
      mode = "GKE_METADATA"
    }
  }

  lifecycle {
    # The default pool's settings no longer exist once it is removed.
    ignore_changes = [node_config, initial_node_count]
  }

  depends_on = [google_project_iam_member.nodes]
}
