"""`bioinfra estimate PIPELINE|FOLDER [its options] --target aws|gcp`: thin over bioinfra.core.estimate.

The pipeline's own options come from its pipeline.yaml (typed inputs), built as `bioinfra run` builds
them (run_cmd.input_option), so `bioinfra estimate NAME --help` shows what NAME takes; what each step
costs is that pipeline.yaml's `throughput` and `resources`. No per-pipeline code here.
"""

from __future__ import annotations

import json
from typing import Any, Optional

import click
import typer

ESTIMATE_HELP = """Estimate the node-hours and cost of a run in the cloud, before running it.

Per step: the pool and machine type it runs on (from bioinfra.yaml's node_pools), spot or on-demand, how many of its pods share a node, node-hours and USD; then the nodes the autoscaler adds, the pools' standing nodes and the control plane for the run's makespan. The pipeline's typed inputs say what is measured (reads, reference bases, image sets; chunk and batch sizes), its pipeline.yaml's `throughput` what each step's work is (measured with bioinfra's own steps, each number's source beside it); prices come from the price table shipped with bioinfra (list prices of the date it names; spot prices vary). Without bioinfra.yaml, the defaults `bioinfra init --target TARGET` writes. The assumptions are listed under the table; docs/cost.md explains the model.

`bioinfra run` refuses a run whose estimate is above budget.max_usd (exit 14) unless --over-budget.

PIPELINE is a pipeline name (`bioinfra pipelines list`) or a pipeline folder; its own options are those of `bioinfra run PIPELINE` (`bioinfra estimate PIPELINE --help` lists them).

\b
Examples:
  bioinfra estimate fastqc-to-bwa --target aws                         # the bundled sample
  bioinfra estimate fastqc-to-bwa --target gcp --samples samples.csv --reference GRCh38.fa.gz
  bioinfra estimate fastqc-to-bwa -t aws --r1 a_R1.fq.gz --r2 a_R2.fq.gz --reference ref.fa
  bioinfra estimate cellprofiler -t gcp --data-file images.csv --batch-size 50 --seconds-per-set 40
  bioinfra estimate variant-calling -t aws --r1 a_R1.fq.gz --r2 a_R2.fq.gz --reference GRCh38.fa.gz
  bioinfra estimate ./my-pipeline/ -t gcp --input data.csv             # your own pipeline folder
  bioinfra estimate fastqc-to-bwa -t aws --samples samples.csv --json | jq .total_usd
"""

# The options `estimate` has for every pipeline (a pipeline's input may not take these flags).
OWN_FLAGS = ("--target", "-t", "--json", "--seconds-per-set")


def estimate(
    ctx: typer.Context,
    pipeline: Optional[str] = typer.Argument(None, metavar="PIPELINE", show_default=False,
                                             help="A pipeline name or a pipeline folder."),
) -> None:
    from bioinfra.cli.run_cmd import invoke, pipeline_or_help, resolve

    if pipeline_or_help(ctx, pipeline, "estimate"):
        assert pipeline is not None
        invoke(ctx, estimate_command(ctx, resolve(ctx, pipeline), pipeline), "estimate", pipeline)


estimate.__doc__ = ESTIMATE_HELP


def estimate_command(ctx: typer.Context, spec: Any, ref: str) -> click.Command:
    from bioinfra.cli.run_cmd import input_option
    from bioinfra.errors import InputError

    taken = [i.option for i in spec.inputs if i.option in OWN_FLAGS or (i.short or "") in OWN_FLAGS]
    if taken:
        raise InputError(f"{spec.name}: input option(s) {', '.join(taken)} clash with `bioinfra estimate`'s own",
                         hint="rename them in its pipeline.yaml (`flag:`)")

    def callback(**kwargs: Any) -> None:
        given = {i.name: kwargs.get(i.name) for i in spec.inputs}
        run_estimate(ctx.obj or {}, spec, given, target=kwargs["target"], as_json=kwargs["as_json"],
                     seconds_per_set=kwargs["seconds_per_set"])

    params = [input_option(i) for i in spec.inputs] + [
        click.Option(["--target", "-t"], help="aws | gcp (default: the config's target). onprem and local have no prices."),
        click.Option(["as_json", "--json"], is_flag=True, help="The whole estimate as JSON on stdout."),
        click.Option(["--seconds-per-set"], type=click.FloatRange(min=0.01),
                     help="Seconds one item (an image set) takes in a step that runs your own program (pipeline.yaml "
                          "throughput `user_work`, e.g. cellprofiler's analyze; default: the bundled data's, far "
                          "less than a real screen's: measure a few of your sets locally)."),
    ]
    source = "built-in" if spec.builtin else f"from {spec.folder}"
    return click.Command(name=ref, callback=callback, params=params, context_settings={"max_content_width": 110},
                         help=f"Estimate the cost of a run of {spec.name} {spec.version} ({source}) on aws or gcp: "
                              f"{spec.description}\n\nWork per step: its pipeline.yaml `throughput` (docs/cost.md).")


def run_estimate(ctx_obj: dict[str, Any], spec: Any, given: dict[str, Any], *, target: Optional[str], as_json: bool,
                 seconds_per_set: Optional[float]) -> None:
    from bioinfra.core.estimate import estimate_config, estimate_pipeline

    config, note = estimate_config(ctx_obj.get("config_path"), target)
    found = estimate_pipeline(config, spec, given, seconds_per_set=seconds_per_set)
    if note:
        found.assumptions.insert(0, note)
    for warning in found.warnings:
        typer.echo(f"! {warning}", err=True)
    if as_json:
        typer.echo(json.dumps(found.to_dict(), indent=2, ensure_ascii=False))
        return
    print_estimate(found)


def usd(value: float) -> str:
    return f"{value:,.2f}" if value >= 1 else f"{value:.4f}"


def hours(value: float) -> str:
    return f"{value:,.1f}" if value >= 10 else f"{value:.3f}"


def span(h: float) -> str:
    """A pod's (or the control plane's) time: '14 s', '3.2 min', '41.7 h'."""
    seconds = h * 3600
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min" if seconds < 5400 else f"{h:,.1f} h"


def duration(h: float) -> str:
    minutes = round(h * 60)
    if minutes < 60:
        return f"{max(minutes, 1)} min"
    return f"{minutes // 60} h {minutes % 60:02d} min" if h < 48 else f"{h / 24:.1f} days"


def print_estimate(found) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(soft_wrap=True)
    if not console.is_terminal:
        console = Console(width=160, no_color=True, soft_wrap=True)
    say = lambda text: console.print(text, markup=False, highlight=False)  # noqa: E731
    say(f"{found.pipeline} on {found.target} ({found.region}): {found.summary}")
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column, justify in (("STEP", "left"), ("PODS", "right"), ("POOL", "left"), ("MACHINE", "left"),
                            ("CAPACITY", "left"), ("PODS/NODE", "right"), ("TIME/POD", "right"),
                            ("NODE-HOURS", "right"), ("USD", "right")):
        table.add_column(column, justify=justify, no_wrap=True)
    for s in found.steps:
        table.add_row(s.step, f"{s.pods:,}", s.pool, s.machine_type, "spot" if s.spot else "on-demand",
                      str(s.pods_per_node), span(s.hours_per_pod), hours(s.node_hours), usd(s.usd))
    for o in found.overheads:
        table.add_row(o.name, "-", o.pool, o.machine_type, "spot" if o.spot else "on-demand", "-", "-",
                      hours(o.hours), usd(o.usd))
    plane = found.control_plane
    table.add_row(plane.name, "-", "-", "-", "-", "-", span(plane.hours), "-", usd(plane.usd))
    table.add_row("total", "", "", "", "", "", "", hours(found.total_node_hours), usd(found.total_usd),
                  style="bold")
    console.print(table)
    say(f"makespan about {duration(found.makespan_hours)}; prices of {found.price_region} as of "
        f"{found.prices_as_of} ({found.currency}; list prices, spot prices vary): bioinfra/data/prices.yaml")
    say("assumptions:")
    for line in found.assumptions:
        say(f"  - {line}")
