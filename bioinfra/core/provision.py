"""plan / up / destroy for the cloud targets: one walk over the target's declared stacks.

`up` walks `target.stacks` forward, `destroy` walks the same tuple backward; there is no second list.
Each stack is a Terraform root rendered into <env>/<stack>/ next to a copy of the target's static
modules (<env>/modules/). A stack reads its upstream stacks' outputs as variables, written by
bioinfra into <stack>/upstream.auto.tfvars.json, so stacks share no backend configuration and a
stack can be planned before its upstream exists (with placeholder values, said so in the summary).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from bioinfra.core.stacks import ADOPT_FILES, Stack
from bioinfra.errors import InputError, LeftoversError, TerraformFailedError, UnsupportedError

if TYPE_CHECKING:
    from bioinfra.adaptors.terraform import StreamResult, Terraform
    from bioinfra.config import Config

Say = Callable[[str], None]
PLAN_FILE = "tfplan"
VALUES_FILE = "bioinfra.auto.tfvars.json"  # every config value a stack reads, as Terraform variables
UPSTREAM_FILE = "upstream.auto.tfvars.json"  # the upstream stacks' outputs, as Terraform variables
BACKEND_FILE = "backend-config.json"  # the remote backend's settings, for `terraform init -backend-config=`


@dataclass
class StackPlan:
    stack: str
    add: int = 0
    change: int = 0
    remove: int = 0
    placeholders: tuple[str, ...] = ()  # upstream stacks stood in for (not applied yet)
    resources: list[tuple[str, str]] = field(default_factory=list)  # (action, address)
    full_text: str = ""

    @property
    def total(self) -> int:
        return self.add + self.change + self.remove


@dataclass
class Environment:
    """The folder holding one environment's rendered stacks, state (local backend) and logs."""

    config: Config
    root: Path

    def stack_dir(self, stack: Stack) -> Path:
        return self.root / stack.name


class StackProgress:
    """Receives one stack's apply/destroy events; the CLI draws a bar from it."""

    def start(self, stack: str, total: int, verb: str) -> None: ...

    def advance(self, stack: str, address: str, ok: bool) -> None: ...

    def finish(self, stack: str) -> None: ...


def environment_root(config: Config, config_path: Optional[Path]) -> Path:
    """.bioinfra/<name>/<target>/ beside the config file (else the current folder)."""
    base = config_path.resolve().parent if config_path else Path.cwd()
    return base / ".bioinfra" / config.name / config.target


def cloud_target(name: str):
    """The target, if it has Terraform stacks (checked before its config, so "not yet" comes first)."""
    from bioinfra.targets import get_target

    target = get_target(name)
    if not getattr(target, "stacks", None):
        raise UnsupportedError(
            f"`plan`/`up`/`destroy` with Terraform are not available for target '{name}' yet",
            hint="aws, gcp and onprem have stacks; `bioinfra up local` prepares this machine",
        )
    return target


# ---------------------------------------------------------------------------------------------
# rendering


def render_environment(config: Config, root: Path) -> list[Path]:
    """Render every stack root and copy the static modules; returns the files written."""
    from bioinfra.render import render_terraform, terraform_root

    target = cloud_target(config.target)
    root.mkdir(parents=True, exist_ok=True)
    # Local state, plans and logs can hold values worth protecting: this user only.
    os.chmod(root, 0o700)
    written = []
    modules_dst = root / "modules"
    # Replace the modules copy as a whole: a file removed from the package must not linger. The
    # target's own modules (onprem has none) sit beside the in-cluster ones every target shares.
    staging = root / ".modules.new"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    for modules_src in (terraform_root() / config.target / "modules", terraform_root() / "addons" / "modules"):
        if modules_src.is_dir():
            shutil.copytree(modules_src, staging, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns(".terraform*", "*.tfstate*"))
    shutil.rmtree(modules_dst, ignore_errors=True)
    os.replace(staging, modules_dst)
    written += sorted(p for p in modules_dst.rglob("*.tf"))
    for stack in target.stacks:
        folder = root / stack.name
        folder.mkdir(exist_ok=True)
        main = folder / "main.tf"
        # The template gets structure only; every config value goes into the tfvars JSON, which
        # Terraform reads as data: a "${...}" there is text, never an expression (issue #15).
        text = render_terraform(stack.template, **target.stack_variables(config, stack))
        if not main.exists() or main.read_text() != text:
            main.write_text(text)
        written.append(main)
        values = folder / VALUES_FILE
        write_private_json(values, target.stack_values(config, stack))
        written.append(values)
        backend = target.backend_config(config, stack)
        if backend is None:
            (folder / BACKEND_FILE).unlink(missing_ok=True)
        else:
            write_private_json(folder / BACKEND_FILE, backend)
            written.append(folder / BACKEND_FILE)
    return written


def write_private_json(path: Path, data: Any) -> None:
    """JSON for Terraform (json.dumps: a value is data, whatever it holds), readable by this user only
    (0600 from the start: the file is created with that mode, then moved into place)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(data, indent=2, sort_keys=True) + "\n")
        os.chmod(tmp, 0o600)  # whatever the umask
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def terraform_env(config: Config) -> dict[str, str]:
    """Terraform's environment: the caller's, plus non-interactive mode and a shared plugin cache."""
    env = dict(os.environ)
    env["TF_IN_AUTOMATION"] = "1"
    env["TF_INPUT"] = "0"
    env.setdefault("CHECKPOINT_DISABLE", "1")  # no version check calls home
    if "TF_PLUGIN_CACHE_DIR" not in env:
        # One copy of the ~600 MB AWS provider for every stack instead of one per stack.
        cache = Path(env.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "bioinfra" / "terraform-plugins"
        cache.mkdir(parents=True, exist_ok=True)
        env["TF_PLUGIN_CACHE_DIR"] = str(cache)
    env.update(cloud_target(config.target).terraform_env(config))
    return env


# ---------------------------------------------------------------------------------------------
# the walk


class Provisioner:
    """plan / up / destroy over one environment's stacks."""

    def __init__(self, config: Config, config_path: Optional[Path], say: Say, progress: Optional[StackProgress] = None):
        self.config = config
        self.target = cloud_target(config.target)
        self.env_dir = environment_root(config, config_path)
        self.say = say
        self.progress = progress or StackProgress()
        self._env = terraform_env(config)
        self._terraform: dict[str, Terraform] = {}
        self._initialised: set[str] = set()
        self._skip_said: set[str] = set()
        self._session = None

    # -- helpers -------------------------------------------------------------------------------

    def tf(self, stack: Stack) -> Terraform:
        from bioinfra.adaptors.terraform import Terraform

        if stack.name not in self._terraform:
            self._terraform[stack.name] = Terraform(self.env_dir / stack.name, self._env)
        return self._terraform[stack.name]

    def stack(self, name: str) -> Stack:
        return next(s for s in self.target.stacks if s.name == name)

    @property
    def stacks(self) -> tuple[Stack, ...]:
        """The target's stacks this environment walks: all of them, less any the target skips here
        (the addons stack against the AWS emulator, whose EKS has no Kubernetes API). Said once."""
        active = []
        for stack in self.target.stacks:
            reason = self.target.skip_reason(self.config, stack)
            if reason is None:
                active.append(stack)
            elif stack.name not in self._skip_said:
                self._skip_said.add(stack.name)
                self.say(f"stack {stack.name}: skipped ({reason})")
        return tuple(active)

    def _init(self, stack: Stack) -> None:
        if stack.name not in self._initialised:
            backend = self.env_dir / stack.name / BACKEND_FILE
            self.tf(stack).init(backend_config_file=BACKEND_FILE if backend.exists() else None)
            self._initialised.add(stack.name)

    def _outputs(self, stack: Stack) -> dict[str, Any]:
        self._init(stack)
        return self.tf(stack).outputs()

    def _write_upstream(self, stack: Stack, *, allow_placeholders: bool) -> tuple[str, ...]:
        """Write the stack's upstream outputs as variables; returns the upstream stacks stood in for."""
        values: dict[str, Any] = {}
        stood_in = []
        for name in stack.upstream:
            outputs = self._outputs(self.stack(name))
            wanted = self.target.placeholder_outputs[name]
            if all(key in outputs for key in wanted):
                values[name] = {key: outputs[key] for key in wanted}
            elif allow_placeholders:
                values[name] = wanted
                stood_in.append(name)
            else:
                raise TerraformFailedError(
                    f"stack '{stack.name}' needs the outputs of '{name}', which is not applied",
                    hint=f"apply '{name}' first (`bioinfra up {self.config.target}`)",
                )
        if stack.upstream:
            write_private_json(self.env_dir / stack.name / UPSTREAM_FILE, values)
        return tuple(stood_in)

    def _check(self, stack: Stack, result: StreamResult, what: str) -> None:
        from bioinfra.adaptors.terraform import lock_error

        if result.returncode == 0:
            return
        if result.lock:
            raise lock_error(stack.name, result.lock)
        errors = "; ".join(result.errors[:3]) or "see the log"
        raise TerraformFailedError(f"terraform {what} of stack '{stack.name}' failed: {errors}",
                                   hint=f"full log: {result.log}")

    def _plan(self, stack: Stack, *, destroy: bool, allow_placeholders: bool, verbose: bool = False) -> StackPlan:
        self._init(stack)
        stood_in = self._write_upstream(stack, allow_placeholders=allow_placeholders)
        if destroy:
            for name in ADOPT_FILES:
                (self.env_dir / stack.name / name).unlink(missing_ok=True)
        else:
            self.target.adopt_kept(self.config, stack, self.tf(stack), self.session(), self.say)
        args = ["plan", f"-out={PLAN_FILE}", "-detailed-exitcode"]
        if destroy:
            args += ["-destroy", *self.target.destroy_plan_args(self.config, stack)]
        result = self.tf(stack).stream(args, say=self.say)
        if result.returncode == 2:  # -detailed-exitcode: 2 = there are changes
            result.returncode = 0
        self._check(stack, result, "plan")
        plan = StackPlan(
            stack.name,
            add=result.changes.get("add", 0) + result.changes.get("import", 0),
            change=result.changes.get("change", 0),
            remove=result.changes.get("remove", 0),
            placeholders=stood_in,
            resources=[(c.get("action", "?"), c.get("resource", {}).get("addr", "?")) for c in result.planned],
        )
        if verbose:
            plan.full_text = self.tf(stack).show_plan(PLAN_FILE)
        return plan

    def _apply(self, stack: Stack, plan: StackPlan, verb: str) -> None:
        # Progress: total from the plan's change_summary; a step done per apply_complete or
        # apply_errored whose hook.action is not "read" (data sources are read, not changed).
        self.progress.start(stack.name, plan.total, verb)

        def on_event(event: dict[str, Any]) -> None:
            kind = event.get("type")
            if kind in ("apply_complete", "apply_errored"):
                hook = event.get("hook", {})
                if hook.get("action") != "read":
                    self.progress.advance(stack.name, hook.get("resource", {}).get("addr", "?"),
                                          kind == "apply_complete")

        try:
            result = self.tf(stack).stream(["apply", PLAN_FILE], on_event=on_event, say=self.say)
        finally:
            self.progress.finish(stack.name)
        self._check(stack, result, "apply")

    # -- plan ----------------------------------------------------------------------------------

    def plan(self, verbose: bool = False) -> list[StackPlan]:
        """What `up` would change, stack by stack (upstream stacks not applied yet are stood in for)."""
        render_environment(self.config, self.env_dir)
        return [self._plan(stack, destroy=False, allow_placeholders=True, verbose=verbose)
                for stack in self.stacks]

    # -- up ------------------------------------------------------------------------------------

    def up(self, confirm: Callable[[list[StackPlan]], bool]) -> dict[str, Any]:
        """Preview every stack, ask once, then apply them in order. Returns the last stacks' outputs."""
        render_environment(self.config, self.env_dir)
        stacks = self.stacks
        previews = [self._plan(stack, destroy=False, allow_placeholders=True) for stack in stacks]
        if not any(p.total for p in previews):
            self.say("no changes: every stack is up to date")
            return self._collect_outputs()
        if not confirm(previews):
            raise InputError("not applied: the plan was declined", hint="nothing was changed")
        changed_upstream = False
        for stack, preview in zip(stacks, previews, strict=True):
            plan = preview
            # A preview made with placeholders, or before an upstream changed, is planned again now
            # that the upstream outputs are real.
            if preview.placeholders or changed_upstream:
                plan = self._plan(stack, destroy=False, allow_placeholders=False)
            if plan.total:
                self._apply(stack, plan, "creating")
                changed_upstream = True
                self.say(f"stack {stack.name}: {plan.add} added, {plan.change} changed, {plan.remove} destroyed")
            else:
                self.say(f"stack {stack.name}: no changes")
        return self._collect_outputs()

    def _collect_outputs(self) -> dict[str, Any]:
        outputs = {stack.name: self._outputs(stack) for stack in self.stacks}
        write_private_json(self.env_dir / "outputs.json", outputs)
        return outputs

    # -- destroy -------------------------------------------------------------------------------

    def destroy(self, *, force_empty_buckets: bool, sweep: bool = True) -> list[str]:
        """Destroy the stacks in reverse order, then sweep what is still tagged with the cluster.

        Safe to re-run and to run after an interrupted `up`: a stale lock this machine can prove is
        its own is cleared; resources a killed apply left outside the state are deleted through the
        API before their stack is destroyed. Returns what the final sweep still found (raises
        LeftoversError if anything).
        """
        render_environment(self.config, self.env_dir)
        target, config = self.target, self.config
        session = self.session() if sweep else None
        # Listed once: destroying one stack does not change what another stack left behind.
        found = target.find_leftovers(config, session) if session is not None else []
        for stack in reversed(self.stacks):
            tf = self.tf(stack)
            self._init(stack)
            in_state = tf.state_list()
            if session is not None:
                known = self._state_ids(stack) if in_state else set()
                leftovers = [lo for lo in found if lo.stack == stack.name and not _in_state(lo, known)]
                if leftovers:
                    # What an earlier destroy kept on purpose (a results bucket with data, on aws with its KMS
                    # key: `kept_on` of aws_sweep.Leftover / gcp_sweep.Leftover) is not an interrupted apply's.
                    kept = [lo for lo in leftovers if lo.kept_on]
                    if kept:
                        self.say(f"stack {stack.name}: {', '.join(f'{lo.kind} {lo.id}' for lo in kept)} kept by an "
                                 f"earlier destroy ({kept[0].kept_on}) because the bucket held data; deleting them "
                                 "through the API (a bucket with data only with --force-empty-buckets)")
                    if len(kept) < len(leftovers):
                        self.say(f"stack {stack.name}: {len(leftovers) - len(kept)} resource(s) exist outside the "
                                 "Terraform state (an interrupted apply); deleting them through the API first")
                    target.delete_leftovers(config, session, leftovers, force_empty_buckets=force_empty_buckets,
                                            say=self.say, stack=stack.name)
            if in_state:
                target.before_destroy(config, stack, tf, session, force_empty_buckets=force_empty_buckets,
                                      say=self.say)
            # Planned even with an empty state: the plan takes the state lock, so a stale lock left by
            # a killed `up` (one that never wrote state) is found and cleared here too.
            plan = self._plan_destroy(stack)
            if plan.total:
                self._apply(stack, plan, "destroying")
                self.say(f"stack {stack.name}: destroyed ({plan.remove} resources)")
            else:
                self.say(f"stack {stack.name}: nothing in the state")
        if session is None:
            return []
        remaining = target.find_leftovers(config, session)
        kept_buckets = []
        if remaining:
            result = target.delete_leftovers(config, session, remaining, force_empty_buckets=force_empty_buckets,
                                             say=self.say)
            kept_buckets = [f"{lo.kind} {lo.id}: {why}" for lo, why in result.kept]
            remaining = target.find_leftovers(config, session)
        names = [f"{lo.kind} {lo.id}" + (f" ({lo.detail})" if lo.detail else "") for lo in remaining]
        if names:
            raise LeftoversError(
                f"destroy finished, but {len(names)} resource(s) of cluster {config.name} remain "
                f"(labelled/tagged {target.label}={config.name})",
                hint=("\n    ".join(["", *names, *kept_buckets]).rstrip()
                      + "\n  buckets with data are kept unless you pass --force-empty-buckets; "
                      "anything else: re-run `bioinfra destroy`"),
            )
        return names

    def _plan_destroy(self, stack: Stack) -> StackPlan:
        from bioinfra.adaptors.terraform import LockInfo

        try:
            return self._plan(stack, destroy=True, allow_placeholders=True)
        except Exception as exc:  # a held lock: clear it if we can prove it is our own stale lock
            lock: Optional[LockInfo] = getattr(exc, "lock", None)
            if lock is None:
                raise
            ours, why = self.tf(stack).stale_lock_is_ours(lock)
            if not ours:
                raise
            self.say(f"stack {stack.name}: clearing a stale state lock ({why})")
            self.tf(stack).force_unlock(lock.id)
            self.tf(stack).forget_dead_run()
            return self._plan(stack, destroy=True, allow_placeholders=True)

    def _state_ids(self, stack: Stack) -> set[str]:
        """Every id/arn/name in the stack's state: what Terraform will destroy itself."""
        ids: set[str] = set()

        def walk(module: dict[str, Any]) -> None:
            for res in module.get("resources", []):
                values = res.get("values") or {}
                for key in ("id", "arn", "name", "bucket", "node_group_name"):
                    if isinstance(values.get(key), str):
                        ids.add(values[key])
            for child in module.get("child_modules", []):
                walk(child)

        walk(self.tf(stack).show_state().get("values", {}).get("root_module", {}))
        return ids

    def preflight(self, *, destroying: bool = False) -> str:
        """Checks that need no Terraform (credentials; on gcp also project, APIs, GPU quota for `up`);
        names the account or project. Raises before anything is rendered or created."""
        return self.target.preflight(self.config, self.session(), destroying=destroying)

    def session(self) -> Any:
        """The target's SDK session (boto3 / Google clients), opened once."""
        if self._session is None:
            self._session = self.target.open_session(self.config)
        return self._session


def _in_state(leftover: Any, known: set[str]) -> bool:
    # Terraform's id for a node group is "cluster:group"; the sweep's is "cluster/group".
    return leftover.id in known or leftover.id.replace("/", ":") in known or leftover.id.split("/")[-1] in known


def is_interactive() -> bool:
    return sys.stdin.isatty()
