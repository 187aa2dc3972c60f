# The EKS control plane, its IAM roles, the node role the managed node groups share, a
# customer-managed key for Secrets and the control-plane logs, and the OIDC provider for IRSA.
# Node groups are rendered per pool in the stack root (their count, types and taints come from the
# config). Ref https://github.com/terraform-aws-modules/terraform-aws-eks

data "aws_partition" "current" {}

data "aws_caller_identity" "current" {}

# The identity running Terraform, as an IAM role or user ARN: for an assumed role (SSO, CI) STS names
# the session (arn:aws:sts::...:assumed-role/NAME/SESSION); EKS wants the role, path included.
# Ref https://github.com/terraform-aws-modules/terraform-aws-eks/blob/master/main.tf (the same data source)
data "aws_iam_session_context" "current" {
  arn = data.aws_caller_identity.current.arn
}

locals {
  # Every control-plane log type: audits of who ran what are the first thing asked after an incident.
  cluster_log_types = ["api", "audit", "authenticator", "controllerManager", "scheduler"]
  managed_policy    = "arn:${data.aws_partition.current.partition}:iam::aws:policy"
  log_group_name    = "/aws/eks/${var.name}/cluster"

  # Who administers the cluster: whoever runs `up`, plus aws.admins. Keyed by ARN: a second admin
  # running `up` adds their own entry and removes the first one's unless that one is in aws.admins.
  admins = var.access_entries ? toset(concat([data.aws_iam_session_context.current.issuer_arn], var.admin_arns)) : toset([])
}

data "aws_iam_policy_document" "cluster_assume" {
  statement {
    actions = ["sts:AssumeRole", "sts:TagSession"]
    principals {
      type        = "Service"
      identifiers = ["eks.amazonaws.com"]
    }
  }
}

# IAM is global: the names carry the region (var.role_names, bioinfra.targets.aws.iam_role_name), so one
# cluster name in two regions of an account does not collide.
resource "aws_iam_role" "cluster" {
  name               = var.role_names.cluster
  assume_role_policy = data.aws_iam_policy_document.cluster_assume.json

  lifecycle {
    # A role made before names carried the region (issue #18) keeps its name: a new name replaces the
    # role, and a new role_arn replaces the cluster (the same for the node role and the node groups).
    ignore_changes = [name]
  }
}

resource "aws_iam_role_policy_attachment" "cluster" {
  role       = aws_iam_role.cluster.name
  policy_arn = "${local.managed_policy}/AmazonEKSClusterPolicy"
}

data "aws_iam_policy_document" "node_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "node" {
  name               = var.role_names.node
  assume_role_policy = data.aws_iam_policy_document.node_assume.json

  lifecycle {
    ignore_changes = [name] # see aws_iam_role.cluster
  }
}

# What every EKS worker needs: join the cluster, run the VPC CNI, pull from ECR.
# Ref https://docs.aws.amazon.com/eks/latest/userguide/create-node-role.html
resource "aws_iam_role_policy_attachment" "node" {
  for_each   = toset(["AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy", "AmazonEC2ContainerRegistryReadOnly"])
  role       = aws_iam_role.node.name
  policy_arn = "${local.managed_policy}/${each.key}"
}

module "key" {
  source         = "../kms-key"
  alias          = "${var.name}-eks"
  description    = "Envelope encryption of Kubernetes Secrets and control-plane logs in ${var.name}"
  log_group_name = local.log_group_name
}

# Created here rather than by EKS so it has a retention and is destroyed with the cluster
# (EKS would otherwise create it on first log and leave it behind after `destroy`).
resource "aws_cloudwatch_log_group" "cluster" {
  #checkov:skip=CKV_AWS_338:audit logs are large and costly to keep; retention is aws.log_retention_days (default 30), raise it where policy needs a year
  name              = local.log_group_name
  retention_in_days = var.log_retention_days
  kms_key_id        = module.key.arn
}

resource "aws_eks_cluster" "this" {
  #checkov:skip=CKV_AWS_39:bioinfra deploys from the researcher's machine outside the VPC; set aws.private_endpoint when a VPN reaches the VPC
  #checkov:skip=CKV_AWS_38:researchers connect from changing networks; API calls need IAM auth; narrow it with aws.public_access_cidrs
  name                      = var.name
  version                   = var.kubernetes_version
  role_arn                  = aws_iam_role.cluster.arn
  enabled_cluster_log_types = local.cluster_log_types

  # STANDARD (var.upgrade_support_type): when the version leaves standard support, EKS upgrades the
  # control plane instead of moving it into extended support (six times the hourly price, 0.60 instead
  # of 0.10 USD), which is what a cluster with no policy gets (issue #18). The node groups follow the
  # control plane's version (cluster_version output).
  # Ref https://docs.aws.amazon.com/eks/latest/userguide/view-upgrade-policy.html; the same dynamic block
  # as terraform-aws-modules/terraform-aws-eks main.tf (`upgrade_policy`).
  dynamic "upgrade_policy" {
    for_each = var.upgrade_support_type == null ? [] : [var.upgrade_support_type]
    content {
      support_type = upgrade_policy.value
    }
  }

  vpc_config {
    subnet_ids              = var.subnet_ids
    endpoint_private_access = true
    endpoint_public_access  = !var.private_endpoint
    public_access_cidrs     = var.private_endpoint ? null : var.public_access_cidrs
  }

  encryption_config {
    resources = ["secrets"]
    provider {
      key_arn = module.key.arn
    }
  }

  # Access through EKS access entries (the API) besides the aws-auth ConfigMap: the default of
  # terraform-aws-modules/terraform-aws-eks (v21 main.tf, `authentication_mode = "API_AND_CONFIG_MAP"`).
  # In CONFIG_MAP mode only the creator could use the cluster, through an admin binding nobody can
  # see or change (issue #18). The creator gets an explicit entry below instead of EKS's one-time
  # bootstrap grant (false here, as in that module): an entry can be listed, and removed with the rest.
  # Ref https://docs.aws.amazon.com/eks/latest/userguide/grant-k8s-access.html
  dynamic "access_config" {
    for_each = var.access_entries ? [1] : []
    content {
      authentication_mode                         = "API_AND_CONFIG_MAP"
      bootstrap_cluster_creator_admin_permissions = false
    }
  }

  lifecycle {
    # EKS never reports the bootstrap flag and the provider forces a new cluster when it changes: a
    # cluster made before access entries (flag true by default) would otherwise be replaced. The
    # same ignore as terraform-aws-eks's main.tf.
    ignore_changes = [access_config[0].bootstrap_cluster_creator_admin_permissions]
  }

  depends_on = [aws_iam_role_policy_attachment.cluster, aws_cloudwatch_log_group.cluster]
}

# Cluster admin for each principal of local.admins, over the whole cluster.
# Ref https://docs.aws.amazon.com/eks/latest/userguide/access-policy-permissions.html (AmazonEKSClusterAdminPolicy)
resource "aws_eks_access_entry" "admin" {
  for_each = local.admins

  cluster_name  = aws_eks_cluster.this.name
  principal_arn = each.key
  type          = "STANDARD"
}

resource "aws_eks_access_policy_association" "admin" {
  for_each = local.admins

  cluster_name  = aws_eks_cluster.this.name
  principal_arn = aws_eks_access_entry.admin[each.key].principal_arn
  policy_arn    = "arn:${data.aws_partition.current.partition}:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"

  access_scope {
    type = "cluster"
  }
}

# The VPC CNI as a managed add-on with its network-policy agent on: EKS enforces a NetworkPolicy (the
# addons stack's one that admits only workflow pods to the workspace's S3 server) only then; the
# self-managed CNI a new cluster starts with ignores them. OVERWRITE takes over that CNI's settings.
# Ref https://docs.aws.amazon.com/eks/latest/userguide/cni-network-policy-configure.html
# (configuration value "enableNetworkPolicy": "true"); terraform-aws-modules/terraform-aws-eks
# examples set the same on its `vpc-cni` addon.
resource "aws_eks_addon" "vpc_cni" {
  count = var.network_policy_agent ? 1 : 0

  cluster_name                = aws_eks_cluster.this.name
  addon_name                  = "vpc-cni"
  configuration_values        = jsonencode({ enableNetworkPolicy = "true" })
  resolve_conflicts_on_create = "OVERWRITE"
  resolve_conflicts_on_update = "OVERWRITE"
}

# IRSA: pods assume IAM roles through the cluster's OIDC issuer. No thumbprint: IAM trusts the
# EKS issuer's CA itself. Ref https://docs.aws.amazon.com/eks/latest/userguide/enable-iam-roles-for-service-accounts.html
resource "aws_iam_openid_connect_provider" "this" {
  url            = aws_eks_cluster.this.identity[0].oidc[0].issuer
  client_id_list = ["sts.amazonaws.com"]
}
