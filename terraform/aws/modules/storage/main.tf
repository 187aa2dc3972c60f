# Where results, shared working data and images live: an S3 bucket for results, EFS for the
# ReadWriteMany volume steps share, ECR for the tool images, and the IAM role (IRSA) that workflow
# pods assume to write results.

module "key" {
  source      = "../kms-key"
  alias       = "${var.name}-storage"
  description = "Encryption of results, shared volume and images of ${var.name}"
}

# --- results bucket -------------------------------------------------------------------------

resource "aws_s3_bucket" "results" {
  #checkov:skip=CKV_AWS_18:access logs need a second bucket per cluster (itself unlogged, SSE-S3 only) for destroy to empty too; object access is audited with account-wide CloudTrail data events
  #checkov:skip=CKV_AWS_144:results are reproducible from inputs and versioned; a replica doubles storage cost and may break data-residency rules for research data
  #checkov:skip=CKV2_AWS_62:nothing consumes bucket events: the workflow engine knows which outputs each step wrote
  bucket = var.bucket
  # Never delete results with the cluster: `bioinfra destroy --force-empty-buckets` empties the
  # bucket explicitly; without it a bucket with data is kept and reported.
  force_destroy = false
}

resource "aws_s3_bucket_ownership_controls" "results" {
  bucket = aws_s3_bucket.results.id
  rule {
    object_ownership = "BucketOwnerEnforced" # no ACLs: access is IAM only
  }
}

resource "aws_s3_bucket_public_access_block" "results" {
  bucket                  = aws_s3_bucket.results.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "results" {
  bucket = aws_s3_bucket.results.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "results" {
  bucket = aws_s3_bucket.results.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = module.key.arn
    }
    bucket_key_enabled = true # one KMS call per object batch instead of per object
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "results" {
  bucket = aws_s3_bucket.results.id

  rule {
    id     = "results-to-glacier"
    status = "Enabled"
    filter {}

    # Glacier Instant Retrieval: old results still read in milliseconds with a plain GET, no restore
    # request and hours of waiting (Flexible Retrieval, "GLACIER", needs both; issue #18). It costs a
    # retrieval fee per GB read and bills at least 90 days and 128 KB per object.
    # Ref https://docs.aws.amazon.com/AmazonS3/latest/userguide/storage-class-intro.html#sc-glacier
    transition {
      days          = var.glacier_after_days
      storage_class = "GLACIER_IR"
    }

    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_expire_days
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }

  depends_on = [aws_s3_bucket_versioning.results]
}

data "aws_iam_policy_document" "results_tls_only" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.results.arn, "${aws_s3_bucket.results.arn}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "results" {
  bucket     = aws_s3_bucket.results.id
  policy     = data.aws_iam_policy_document.results_tls_only.json
  depends_on = [aws_s3_bucket_public_access_block.results]
}

# --- shared volume (ReadWriteMany) ----------------------------------------------------------

resource "aws_efs_file_system" "shared" {
  creation_token   = "${var.name}-shared"
  encrypted        = true
  kms_key_id       = module.key.arn
  performance_mode = "generalPurpose"
  throughput_mode  = "elastic" # bursts with the pipeline, costs nothing when idle

  lifecycle_policy {
    transition_to_ia = "AFTER_30_DAYS"
  }

  tags = { Name = "${var.name}-shared" }
}

resource "aws_security_group" "efs" {
  name        = "${var.name}-efs"
  description = "NFS from the cluster VPC to the shared EFS volume"
  vpc_id      = var.vpc_id
  tags        = { Name = "${var.name}-efs" }
}

resource "aws_vpc_security_group_ingress_rule" "efs_nfs" {
  security_group_id = aws_security_group.efs.id
  description       = "NFS from the VPC"
  cidr_ipv4         = var.vpc_cidr
  ip_protocol       = "tcp"
  from_port         = 2049
  to_port           = 2049
}

resource "aws_efs_mount_target" "shared" {
  count           = length(var.private_subnet_ids)
  file_system_id  = aws_efs_file_system.shared.id
  subnet_id       = var.private_subnet_ids[count.index]
  security_groups = [aws_security_group.efs.id]
}

# --- image repositories ---------------------------------------------------------------------

resource "aws_ecr_repository" "tools" {
  for_each             = toset(var.repositories)
  name                 = each.key
  image_tag_mutability = "IMMUTABLE" # a tag always names the same image (tags carry a content hash)
  # Images are rebuilt from images/ at any time; without this, destroy fails on a non-empty repository.
  force_delete = true

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = module.key.arn
  }
}

# --- IRSA: who may assume which role -------------------------------------------------------------
# One trust policy per role: only the named service account of this cluster's OIDC issuer, only
# for STS (aud). The token's sub is "system:serviceaccount:<namespace>:<name>" (colons).
# Ref https://docs.aws.amazon.com/eks/latest/userguide/associate-service-account-role.html

locals {
  irsa_service_accounts = {
    workflow   = "${var.workflow_namespace}:${var.workflow_service_account}" # workflow pods write results
    efs_csi    = "kube-system:efs-csi-controller-sa"                         # the EFS CSI controller (addons stack)
    autoscaler = "kube-system:cluster-autoscaler"                            # the cluster autoscaler (addons stack)
  }
}

data "aws_iam_policy_document" "irsa_assume" {
  for_each = local.irsa_service_accounts

  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]
    principals {
      type        = "Federated"
      identifiers = [var.oidc_provider_arn]
    }
    condition {
      test     = "StringEquals"
      variable = "${var.oidc_issuer}:sub"
      values   = ["system:serviceaccount:${each.value}"]
    }
    condition {
      test     = "StringEquals"
      variable = "${var.oidc_issuer}:aud"
      values   = ["sts.amazonaws.com"]
    }
  }
}

# --- IRSA: workflow pods write results -----------------------------------------------------

resource "aws_iam_role" "workflow" {
  name               = var.role_names.workflow
  assume_role_policy = data.aws_iam_policy_document.irsa_assume["workflow"].json

  lifecycle {
    ignore_changes = [name] # a role made before names carried the region (issue #18) keeps its name
  }
}

data "aws_iam_policy_document" "workflow_results" {
  statement {
    sid       = "ListResults"
    actions   = ["s3:ListBucket", "s3:GetBucketLocation"]
    resources = [aws_s3_bucket.results.arn]
  }
  statement {
    sid       = "ReadWriteResults"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"]
    resources = ["${aws_s3_bucket.results.arn}/*"]
  }
  statement {
    sid       = "UseStorageKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [module.key.arn]
  }
}

resource "aws_iam_role_policy" "workflow_results" {
  name   = "results-bucket"
  role   = aws_iam_role.workflow.id
  policy = data.aws_iam_policy_document.workflow_results.json
}

# --- IRSA: the EFS CSI controller creates an access point per volume (addons stack) -------------

resource "aws_iam_role" "efs_csi" {
  name               = var.role_names.efs_csi
  assume_role_policy = data.aws_iam_policy_document.irsa_assume["efs_csi"].json

  lifecycle {
    ignore_changes = [name] # a role made before names carried the region (issue #18) keeps its name
  }
}

# AWS's policy for the driver: describe file systems, create/delete access points it tagged itself.
# Ref https://docs.aws.amazon.com/eks/latest/userguide/efs-csi.html
resource "aws_iam_role_policy_attachment" "efs_csi" {
  role       = aws_iam_role.efs_csi.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AmazonEFSCSIDriverPolicy"
}

# --- IRSA: the cluster autoscaler resizes this cluster's node groups (addons stack) -------------

resource "aws_iam_role" "autoscaler" {
  name               = var.role_names.autoscaler
  assume_role_policy = data.aws_iam_policy_document.irsa_assume["autoscaler"].json

  lifecycle {
    ignore_changes = [name] # a role made before names carried the region (issue #18) keeps its name
  }
}

# The autoscaler's recommended policy, with the writes limited to the Auto Scaling groups EKS tags
# as this cluster's (k8s.io/cluster-autoscaler/<name> = owned on every managed node group's group).
# Ref https://github.com/kubernetes/autoscaler/blob/master/cluster-autoscaler/cloudprovider/aws/README.md#iam-policy
data "aws_iam_policy_document" "autoscaler" {
  statement {
    sid       = "ScaleThisClustersGroups"
    actions   = ["autoscaling:SetDesiredCapacity", "autoscaling:TerminateInstanceInAutoScalingGroup"]
    resources = ["*"] # group ARNs are not known here: EKS names the groups; the tag condition scopes it
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/k8s.io/cluster-autoscaler/${var.name}"
      values   = ["owned"]
    }
  }
  statement {
    sid = "DescribeGroupsAndInstanceTypes"
    actions = [
      "autoscaling:DescribeAutoScalingGroups",
      "autoscaling:DescribeAutoScalingInstances",
      "autoscaling:DescribeLaunchConfigurations",
      "autoscaling:DescribeScalingActivities",
      "autoscaling:DescribeTags",
      "ec2:DescribeImages",
      "ec2:DescribeInstanceTypes",
      "ec2:DescribeLaunchTemplateVersions",
      "ec2:GetInstanceTypesFromInstanceRequirements",
    ]
    resources = ["*"] # these actions take no resource ARN
  }
  statement {
    sid       = "DescribeThisClustersNodeGroups"
    actions   = ["eks:DescribeNodegroup"] # labels, taints and GPUs of a group at zero nodes
    resources = ["arn:${data.aws_partition.current.partition}:eks:*:*:nodegroup/${var.name}/*/*"]
  }
}

data "aws_partition" "current" {}

resource "aws_iam_role_policy" "autoscaler" {
  name   = "cluster-autoscaler"
  role   = aws_iam_role.autoscaler.id
  policy = data.aws_iam_policy_document.autoscaler.json
}
