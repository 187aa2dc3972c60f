from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Optional

import typer


def _target_name(target: str) -> str:
    from bioinfra.targets import get_target

    return get_target(target).name


def _is_local(target: str) -> bool:
    from bioinfra.targets import get_target

    return get_target(target).runs_locally


def _pool_preferred(target: str) -> bool:
    """Whether the target's Workflows only prefer a node pool (onprem: the nodes may carry no pool
    label, so `up` offers to label them)."""
    from bioinfra.targets import get_target

    return get_target(target).pool_preferred


def _ttl_recorder(ctx: typer.Context, target: str, ttl: str):
    """Check --ttl now (before anything is planned) and return what records it once `up` is done.
    The clock starts when `up` starts: the cluster bills from its first resource."""
    from bioinfra.core import ttl as ttl_mod

    off = ttl.strip().lower() in ttl_mod.OFF
    if not off:
        ttl_mod.parse_duration(ttl)
    started = ttl_mod.now_utc()

    def record() -> None:
        from bioinfra.config import load_config
        from bioinfra.core.provision import environment_root

        config = load_config(ctx.obj["config_path"], target=target)
        root = environment_root(config, ctx.obj["config_path"])
        if off:
            if ttl_mod.remove_ttl(root):
                typer.echo(f"✓ time-to-live of {config.name} removed", err=True)
            return
        entry = ttl_mod.new_record(config.name, target, ttl, set_at=started)
        ttl_mod.write_ttl(root, entry)
        typer.echo(f"✓ time-to-live {entry.ttl}: `bioinfra destroy {target}` is due at "
                   f"{entry.expires_at:%Y-%m-%d %H:%M} UTC (`bioinfra status {target}` reminds you)", err=True)

    return record


def _offer_node_labels(ctx: typer.Context, target: str, consent: Optional[bool], dry_run: bool) -> None:
    """onprem: the pool labels the Workflows' node affinities prefer, offered before the addons stack
    (core: bioinfra.targets.onprem_nodes.offer_labels). Never without consent."""
    import sys

    from bioinfra.adaptors.kube import connect
    from bioinfra.config import load_config
    from bioinfra.targets.onprem_nodes import offer_labels

    config = load_config(ctx.obj["config_path"], target=target)
    kube = connect(config.onprem.kubeconfig, config.onprem.context)
    ask = (lambda question: typer.confirm(question, default=False, err=True)) if sys.stdin.isatty() else None
    offer_labels(config, kube, consent=consent, ask=ask, dry_run=dry_run,
                 say=lambda m: typer.echo(f"✓ {m}", err=True), warn=lambda m: typer.echo(f"! {m}", err=True))


def _forget_ttl(ctx: typer.Context, target: str) -> None:
    from bioinfra.config import load_config
    from bioinfra.core.provision import environment_root
    from bioinfra.core.ttl import remove_ttl

    config = load_config(ctx.obj["config_path"], target=target)
    if remove_ttl(environment_root(config, ctx.obj["config_path"])):
        typer.echo(f"✓ time-to-live of {config.name} removed", err=True)


def up(
    ctx: typer.Context,
    target: str = typer.Argument("local", help="local, aws, gcp or onprem."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Cloud: apply without asking (needed when not at a terminal)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Cloud: show the plan, change nothing (= `bioinfra plan`)."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Cloud: list every resource in the plan."),
    registry: bool = typer.Option(False, "--registry", help="Start a local image registry and push the images to it."),
    registry_port: int = typer.Option(5000, "--registry-port", min=1, max=65535, help="Port of that registry (127.0.0.1 only)."),
    base_image: Optional[str] = typer.Option(None, "--base-image", help="BASE_IMAGE for the image builds."),
    aligner: str = typer.Option("bwa-mem2", "--aligner", help="bwa-mem2 (official release) or bwa (Debian's)."),
    with_cellprofiler: bool = typer.Option(False, "--with-cellprofiler", help="Also build the CellProfiler image."),
    extra_ca: Optional[Path] = typer.Option(None, "--extra-ca", dir_okay=False, help="CA bundle to trust inside builds."),
    ttl: Optional[str] = typer.Option(
        None, "--ttl", metavar="DURATION",
        help="aws/gcp/onprem: time-to-live such as 30m, 8h, 2d: `bioinfra status` warns once it is past "
             "(nothing is destroyed by itself); `off` removes a recorded one.",
    ),
    label_nodes: Optional[bool] = typer.Option(
        None, "--label-nodes/--no-label-nodes",
        help="onprem: label nodes with the bioinfra.io/pool values the Workflows prefer (general, highcpu) where "
             "no node carries one; without either flag you are asked at a terminal, and elsewhere nothing is "
             "labelled (the proposed kubectl commands are shown).",
    ),
) -> None:
    """Prepare a target. Undo with `bioinfra destroy TARGET`.

    local: check Docker (or the native tools), start a registry if asked, build the images.
      bioinfra up local --base-image bioinfra-base:bookworm --aligner bwa

    aws: render the Terraform stacks (network, cluster, storage) into .bioinfra/<name>/aws/, show the plan, ask, apply them in order with a progress bar per stack. Needs region in bioinfra.yaml and AWS credentials. Logs of every Terraform call: .bioinfra/<name>/aws/<stack>/logs/.
      bioinfra up aws --yes

    gcp: first a preflight through the Google clients (project, region, enabled APIs, GPU quota; exit 12 with the command that fixes each), then the same walk as aws with a regional GKE cluster. Needs project and region in bioinfra.yaml and Application Default Credentials.
      bioinfra up gcp --dry-run

    aws and gcp end with the addons stack (Argo Workflows, the RWX storage class and workspace claim, MinIO, the workflow service account bound to cloud IAM; on aws the cluster autoscaler; the NVIDIA device plugin with a GPU pool).

    onprem: your existing cluster (onprem.kubeconfig, onprem.context): only the addons stack, with an NFS provisioner or onprem.storage_class. Exit 13 if the API server does not answer. Every Workflow step prefers a node pool (node affinity on bioinfra.io/pool: general or highcpu; without such a node it runs on any Ready node, a GPU step still needs a GPU node): where no Ready, schedulable node carries one, `up` shows which node would get which label and labels them only with your consent (--label-nodes, or yes at the prompt).
      bioinfra up onprem --yes --label-nodes

    --ttl (aws, gcp, onprem) records when `bioinfra destroy` is due in .bioinfra/<name>/<target>/ttl.json; `bioinfra status TARGET` warns once it is past. Re-run `up --ttl` to move it; `destroy` removes it.
      bioinfra up aws --yes --ttl 8h
    """
    if label_nodes is not None and not _pool_preferred(target):
        from bioinfra.errors import UnsupportedError

        raise UnsupportedError("--label-nodes/--no-label-nodes are for target onprem (aws and gcp node groups carry "
                               "their pool labels)")
    if not _is_local(target):
        from bioinfra.cli.cloud_cmd import up_cloud
        from bioinfra.errors import BioinfraError, TerraformFailedError

        record_ttl = _ttl_recorder(ctx, target, ttl) if ttl is not None else None
        if dry_run and record_ttl is not None:
            typer.echo("! --ttl: not recorded by a dry run", err=True)
            record_ttl = None
        if _pool_preferred(target):
            _offer_node_labels(ctx, target, label_nodes, dry_run)
        try:
            up_cloud(ctx, target, yes=yes, dry_run=dry_run, verbose=verbose)
        except (TerraformFailedError, KeyboardInterrupt):
            # A failed or interrupted apply may have created resources that bill: the TTL stands for
            # them (best effort: the original error is what the user must see).
            if record_ttl is not None:
                with contextlib.suppress(BioinfraError, OSError):
                    record_ttl()
            raise
        if record_ttl is not None:
            record_ttl()
        return
    if ttl is not None:
        from bioinfra.errors import UnsupportedError

        raise UnsupportedError("--ttl applies to clusters (aws, gcp, onprem): target local runs on this machine")
    from bioinfra.config import load_config
    from bioinfra.core.images import build_images, push_images
    from bioinfra.core.local_target import up_local
    from bioinfra.engine.rundir import usable_workspace
    from bioinfra.errors import InputError

    if aligner not in ("bwa-mem2", "bwa"):
        raise InputError(f"--aligner must be bwa-mem2 or bwa (got {aligner!r})")
    config = load_config(ctx.obj["config_path"])
    workspace = usable_workspace(config)
    # A registry started here serves 127.0.0.1 (not `localhost`, which may resolve to ::1 first).
    registry_url = config.registry.url or (f"127.0.0.1:{registry_port}/bioinfra" if registry else "127.0.0.1:5000/bioinfra")
    names = ["fastqc", "bwa-mem2"] + (["cellprofiler"] if with_cellprofiler else [])

    def say(msg: str) -> None:
        typer.echo(f"✓ {msg}", err=True)

    def build(client, record) -> None:
        for name in names:
            (image,) = build_images(client, [name], registry=registry_url, base_image=base_image, aligner=aligner,
                                    workspace=workspace, extra_ca=extra_ca)
            record(name, image.ref, not image.cached)
            say(f"image {name}: {'unchanged' if image.cached else 'built'} ({image.ref})")
        if registry:
            for pushed in push_images(client, names, workspace=workspace):
                say(f"image {pushed.name}: pushed as {pushed.pinned}")

    result = up_local(workspace, registry_port=registry_port if registry else None, build=build, say=say)
    for name, ref in result.images.items():
        typer.echo(f"{name}\t{ref}")
    if result.registry:
        typer.echo(f"registry\t{result.registry}")


def destroy(
    ctx: typer.Context,
    target: str = typer.Argument("local", help="local, aws, gcp or onprem."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Cloud: destroy without asking (needed when not at a terminal)."),
    force_empty_buckets: bool = typer.Option(
        False, "--force-empty-buckets", help="Cloud: delete every object version in the results bucket, then the bucket."
    ),
) -> None:
    """Remove what `bioinfra up TARGET` made, and nothing else. Safe to re-run.

    aws: destroys the stacks in reverse order (storage, cluster, network), clears a stale state lock this machine can prove is its own, deletes resources an interrupted `up` left outside the state, then sweeps the region for anything still tagged bioinfra:cluster=<name>: exit 11 naming each if something remains. A results bucket with data is kept unless --force-empty-buckets.

    gcp: the same, after turning the cluster's deletion_protection off in the Terraform state; the sweep finds what is labelled bioinfra-cluster=<name>, everything inside the cluster's VPC, and its service accounts.

    aws/gcp: before the addons stack goes, LoadBalancer services and volume claims are deleted and waited for, so no cloud load balancer or disk outlives the cluster.

    onprem: destroys the addons stack only; your nodes, services and claims are left alone.
    """
    if not _is_local(target):
        from bioinfra.cli.cloud_cmd import destroy_cloud

        destroy_cloud(ctx, target, yes=yes, force_empty_buckets=force_empty_buckets)
        # Only after a clean destroy: with leftovers (exit 11) something may still bill, so the TTL stays.
        _forget_ttl(ctx, target)
        return
    from bioinfra.config import load_config
    from bioinfra.core.local_target import destroy_local
    from bioinfra.engine.rundir import default_workspace

    removed = destroy_local(default_workspace(load_config(ctx.obj["config_path"])),
                            say=lambda msg: typer.echo(f"✓ {msg}", err=True))
    if not removed:
        typer.echo("✓ nothing to remove: `up local` made nothing here (or it was already destroyed)", err=True)
