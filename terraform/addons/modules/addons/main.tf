# What bioinfra installs inside a cluster, the same module on aws, gcp and onprem: the namespace of
# the workflows, Argo Workflows, the workflow service account, a ReadWriteMany workspace volume,
# `rclone serve s3` serving that volume as S3, and per target the EFS CSI driver, the cluster
# autoscaler and the NVIDIA device plugin. Objects made here carry `labels`; objects a Helm chart makes carry the
# chart's own (app.kubernetes.io/managed-by = Helm, the release is named bioinfra-*).
#
# Placement (issue #18.8): every Deployment and StatefulSet here runs on the general pool, never on a
# spot or GPU node; every DaemonSet tolerates every taint a pool carries. The workspace S3 server
# reads var.system_pool; each Helm release takes a second values document, var.chart_placement[<chart>], written by
# bioinfra/targets/addons.py (chart_placement) at the keys each chart reads; it comes last, so it wins.

locals {
  labels = {
    "app.kubernetes.io/managed-by" = "bioinfra"
    "bioinfra.io/cluster"          = var.name
  }
  workspace_s3_labels = merge(local.labels, {
    "app.kubernetes.io/name"      = "rclone"
    "app.kubernetes.io/component" = "workspace-s3"
  })
  # The Deployment's selector, the Service's and the NetworkPolicy's: the same map, so the policy always
  # selects the pods the Service sends to. It differs from the MinIO install's (app.kubernetes.io/name =
  # minio): the provider replaces the Deployment for it (spec.selector is ForceNew, destroy before create,
  # so the one name never has two Deployments; Ref https://github.com/hashicorp/terraform-provider-kubernetes/blob/v2.38.0/kubernetes/resource_kubernetes_deployment_v1.go).
  workspace_s3_selector = { "app.kubernetes.io/component" = "workspace-s3", "bioinfra.io/cluster" = var.name }
  # The storage class bioinfra creates itself (efs, filestore-csi) or that a chart creates (nfs-*).
  own_class = contains(["efs", "filestore-csi"], var.storage_mode)
  # The workspace is bound to a static volume on an existing Filestore instance, else provisioned.
  static_volume = var.storage_mode == "filestore-pv"
}

# --- namespace ------------------------------------------------------------------------------------

resource "kubernetes_namespace_v1" "workflows" {
  metadata {
    name   = var.namespace
    labels = local.labels
  }
}

# --- workflow service account: what Argo's executor needs, and the cloud identity ---------------

resource "kubernetes_service_account_v1" "workflow" {
  metadata {
    name        = var.workflow_service_account
    namespace   = kubernetes_namespace_v1.workflows.metadata[0].name
    labels      = local.labels
    annotations = var.workflow_service_account_annotations
  }
  # The executor (emissary) talks to the API with this token: it reports results and outputs.
  automount_service_account_token = true
}

# Ref https://argo-workflows.readthedocs.io/en/latest/workflow-rbac/ (v3.4+: task results, pod patch)
resource "kubernetes_role_v1" "workflow" {
  metadata {
    name      = var.workflow_service_account
    namespace = kubernetes_namespace_v1.workflows.metadata[0].name
    labels    = local.labels
  }

  rule {
    api_groups = ["argoproj.io"]
    resources  = ["workflowtaskresults"]
    verbs      = ["create", "patch"]
  }

  rule {
    api_groups = [""]
    resources  = ["pods"]
    verbs      = ["get", "watch", "patch"]
  }
}

resource "kubernetes_role_binding_v1" "workflow" {
  metadata {
    name      = var.workflow_service_account
    namespace = kubernetes_namespace_v1.workflows.metadata[0].name
    labels    = local.labels
  }

  role_ref {
    api_group = "rbac.authorization.k8s.io"
    kind      = "Role"
    name      = kubernetes_role_v1.workflow.metadata[0].name
  }

  subject {
    kind      = "ServiceAccount"
    name      = kubernetes_service_account_v1.workflow.metadata[0].name
    namespace = kubernetes_namespace_v1.workflows.metadata[0].name
  }
}

# --- Argo Workflows -------------------------------------------------------------------------------

# Not with onprem.argo: existing (the cluster's own Argo runs the Workflows). Beside another Argo
# (var.argo_instance_id): no CRDs, since Helm will not take over the ones another release owns, and an
# instance ID, so that each controller runs only its own Workflows (bioinfra/targets/onprem_argo.py).
# Ref https://github.com/argoproj/argo-helm/blob/argo-workflows-0.45.27/charts/argo-workflows/values.yaml
# (crds.install, controller.instanceID.enabled / explicitID)
resource "helm_release" "argo_workflows" {
  count      = var.argo_install ? 1 : 0
  name       = "bioinfra-argo"
  namespace  = kubernetes_namespace_v1.workflows.metadata[0].name
  repository = var.charts["argo_workflows"].repository
  chart      = var.charts["argo_workflows"].chart
  version    = var.charts["argo_workflows"].version
  wait       = true
  timeout    = 600

  values = [yamlencode({
    # The controller runs in the workflows' namespace and watches only it (--namespaced, Roles
    # instead of ClusterRoles): it can touch nothing else in the cluster.
    singleNamespace = true
    crds            = { install = var.argo_instance_id == null, keep = true }
    # The workflow service account and its Role are made above (with the cloud IAM annotation).
    workflow = { serviceAccount = { create = false }, rbac = { create = false } }
    controller = {
      instanceID = {
        enabled    = var.argo_instance_id != null
        explicitID = var.argo_instance_id == null ? "" : var.argo_instance_id
      }
      # No executor setting: emissary is the only executor since v3.4, and works on containerd.
      # Ref https://argo-workflows.readthedocs.io/en/latest/workflow-executors/
      resources = {
        requests = { cpu = "100m", memory = "256Mi" }
        limits   = { memory = "1Gi" }
      }
    }
    server = {
      enabled     = var.argo_server
      serviceType = "ClusterIP"
      # client: the server acts with the caller's own Kubernetes token, so a user can do exactly what
      # their RBAC allows. "server" would let anyone who reaches the Service act as the server's
      # service account. Reach it with `kubectl port-forward`. Ref https://argo-workflows.readthedocs.io/en/latest/argo-server-auth-mode/
      extraArgs = ["--auth-mode=client"]
      resources = {
        requests = { cpu = "50m", memory = "128Mi" }
        limits   = { memory = "512Mi" }
      }
    }
  }), yamlencode(try(var.chart_placement["argo_workflows"], {}))]

  depends_on = [kubernetes_role_binding_v1.workflow]
}

# --- shared workspace volume (ReadWriteMany) ----------------------------------------------------

# aws: EFS CSI driver; its controller creates an access point per volume on the storage stack's EFS.
resource "helm_release" "efs_csi" {
  count      = var.storage_mode == "efs" ? 1 : 0
  name       = "aws-efs-csi-driver"
  namespace  = "kube-system"
  repository = var.charts["efs_csi"].repository
  chart      = var.charts["efs_csi"].chart
  version    = var.charts["efs_csi"].version
  wait       = true

  values = [yamlencode({
    controller = {
      # The name the IRSA role trusts (storage stack: system:serviceaccount:kube-system:efs-csi-controller-sa).
      serviceAccount = {
        create      = true
        name        = "efs-csi-controller-sa"
        annotations = { "eks.amazonaws.com/role-arn" = var.efs_csi_role_arn }
      }
    }
  }), yamlencode(try(var.chart_placement["efs_csi"], {}))]
}

# Ref https://github.com/kubernetes-sigs/aws-efs-csi-driver/blob/master/docs/README.md#storage-class-parameters-for-dynamic-provisioning
resource "kubernetes_storage_class_v1" "efs" {
  count = var.storage_mode == "efs" ? 1 : 0
  metadata {
    name   = var.storage_class
    labels = local.labels
  }
  storage_provisioner = "efs.csi.aws.com"
  reclaim_policy      = "Retain" # shared data outlives the claim; `bioinfra destroy` deletes the file system
  volume_binding_mode = "Immediate"
  parameters = {
    provisioningMode = "efs-ap"
    fileSystemId     = var.efs_id
    directoryPerms   = "700"
    basePath         = "/bioinfra"
    # The access point makes every client this user, the one the tool images run as.
    uid = tostring(var.workspace_uid)
    gid = tostring(var.workspace_uid)
  }
  depends_on = [helm_release.efs_csi]
}

# gcp without a Filestore instance: the GKE Filestore CSI driver (enabled by the cluster stack)
# creates one per volume (standard = BASIC_HDD, at least 1 TiB whatever the claim asks).
# Ref https://cloud.google.com/kubernetes-engine/docs/how-to/persistent-volumes/filestore-csi-driver
#
# Retain, not Delete: the workspace holds every run's staged inputs, built indexes and
# intermediates, and the outputs of any run whose stage-out to the results bucket has not happened
# (a running or failed run). With Delete, any deletion of the claim (`kubectl delete pvc`, a change
# that makes Terraform replace it) would delete the instance and all of that at once. With Retain it
# is kept, and billed, until `bioinfra destroy`, which (bioinfra/core/teardown.py) switches the
# volume to Delete before the addons stack deletes the claim and waits for the driver to delete the
# instance; that is when the workspace is lost, and `destroy` says so. An instance left anyway (an
# interrupted destroy) is found by the sweep (bioinfra/adaptors/gcp_sweep.py) by the labels below or
# by the driver's own (storage_gke_io_created-by, kubernetes_io_created-for_*), and deleted before the
# VPC its peering would block.
#
# `labels`: "key1=value1,key2=value2", stamped on the instance (the driver's README, "Labels", and
# examples/kubernetes/sc-labels.yaml; parsed by ConvertLabelsStringToMap in pkg/util/util.go: lowercase
# letters, digits, _ and -). The cluster's label is the one every other resource carries.
# Ref https://github.com/kubernetes-sigs/gcp-filestore-csi-driver#plugin-features
resource "kubernetes_storage_class_v1" "filestore" {
  count = var.storage_mode == "filestore-csi" ? 1 : 0
  metadata {
    name   = var.storage_class
    labels = local.labels
  }
  storage_provisioner    = "filestore.csi.storage.gke.io"
  reclaim_policy         = "Retain"
  volume_binding_mode    = "WaitForFirstConsumer"
  allow_volume_expansion = true
  parameters = {
    tier    = "standard"
    network = var.network_name
    labels  = "bioinfra-cluster=${var.name},managed-by=bioinfra"
  }
}

# gcp with the storage stack's Filestore instance: a class with no provisioner, through which the
# static volume below and the workspace claim meet by name. Not the class-less ("") pairing: the
# kubernetes provider sends an empty storage_class_name as absent, so GKE's DefaultStorageClass admission
# would give the claim standard-rwo and it would never bind to a class-less volume
# (hashicorp/terraform-provider-kubernetes#1379). Ref
# https://kubernetes.io/docs/concepts/storage/persistent-volumes/#class-1
resource "kubernetes_storage_class_v1" "static" {
  count = local.static_volume ? 1 : 0
  metadata {
    name   = var.storage_class
    labels = local.labels
  }
  storage_provisioner = "kubernetes.io/no-provisioner"
  reclaim_policy      = "Retain"
  volume_binding_mode = "Immediate"
}

# ... and the static NFS volume on the instance's share, bound to the workspace claim only
# (claim_ref), so nothing else can take it.
resource "kubernetes_persistent_volume_v1" "filestore" {
  count = local.static_volume ? 1 : 0
  metadata {
    name   = "${var.name}-workspace"
    labels = local.labels
  }
  spec {
    capacity                         = { storage = "${var.filestore_capacity_gb}Gi" }
    access_modes                     = ["ReadWriteMany"]
    persistent_volume_reclaim_policy = "Retain"
    storage_class_name               = kubernetes_storage_class_v1.static[0].metadata[0].name
    mount_options                    = ["nfsvers=3", "hard"] # Filestore serves NFSv3
    claim_ref {
      name      = var.workspace_pvc
      namespace = kubernetes_namespace_v1.workflows.metadata[0].name
    }
    persistent_volume_source {
      nfs {
        server = var.filestore_ip
        path   = "/${var.filestore_share}"
      }
    }
  }
}

# onprem with onprem.nfs_server/nfs_path: a class that makes a directory per volume on that export.
resource "helm_release" "nfs_subdir" {
  count      = var.storage_mode == "nfs-subdir" ? 1 : 0
  name       = "bioinfra-nfs-subdir"
  namespace  = "kube-system"
  repository = var.charts["nfs_subdir"].repository
  chart      = var.charts["nfs_subdir"].chart
  version    = var.charts["nfs_subdir"].version
  wait       = true

  values = [yamlencode({
    nfs = { server = var.nfs_server, path = var.nfs_path }
    storageClass = {
      name            = var.storage_class
      defaultClass    = false
      reclaimPolicy   = "Retain"
      archiveOnDelete = true # a deleted claim's directory is renamed archived-*, not deleted
      accessModes     = "ReadWriteMany"
    }
  }), yamlencode(try(var.chart_placement["nfs_subdir"], {}))]
}

# onprem with neither: an NFS server in the cluster (nfs-ganesha) whose own data lives on a volume of
# the cluster's default storage class (minikube, k3s, kind: hostpath / local-path).
resource "helm_release" "nfs_server" {
  count      = var.storage_mode == "nfs-server" ? 1 : 0
  name       = "bioinfra-nfs-server"
  namespace  = "kube-system"
  repository = var.charts["nfs_server"].repository
  chart      = var.charts["nfs_server"].chart
  version    = var.charts["nfs_server"].version
  wait       = true

  values = [yamlencode({
    persistence = {
      enabled    = true
      accessMode = "ReadWriteOnce"
      size       = "${var.workspace_size_gb + 10}Gi" # the workspace plus room for the server's state
    }
    storageClass = {
      create               = true
      name                 = var.storage_class
      defaultClass         = false
      reclaimPolicy        = "Retain"
      allowVolumeExpansion = true
    }
  }), yamlencode(try(var.chart_placement["nfs_server"], {}))]
}

resource "kubernetes_persistent_volume_claim_v1" "workspace" {
  metadata {
    name      = var.workspace_pvc
    namespace = kubernetes_namespace_v1.workflows.metadata[0].name
    labels    = local.labels
  }
  spec {
    access_modes       = ["ReadWriteMany"]
    storage_class_name = var.storage_class # in every mode: see kubernetes_storage_class_v1.static
    volume_name        = local.static_volume ? kubernetes_persistent_volume_v1.filestore[0].metadata[0].name : null
    resources {
      requests = { storage = local.static_volume ? "${var.filestore_capacity_gb}Gi" : "${var.workspace_size_gb}Gi" }
    }
  }
  # WaitForFirstConsumer classes bind when the workspace S3 server starts, after this resource is created.
  wait_until_bound = false

  depends_on = [
    kubernetes_storage_class_v1.efs,
    kubernetes_storage_class_v1.filestore,
    kubernetes_storage_class_v1.static,
    helm_release.nfs_subdir,
    helm_release.nfs_server,
  ]
}

# --- the workspace as S3: `rclone serve s3` over the workspace volume ------------------------------

# Why rclone and not MinIO (issue #18.11): bioinfra's contract is that an object key IS a file path on the
# volume the steps mount. MinIO kept objects as plain files only in its "FS mode", which every release
# after RELEASE.2022-10-24T18-35-07Z dropped (later releases refuse an FS-mode volume: "found backend type
# fs"), and github.com/minio/minio is no longer maintained (2026-02). rclone (maintained; the stage-in/out
# steps already run it) serves any directory as S3 with objects stored as files.
# Ref https://rclone.org/commands/rclone_serve_s3/ ("serve s3 will treat all directories in the root as
# buckets"; "Metadata will only be saved in memory other than the rclone mtime metadata").
#
# The Kubernetes names stay `bioinfra-minio` (var.workspace_s3_name): users' stage-in remotes name the
# Service's DNS name (http://bioinfra-minio.bioinfra.svc:9000), every rendered Workflow names the Secret,
# and so do the doctor's checks and the teardown; the objects were replaced in place, the contract kept.
# The Terraform addresses say what they are; `moved` keeps the generated credentials and the Service.

moved {
  from = random_password.minio_user
  to   = random_password.workspace_s3_access_key
}

moved {
  from = random_password.minio_password
  to   = random_password.workspace_s3_secret_key
}

moved {
  from = kubernetes_secret_v1.minio
  to   = kubernetes_secret_v1.workspace_s3
}

moved {
  from = kubernetes_deployment_v1.minio
  to   = kubernetes_deployment_v1.workspace_s3
}

moved {
  from = kubernetes_service_v1.minio
  to   = kubernetes_service_v1.workspace_s3
}

moved {
  from = kubernetes_network_policy_v1.minio
  to   = kubernetes_network_policy_v1.workspace_s3
}

resource "random_password" "workspace_s3_access_key" {
  length  = 20
  special = false # letters and digits only: RCLONE_AUTH_KEY is a quoted CSV pair (below)
}

resource "random_password" "workspace_s3_secret_key" {
  length  = 40
  special = false
}

# Keys root-user / root-password as before: the Workflows' stage steps and bioinfra read them by name
# (templates/workflows/_steps.j2, bioinfra/core/cluster_run.py).
resource "kubernetes_secret_v1" "workspace_s3" {
  metadata {
    name      = var.workspace_s3_name
    namespace = kubernetes_namespace_v1.workflows.metadata[0].name
    labels    = local.workspace_s3_labels
  }
  type = "Opaque"
  data = {
    "root-user"     = random_password.workspace_s3_access_key.result
    "root-password" = random_password.workspace_s3_secret_key.result
  }
}

# The claim is mounted at /export and served whole: the bucket `workspace` is the directory workspace/
# on it and an object key is a file path below it. Workflow pods mount the same claim with subPath
# `workspace` at /workspace: object workspace/inputs/x/a.fq.gz is /workspace/inputs/x/a.fq.gz in a step.
# The arguments are var.workspace_s3_args (bioinfra/targets/addons.py: WORKSPACE_S3_ARGS), the same list
# tests/integration/test_workspace_s3.py runs the real rclone with.
resource "kubernetes_deployment_v1" "workspace_s3" {
  #checkov:skip=CKV_K8S_43:a release tag of rclone/rclone, never re-pushed; its digest could not be read from here (no registry access), see docs/notes/checkov.md
  #checkov:skip=CKV_K8S_15:the tag is an immutable release, so IfNotPresent pulls the same image and keeps preloaded (air-gapped, minikube) images usable
  #checkov:skip=CKV_K8S_35:rclone reads --auth-key only from its flag or RCLONE_AUTH_KEY (no file option); a secretKeyRef keeps it out of args and the pod spec, see docs/notes/checkov.md
  metadata {
    name      = var.workspace_s3_name
    namespace = kubernetes_namespace_v1.workflows.metadata[0].name
    labels    = local.workspace_s3_labels
  }

  spec {
    replicas = 1 # uploads in progress and metadata are the process's own (in memory)
    strategy {
      type = "Recreate" # never two servers on one directory tree
    }
    selector {
      match_labels = local.workspace_s3_selector
    }

    template {
      metadata {
        labels = local.workspace_s3_labels
      }

      spec {
        automount_service_account_token = false # rclone never calls the Kubernetes API

        # On the general pool, never a spot or GPU node (var.system_pool; issue #18.8): required on aws
        # and gcp, preferred on onprem, whose nodes may carry no pool label.
        node_selector = var.system_pool.node_selector
        dynamic "affinity" {
          for_each = length(var.system_pool.preferred) > 0 ? [var.system_pool.preferred] : []
          content {
            node_affinity {
              preferred_during_scheduling_ignored_during_execution {
                weight = 100
                preference {
                  dynamic "match_expressions" {
                    for_each = affinity.value
                    content {
                      key      = match_expressions.key
                      operator = "In"
                      values   = [match_expressions.value]
                    }
                  }
                }
              }
            }
          }
        }
        dynamic "toleration" {
          for_each = var.system_pool.tolerations
          content {
            key      = toleration.value.key
            operator = toleration.value.operator
          }
        }

        # The user the tool images run as: files uploaded here belong to the steps' user, and files
        # the steps write are readable here.
        security_context {
          run_as_user     = var.workspace_uid
          run_as_group    = var.workspace_uid
          run_as_non_root = true
          fs_group        = var.workspace_uid
          seccomp_profile {
            type = "RuntimeDefault"
          }
        }

        # NFS-backed volumes (Filestore, some NFS exports) start owned by root with mode 755: give the
        # volume root and the bucket directory to the user rclone and the tool images run as. Only
        # CAP_CHOWN, and only when the owner is wrong (EFS access points already enforce that user).
        # The rclone image is Alpine: /bin/sh and busybox stat/chown.
        init_container {
          name              = "workspace-owner"
          image             = var.workspace_s3_image
          image_pull_policy = "IfNotPresent"
          command = ["/bin/sh", "-c", join(" ", [
            "set -e; mkdir -p /export/workspace;",
            "for d in /export /export/workspace; do",
            "[ \"$(stat -c %u:%g \"$d\")\" = \"${var.workspace_uid}:${var.workspace_uid}\" ] || chown ${var.workspace_uid}:${var.workspace_uid} \"$d\";",
            "done",
          ])]
          security_context {
            run_as_user                = 0
            run_as_non_root            = false
            allow_privilege_escalation = false
            read_only_root_filesystem  = true
            capabilities {
              drop = ["ALL"]
              add  = ["CHOWN"]
            }
          }
          resources {
            requests = { cpu = "10m", memory = "16Mi" }
            limits   = { cpu = "100m", memory = "64Mi" }
          }
          volume_mount {
            name       = "workspace"
            mount_path = "/export"
          }
        }

        container {
          name              = "rclone"
          image             = var.workspace_s3_image
          image_pull_policy = "IfNotPresent"
          args              = var.workspace_s3_args # the image's entrypoint is rclone

          # Credentials only from the Secret, never in args or this file: rclone reads every flag from
          # RCLONE_<FLAG> (Ref https://rclone.org/docs/#environment-variables), --auth-key from
          # RCLONE_AUTH_KEY as a CSV list, one quoted "access,secret" pair (Ref
          # https://rclone.org/commands/rclone_serve_s3/). The pair is built by Kubernetes from the two
          # keys ($(VAR) refers to an earlier variable; Ref
          # https://kubernetes.io/docs/tasks/inject-data-application/define-interdependent-environment-variables/).
          env {
            name = "WORKSPACE_S3_ACCESS_KEY"
            value_from {
              secret_key_ref {
                name = kubernetes_secret_v1.workspace_s3.metadata[0].name
                key  = "root-user"
              }
            }
          }
          env {
            name = "WORKSPACE_S3_SECRET_KEY"
            value_from {
              secret_key_ref {
                name = kubernetes_secret_v1.workspace_s3.metadata[0].name
                key  = "root-password"
              }
            }
          }
          env {
            name  = "RCLONE_AUTH_KEY"
            value = "\"$(WORKSPACE_S3_ACCESS_KEY),$(WORKSPACE_S3_SECRET_KEY)\""
          }
          # No config file is needed (the served path is a local directory); HOME and the cache on the
          # writable emptyDir, the root filesystem stays read-only.
          env {
            name  = "HOME"
            value = "/tmp"
          }
          env {
            name  = "XDG_CACHE_HOME"
            value = "/tmp/cache"
          }

          port {
            name           = "s3"
            container_port = 9000
          }

          # rclone serve s3 has no health endpoint and answers an unsigned request 403: probe the port.
          liveness_probe {
            tcp_socket {
              port = "s3"
            }
            initial_delay_seconds = 5
            period_seconds        = 20
            failure_threshold     = 3
          }
          readiness_probe {
            tcp_socket {
              port = "s3"
            }
            period_seconds    = 5
            failure_threshold = 3
          }

          # Multipart uploads stream to the file; parts that arrive out of order are buffered up to
          # --multipart-streaming-buffer-limit (256M) per upload (rclone serve s3 docs, "Multipart uploads").
          resources {
            requests = { cpu = "250m", memory = "256Mi" }
            limits   = { cpu = "2", memory = "2Gi" }
          }

          security_context {
            allow_privilege_escalation = false
            read_only_root_filesystem  = true
            run_as_non_root            = true
            capabilities {
              drop = ["ALL"]
            }
          }

          volume_mount {
            name       = "workspace"
            mount_path = "/export"
          }
          volume_mount {
            name       = "tmp"
            mount_path = "/tmp"
          }
        }

        volume {
          name = "workspace"
          persistent_volume_claim {
            claim_name = kubernetes_persistent_volume_claim_v1.workspace.metadata[0].name
          }
        }
        volume {
          name = "tmp"
          empty_dir {
            size_limit = "64Mi"
          }
        }
      }
    }
  }
}

resource "kubernetes_service_v1" "workspace_s3" {
  metadata {
    name      = var.workspace_s3_name
    namespace = kubernetes_namespace_v1.workflows.metadata[0].name
    labels    = local.workspace_s3_labels
  }
  spec {
    type     = "ClusterIP" # inside the cluster only; `kubectl port-forward` from outside
    selector = local.workspace_s3_selector
    port {
      name        = "s3"
      port        = 9000
      target_port = "s3"
    }
  }
}

# Only workflow pods reach the workspace S3 (issue #18.11): rclone in the stage-in/stage-out steps, for
# remotes with provider=Minio (templates/workflows/_steps.j2). Every pod of a Workflow carries the label
# workflows.argoproj.io/workflow (its Workflow's name; Argo v3.7.18 selects them by it,
# test/e2e/functional_test.go; Ref https://github.com/argoproj/argo-workflows/blob/v3.7.18/workflow/common/common.go
# LabelKeyWorkflow), and runs in this namespace (a pod_selector without namespace_selector: this one).
# Argo's controller and server do not use it: no artifact repository is configured (bioinfra/pipelines.py,
# POD_GC_DELETE_DELAY). bioinfra itself uploads and downloads through `kubectl port-forward`
# (bioinfra/adaptors/workspace_store.py), which the kubelet connects inside the pod's own network
# namespace: no pod-to-pod traffic, so no policy applies to it; the kubelet's probes come from the node,
# which NetworkPolicy always allows. Ref https://kubernetes.io/docs/concepts/services-networking/network-policies/
# ("What you can't do with network policies"). A user who exposes the Service ($BIOINFRA_MINIO_URL, e.g.
# an ingress) adds a policy admitting that ingress controller (docs/targets/onprem.md). Enforced only
# where the CNI implements NetworkPolicy (GKE Dataplane V2, the VPC CNI's network policy agent on EKS,
# Calico, Cilium); elsewhere it is accepted and has no effect.
resource "kubernetes_network_policy_v1" "workspace_s3" {
  metadata {
    name      = var.workspace_s3_name
    namespace = kubernetes_namespace_v1.workflows.metadata[0].name
    labels    = local.workspace_s3_labels
  }

  spec {
    pod_selector {
      match_labels = local.workspace_s3_selector
    }
    policy_types = ["Ingress"] # egress is not restricted: the server opens no connection

    ingress {
      from {
        pod_selector {
          match_expressions {
            key      = "workflows.argoproj.io/workflow"
            operator = "Exists"
          }
        }
      }
      ports {
        port     = "9000"
        protocol = "TCP"
      }
    }
  }
}

# --- aws: cluster autoscaler (managed node groups scale from and to zero) ------------------------

resource "helm_release" "cluster_autoscaler" {
  count      = var.target == "aws" ? 1 : 0
  name       = "cluster-autoscaler"
  namespace  = "kube-system"
  repository = var.charts["cluster_autoscaler"].repository
  chart      = var.charts["cluster_autoscaler"].chart
  version    = var.charts["cluster_autoscaler"].version
  wait       = true

  # Ref https://github.com/kubernetes/autoscaler/blob/master/cluster-autoscaler/cloudprovider/aws/README.md
  values = [yamlencode({
    cloudProvider = "aws"
    awsRegion     = var.region
    autoDiscovery = { clusterName = var.name }
    rbac = {
      # The name the IRSA role trusts (system:serviceaccount:kube-system:cluster-autoscaler).
      serviceAccount = {
        create      = true
        name        = "cluster-autoscaler"
        annotations = { "eks.amazonaws.com/role-arn" = var.autoscaler_role_arn }
      }
    }
    extraArgs = {
      "balance-similar-node-groups"   = true
      "skip-nodes-with-local-storage" = false # workflow pods' emptyDirs must not pin nodes forever
      "expander"                      = "least-waste"
    }
    resources = {
      requests = { cpu = "100m", memory = "300Mi" }
      limits   = { memory = "600Mi" }
    }
  }), yamlencode(try(var.chart_placement["cluster_autoscaler"], {}))]
}

# --- NVIDIA device plugin (aws, onprem; GKE installs its own with the driver) ---------------------

resource "helm_release" "nvidia_device_plugin" {
  count      = var.gpu_device_plugin ? 1 : 0
  name       = "nvidia-device-plugin"
  namespace  = "kube-system"
  repository = var.charts["nvidia_device_plugin"].repository
  chart      = var.charts["nvidia_device_plugin"].chart
  version    = var.charts["nvidia_device_plugin"].version
  wait       = false # the GPU pool may be at zero nodes: a DaemonSet with no pods is ready

  values = [yamlencode({
    # Only on the GPU pool, by our label: the chart's default affinity wants node-feature-discovery
    # labels that nothing here sets.
    nodeSelector = var.gpu_node_selector
    affinity     = null # null removes the chart's default (an empty map would be merged into it)
  }), yamlencode(try(var.chart_placement["nvidia_device_plugin"], {}))]
}
