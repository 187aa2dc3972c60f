"""`bioinfra estimate PIPELINE --target aws|gcp`: thin over bioinfra.core.estimate."""

from __future__ import annotations

import json
from typing import Optional

import typer

from bioinfra.cli import options as opts


def estimate(
    ctx: typer.Context,
    pipeline: opts.Pipeline,
    target: Optional[str] = typer.Option(
        None, "--target", "-t", help="aws | gcp (default: the config's target). onprem and local have no prices."),
    samples: opts.Samples = None,
    r1: opts.R1 = None,
    r2: opts.R2 = None,
    reference: opts.Reference = None,
    chunk_size: opts.ChunkSize = None,
    data_file: opts.DataFile = None,
    batch_size: opts.BatchSize = 4,
    seconds_per_set: Optional[float] = typer.Option(
        None, "--seconds-per-set", min=0.01,
        help="cellprofiler: wall seconds your analysis pipeline takes per image set (default: the bundled "
             "screen's, far less than a real screen's: measure a few of your sets locally)."),
    as_json: bool = typer.Option(False, "--json", help="The whole estimate as JSON on stdout."),
) -> None:
    """Estimate the node-hours and cost of a run in the cloud, before running it.

    Per step: the pool and machine type it runs on (from bioinfra.yaml's node_pools), spot or on-demand, how many of its pods share a node, node-hours and USD; then the nodes the autoscaler adds, the pools' standing nodes and the control plane for the run's makespan. Work per step comes from measurements of bioinfra's own steps, prices from the price table shipped with bioinfra (list prices of the date it names; spot prices vary). Without bioinfra.yaml, the defaults `bioinfra init --target TARGET` writes. The assumptions are listed under the table; docs/cost.md explains the model.

    `bioinfra run` refuses a run whose estimate is above budget.max_usd (exit 14) unless --over-budget.

    \b
    Examples:
      bioinfra estimate fastqc-to-bwa --target aws                         # the bundled sample
      bioinfra estimate fastqc-to-bwa --target gcp --samples samples.csv --reference GRCh38.fa.gz
      bioinfra estimate fastqc-to-bwa -t aws --r1 a_R1.fq.gz --r2 a_R2.fq.gz --reference ref.fa
      bioinfra estimate cellprofiler -t gcp --data-file images.csv --batch-size 50 --seconds-per-set 40
      bioinfra estimate fastqc-to-bwa -t aws --samples samples.csv --json | jq .total_usd
    """
    from bioinfra.core.estimate import estimate as make_estimate
    from bioinfra.core.estimate import estimate_config

    config, note = estimate_config(ctx.obj["config_path"], target)
    found = make_estimate(config, pipeline, samples=samples, r1=r1, r2=r2, reference=reference,
                          data_file=data_file, batch_size=batch_size, chunk_size=chunk_size,
                          seconds_per_set=seconds_per_set)
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
