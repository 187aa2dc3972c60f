variable "alias" {
  description = "Alias of the key, without the alias/ prefix, e.g. \"demo-storage\"."
  type        = string
}

variable "description" {
  description = "What the key encrypts (shown in the KMS console)."
  type        = string
}

variable "log_group_name" {
  description = "A CloudWatch Logs group allowed to encrypt with the key (null: none)."
  type        = string
  default     = null
}
