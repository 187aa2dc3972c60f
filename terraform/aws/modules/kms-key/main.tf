# One customer-managed key with rotation and a 7-day deletion window (the shortest KMS allows, so a
# destroyed cluster's keys go soon). The key policy is AWS's default (the account's IAM policies
# decide who uses the key; S3, EFS, ECR and EKS act for the caller through grants) plus, when
# asked, CloudWatch Logs for one log group.
# Ref https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html
# Ref https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/encrypt-log-data-kms.html

data "aws_partition" "current" {}
data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

locals {
  partition  = data.aws_partition.current.partition
  account_id = data.aws_caller_identity.current.account_id
  region     = data.aws_region.current.name
}

data "aws_iam_policy_document" "key" {
  #checkov:skip=CKV_AWS_109:key policy, not an IAM policy: resource "*" is this key alone and kms:* for the account root is AWS's default
  #checkov:skip=CKV_AWS_111:key policy, not an IAM policy: resource "*" is this key alone and kms:* for the account root is AWS's default
  #checkov:skip=CKV_AWS_356:key policy, not an IAM policy: resource "*" is this key alone (AWS requires "*" in key policies)
  statement {
    sid       = "AccountIAMPolicies"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }

  dynamic "statement" {
    for_each = var.log_group_name == null ? [] : [var.log_group_name]
    content {
      sid       = "CloudWatchLogsGroup"
      actions   = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
      resources = ["*"]
      principals {
        type        = "Service"
        identifiers = ["logs.${local.region}.${data.aws_partition.current.dns_suffix}"]
      }
      condition {
        test     = "ArnEquals"
        variable = "kms:EncryptionContext:aws:logs:arn"
        values   = ["arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:${statement.value}"]
      }
    }
  }
}

resource "aws_kms_key" "this" {
  description             = var.description
  enable_key_rotation     = true
  deletion_window_in_days = 7
  policy                  = data.aws_iam_policy_document.key.json
}

resource "aws_kms_alias" "this" {
  name          = "alias/${var.alias}"
  target_key_id = aws_kms_key.this.key_id
}
