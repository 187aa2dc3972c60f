output "vpc_id" {
  description = "ID of the VPC."
  value       = aws_vpc.this.id
}

output "vpc_cidr" {
  description = "IPv4 range of the VPC."
  value       = aws_vpc.this.cidr_block
}

output "private_subnet_ids" {
  description = "Private subnets, one per zone: nodes, EFS mount targets, interface endpoints."
  value       = aws_subnet.private[*].id
}

output "public_subnet_ids" {
  description = "Public subnets, one per zone: internet-facing load balancers and NAT gateways."
  value       = aws_subnet.public[*].id
}

output "availability_zones" {
  description = "Zones the subnets are in."
  value       = local.azs
}
