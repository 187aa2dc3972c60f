# The VPC the cluster lives in: one subnet with secondary ranges for pods and services (VPC-native),
# Cloud NAT so private nodes can pull images and reach Google APIs, and the few firewall rules the
# cluster needs beyond those GKE creates itself.
# Ref https://cloud.google.com/kubernetes-engine/docs/how-to/private-clusters

locals {
  node_tag = "${var.name}-node"
}

resource "google_compute_network" "this" {
  name                    = var.name
  description             = "bioinfra cluster ${var.name}"
  auto_create_subnetworks = false
  routing_mode            = "REGIONAL"
}

resource "google_compute_subnetwork" "nodes" {
  name                     = "${var.name}-nodes"
  description              = "bioinfra cluster ${var.name}: nodes; pods and services as secondary ranges"
  region                   = var.region
  network                  = google_compute_network.this.id
  ip_cidr_range            = var.subnet_cidr
  private_ip_google_access = true

  secondary_ip_range {
    range_name    = "pods"
    ip_cidr_range = var.pods_cidr
  }

  secondary_ip_range {
    range_name    = "services"
    ip_cidr_range = var.services_cidr
  }

  # Sampled flow logs: enough to investigate traffic, cheap enough to leave on.
  log_config {
    aggregation_interval = "INTERVAL_10_MIN"
    flow_sampling        = 0.5
    metadata             = "INCLUDE_ALL_METADATA"
  }
}

resource "google_compute_router" "this" {
  name        = "${var.name}-router"
  description = "bioinfra cluster ${var.name}: Cloud NAT"
  region      = var.region
  network     = google_compute_network.this.id
}

# Private nodes have no external IPs: image pulls from outside Google go through NAT.
resource "google_compute_router_nat" "this" {
  name                               = "${var.name}-nat"
  router                             = google_compute_router.this.name
  region                             = var.region
  nat_ip_allocate_option             = "AUTO_ONLY"
  source_subnetwork_ip_ranges_to_nat = "ALL_SUBNETWORKS_ALL_IP_RANGES"

  log_config {
    enable = true
    filter = "ERRORS_ONLY"
  }
}

# Nodes, pods and services talk to each other freely (NetworkPolicy narrows it inside the cluster).
resource "google_compute_firewall" "internal" {
  name        = "${var.name}-allow-internal"
  description = "bioinfra cluster ${var.name}: traffic between nodes, pods and services"
  network     = google_compute_network.this.id
  direction   = "INGRESS"
  priority    = 1000

  source_ranges = [var.subnet_cidr, var.pods_cidr, var.services_cidr]

  allow {
    protocol = "tcp"
  }

  allow {
    protocol = "udp"
  }

  allow {
    protocol = "icmp"
  }

  log_config {
    metadata = "EXCLUDE_ALL_METADATA"
  }
}

# GKE opens 443 and 10250 from the control plane itself; admission webhooks on other ports (Argo,
# cert-manager style controllers) need this rule on private clusters.
resource "google_compute_firewall" "webhooks" {
  name        = "${var.name}-allow-webhooks"
  description = "bioinfra cluster ${var.name}: control plane to admission webhooks on the nodes"
  network     = google_compute_network.this.id
  direction   = "INGRESS"
  priority    = 1000

  source_ranges = [var.master_cidr]
  target_tags   = [local.node_tag]

  allow {
    protocol = "tcp"
    ports    = ["8443", "9443", "15017"]
  }

  log_config {
    metadata = "EXCLUDE_ALL_METADATA"
  }
}
