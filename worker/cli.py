"""The `gorgias-worker` command line."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from worker.config import ConfigError, Destination, WorkerConfig, check_secrets, load_config

app = typer.Typer(
    help="Kafka to Gorgias destination worker: validate configs, run the worker, try things locally.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

ConfigOption = Annotated[Path, typer.Option("--config", "-c", help="Destinations file (YAML or JSON).")]


def fail(lines: list[str], code: int = 1) -> None:
    for line in lines:
        typer.echo(f"error: {line}", err=True)
    raise typer.Exit(code)


def load_or_exit(path: Path, secrets: bool = False) -> WorkerConfig:
    try:
        config = load_config(path)
    except ConfigError as exc:
        fail(exc.problems)
        raise  # unreachable: fail() exits
    if secrets:
        problems = check_secrets(config)
        if problems:
            fail(problems)
    return config


def describe(dest: Destination) -> list[str]:
    cred = dest.credential
    ep = dest.endpoint
    lines = [f"{dest.name}  [{'active' if dest.active else 'saved inactive'}]"]
    lines.append(f"  consumes     {', '.join(dest.source_topics)}")
    if ep.template:
        lines.append(f"  endpoint     template {ep.template}")
    else:
        assert ep.method is not None
        lines.append(f"  endpoint     {ep.method.value} {ep.url} ({ep.content_format.value})")
    if ep.headers:
        lines.append(f"  headers      {', '.join(ep.headers)}")
    if ep.exclude_attributes:
        lines.append(f"  excluded     {', '.join(ep.exclude_attributes)}")
    who = cred.username if cred.auth.value == "basic" else "OAuth token"
    budget = (
        f"{cred.bucket_size()}/{cred.rate_limit.per_seconds:g}s" if cred.rate_limit.enabled else "rate limit off"
    )
    lines.append(f"  account      {cred.host} via {cred.origin} ({cred.auth.value}: {who}, secret from "
                 f"{cred.secret().describe()}), budget {budget}")
    b = dest.batching
    if b.enabled:
        how = {
            "arrival_order": f"max wait {b.max_wait_ms} ms",
            "by_attribute": f"by [{', '.join(b.attributes)}], max wait {b.max_wait_ms} ms",
            "tumbling_window": f"{b.window_ms} ms windows"
            + (f" by [{', '.join(b.attributes)}]" if b.attributes else ""),
            "session_window": f"by [{', '.join(b.attributes)}], gap {b.gap_ms} ms",
        }[b.algorithm.value]
        lines.append(f"  batching     {b.algorithm.value}: up to {b.batch_size} records / {b.max_bytes} bytes, {how}")
    else:
        lines.append("  batching     off (one call per record)")
    d = dest.delivery
    lines.append(f"  delivery     {d.max_in_flight} in flight, {d.max_attempts} attempts within "
                 f"{d.max_retry_time_s:g} s, timeout {d.timeout_s:g} s")
    rw = dest.response_webhook
    shown = f"-> {rw.topic} (request body: {rw.request_body.value})" if rw.enabled else "off"
    lines.append(f"  responses    {shown}")
    lines.append(f"  dead letter  -> {dest.dead_letter_topic}")
    return lines


@app.command()
def validate(
    config: ConfigOption,
    secrets: Annotated[bool, typer.Option(help="Also check that every secret can be read now.")] = True,
) -> None:
    """Check a destinations file and print a summary of each destination (exit 1 on any error)."""
    cfg = load_or_exit(config, secrets=secrets)
    typer.echo(f"{config}: OK, {len(cfg.destinations)} destination(s), Kafka {cfg.kafka.effective_bootstrap()}")
    for dest in cfg.destinations:
        typer.echo("")
        for line in describe(dest):
            typer.echo(line)
    for warning in cfg.warnings():
        typer.echo(f"\nwarning: {warning}", err=True)


@app.command()
def schemas(
    write: Annotated[bool, typer.Option("--write", help="Rewrite schemas/ from the models.")] = False,
) -> None:
    """Check (or with --write, regenerate) the JSON Schemas in schemas/."""
    from worker import schemas as schema_mod

    if write:
        for path in schema_mod.write():
            typer.echo(f"wrote {path}")
        return
    stale = schema_mod.drifted()
    if stale:
        fail([f"schemas/{name} is out of date: run `gorgias-worker schemas --write`" for name in stale])
    typer.echo("schemas are up to date")


def main() -> None:
    app(prog_name="gorgias-worker")


if __name__ == "__main__":
    sys.exit(main())
