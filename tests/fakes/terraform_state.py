"""STAND-IN for bioinfra.adaptors.terraform.Terraform in the targets' destroy/up hooks
(AwsTarget/GcpTarget.before_destroy, adopt_kept): a state list and a record of `state rm`. The real
Terraform runs those hooks in tests/integration/test_aws_stacks.py (minutes each); the google provider
cannot be installed here at all."""

from __future__ import annotations


class RecordingTerraform:
    """One stack's state as a list of addresses; `state_rm` forgets them and records what it removed."""

    def __init__(self, state: list[str], workdir) -> None:
        self.state, self.workdir, self.removed = list(state), workdir, []

    def state_list(self) -> list[str]:
        return list(self.state)

    def state_rm(self, addresses: list[str]) -> None:
        self.removed += addresses
        self.state = [a for a in self.state if a not in addresses]
