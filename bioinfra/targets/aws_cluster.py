"""What the aws target answers about the EKS cluster it made, once it is there: its kubeconfig, its
status, the registry login, the S3 inputs a run reads in place, and `bioinfra doctor`'s aws checks.

Mixed into AwsTarget (targets/aws.py, which owns the stacks and their hooks). Core code asks these
through the target interface (targets.Target); it never compares a target's name.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import TYPE_CHECKING, Any, Optional

from bioinfra.errors import InputError
from bioinfra.targets.base import (
    Check,
    CloudCluster,
    ClusterKubeconfig,
    ClusterStatus,
    PoolStatus,
    failed,
    passed,
    split_ref,
    warning,
)

if TYPE_CHECKING:
    from pathlib import Path

    from bioinfra.config import Config
    from bioinfra.engine.inputs import RemoteInput


class AwsCluster(CloudCluster):
    remote_schemes: tuple[str, ...] = ("s3",)
    # Ref https://docs.aws.amazon.com/eks/latest/userguide/associate-service-account-role.html
    sample_config: dict[str, Any] = {"target": "aws", "name": "lint", "region": "eu-west-2"}
    workload_identity_annotation: Optional[str] = "eks.amazonaws.com/role-arn"

    def open_session(self, config: Config) -> Any:
        raise NotImplementedError  # AwsTarget's

    def cluster_kubeconfig(self, config: Config, session: Any, auth: str) -> ClusterKubeconfig:
        """auth "plugin": kubectl runs `aws eks get-token` (AWS_PROFILE = aws.profile when set); "token":
        a token signed here with the session's credentials (EKS accepts it for about 15 minutes)."""
        from bioinfra.adaptors.aws import (
            TOKEN_LIFETIME,
            account_id,
            cluster_info,
            context_name,
            eks_token,
            kubeconfig_entries,
            resolve_auth,
        )

        info = cluster_info(session, config.name, account=account_id(session), node_groups=False)
        mode = resolve_auth(auth)
        token = expires = None
        if mode == "token":
            signed_at = datetime.now(timezone.utc)
            token = eks_token(session, info.name)
            expires = signed_at + TOKEN_LIFETIME
        entries = kubeconfig_entries(info, auth=mode, profile=config.aws.profile, token=token)
        return ClusterKubeconfig(entries, context_name(info), mode, expires, plugin="aws eks get-token",
                                 lifetime="about 15 minutes")

    def location_problems(self, project: Any, region: Any) -> list[str]:
        from bioinfra.config import aws_location_problems

        return aws_location_problems(region)

    def config_problems(self, config: Config) -> list[str]:
        from bioinfra.config import aws_config_problems

        return aws_config_problems(config)

    def bucket_name_problem(self, name: str) -> Optional[str]:
        from bioinfra.config import s3_bucket_problem

        return s3_bucket_problem(name)

    def kubernetes_support(self, config: Config, today: Optional[date] = None) -> Any:
        """The EKS support phase of aws.kubernetes_version (bioinfra/data/eks_versions.yaml)."""
        from bioinfra.targets.eks_versions import support

        return support(config.aws.kubernetes_version, today)

    def kubeconfig_path(self, config: Config, default: Path) -> tuple[Path, Optional[str]]:
        return default, None

    def status(self, config: Config) -> ClusterStatus:
        from bioinfra.adaptors.aws import account_id, cluster_info

        session = self.open_session(config)
        account = account_id(session)
        info = cluster_info(session, config.name, account=account)
        # EKS names no GPU count: the instance type implies it (g5.xlarge 1, g5.12xlarge 4, ...); not guessed here.
        pools = [PoolStatus(g.name, g.status, ",".join(g.instance_types), g.spot, g.min_size, g.max_size,
                            g.desired_size, ["NVIDIA GPU(s)"] if g.gpu else [], list(g.taints))
                 for g in info.node_groups]
        return ClusterStatus("aws", info.name, info.region, account, info.status, info.host, info.version, pools,
                             "; ".join(info.health_issues))

    def registry_login(self, config: Config, names: list[str], *, endpoint_url: Optional[str] = None) -> tuple[str, Any]:
        """The ECR registry of the credentials' account (GetAuthorizationToken); repositories
        `<name>/<image>` created if missing."""
        from bioinfra.adaptors import registries

        ecr = registries.ecr_client(config.region, endpoint_url=endpoint_url)
        login = registries.ecr_login(ecr)
        registries.ensure_ecr_repositories(ecr, [f"{config.name}/{n}" for n in names],
                                           tags={"bioinfra:cluster": config.name})
        return f"{login.registry}/{config.name}", login

    def check_remote(self, config: Config, ref: RemoteInput, flag: str) -> None:
        s3 = self.open_session(config).client("s3")
        try:
            s3.head_object(Bucket=ref.bucket, Key=ref.key)
        except Exception as exc:  # noqa: BLE001 - botocore is imported lazily
            code = getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__)
            raise InputError(f"{flag} {ref.url}: cannot read it ({code})",
                             hint="check the URL; the workflow's role must be allowed to read it too") from None

    def check_credentials(self, d: Any) -> Check:
        from bioinfra.adaptors.aws import account_id

        d.session = self.open_session(d.config)
        d.account = account_id(d.session)
        return passed(f"AWS account {d.account}, region {d.config.region} (STS GetCallerIdentity)")

    def results_location(self, config: Config, run_id: str, *, offline: bool = False) -> tuple[str, str]:
        """The results bucket (its name asks STS for the account id unless buckets.results names it;
        offline, the account this process already knows, else the placeholder account id)."""
        session = None if config.buckets.results or offline else self.open_session(config)
        bucket = self.results_bucket(config, session)  # type: ignore[attr-defined]
        return f":s3,provider=AWS,env_auth=true:{bucket}/runs/{run_id}", f"s3://{bucket}/runs/{run_id}/"

    def doctor_checks(self) -> list[tuple[str, Any, tuple[str, ...]]]:
        return [("credentials", self.check_credentials, ()),
                ("cluster", check_cluster, ("credentials",)),
                ("cluster access", check_access, ("cluster",)),
                ("tool images", check_images, ("credentials",)),
                ("vCPU quotas", check_quotas, ("credentials",))]


# -- `bioinfra doctor` (d: core.doctor.Doctor) ----------------------------------------------------


def check_quotas(d: Any) -> Check:
    """The EC2 vCPU quotas fit every pool at its max, as the preflight reads them (issue #18.9)."""
    from bioinfra.adaptors.aws_quotas import doctor_check

    return doctor_check(d)


def check_cluster(d: Any) -> Check:
    from bioinfra.adaptors.aws import cluster_info
    from bioinfra.targets.eks_versions import ENDED, EXTENDED, support

    info = cluster_info(d.session, d.config.name, account=d.account, node_groups=False)
    if info.status != "ACTIVE":
        return failed(f"cluster {info.name} is {info.status} (not ACTIVE)",
                      f"wait and check `bioinfra status {d.target}`; if it stays so: `bioinfra up {d.target}` "
                      "creates it")
    running = f"cluster {info.name} in region {info.region}: {info.status}, Kubernetes {info.version}"
    version = support(".".join(str(info.version).split(".")[:2]))
    if version.phase in (EXTENDED, ENDED):  # EKS bills 6x, or upgrades it on its own schedule
        return warning(f"{running}; {version.describe()}",
                       f'upgrade it: set aws.kubernetes_version: "{version.recommended}" (one minor at a time '
                       f"from {version.version}), then `bioinfra up aws`")
    return passed(running)


def check_access(d: Any) -> Check:
    """Who may use the EKS cluster: its access entries (issue #18), and whether the caller is one of them."""
    from bioinfra.adaptors.aws import cluster_access

    access = cluster_access(d.session, d.config.name)
    you = access.caller_principal
    add_yourself = (f"ask someone with access to add {you} to aws.admins in bioinfra.yaml and run "
                    "`bioinfra up aws` (a role with a path: give its full ARN, `aws iam get-role --role-name NAME`)")
    if access.mode == "CONFIG_MAP":
        return warning(f"authentication mode CONFIG_MAP: only the identity that created the cluster, and whoever the "
                       f"aws-auth ConfigMap names, may use it (you are {access.caller})",
                       "`bioinfra up aws` switches it to API_AND_CONFIG_MAP with an access entry for whoever runs it "
                       "and each ARN in aws.admins")
    shown = ", ".join(access.principals[:10]) + (f" and {len(access.principals) - 10} more"
                                                  if len(access.principals) > 10 else "")
    detail = f"{access.mode}; access entries: {shown or 'none'}"
    if not access.caller_has_entry():
        extra = " (the aws-auth ConfigMap may still name you)" if access.mode == "API_AND_CONFIG_MAP" else ""
        return failed(f"{detail}; you ({access.caller}) have no access entry{extra}", add_yourself)
    return passed(f"{detail}; you ({access.caller}) are among them")


def check_images(d: Any) -> Check:
    """The images are in the cluster's ECR repositories (describe_images by digest or tag)."""
    ecr = d.session.client("ecr")
    present: list[str] = []
    missing: dict[str, str] = {}
    for name, candidates in d.expected_images().items():
        repository = f"{d.config.name}/{name}"
        found = None
        for ref in candidates:
            _, _, reference = split_ref(ref)
            image_id = {"imageDigest": reference} if reference.startswith("sha256:") else {"imageTag": reference}
            try:
                ecr.describe_images(repositoryName=repository, imageIds=[image_id])
            except ecr.exceptions.RepositoryNotFoundException:
                break
            except ecr.exceptions.ImageNotFoundException:
                continue
            found = f"{repository}@{reference}" if "imageDigest" in image_id else f"{repository}:{reference}"
            break
        if found:
            present.append(found)
        else:
            missing[name] = f"{name} (repository {repository})"
    return d.images_verdict("ECR", present, missing)
