"""Commands about the config itself: `validate`, `config`, `schemas`."""

from __future__ import annotations

from typing import Annotated

import typer

from worker.core.config.base import ConfigError
from worker.core.config.worker_config import Destination
from worker.core.grouping.batching import GroupingAlgorithm
from worker.host.environment import bootstrap_servers, check_secrets, known_secret_values
from worker.service.config_loading import load_config
from worker.tools.cli_app import (
    ConfigOption,
    SetOption,
    app,
    fail,
    load_or_exit,
)


def describe(dest: Destination, group_prefix: str = "<kafka.group_id>") -> list[str]:
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
            GroupingAlgorithm.ARRIVAL_ORDER: f"max wait {b.max_wait_ms} ms",
            GroupingAlgorithm.BY_ATTRIBUTE: f"by [{', '.join(b.attributes)}], max wait {b.max_wait_ms} ms",
            GroupingAlgorithm.TUMBLING_WINDOW: f"{b.window_ms} ms windows"
            + (f" by [{', '.join(b.attributes)}]" if b.attributes else ""),
            GroupingAlgorithm.SESSION_WINDOW: f"by [{', '.join(b.attributes)}], gap {b.gap_ms} ms",
        }[b.algorithm]
        lines.append(f"  batching     {b.algorithm.value}: up to {b.batch_size} records / {b.max_bytes} bytes, {how}")
    else:
        lines.append("  batching     off (one call per record)")
    d = dest.delivery
    lines.append(f"  delivery     {d.max_in_flight} calls on the wire at most, {d.max_attempts} attempts within "
                 f"{d.max_retry_time_s:g} s, timeout {d.timeout_s:g} s")
    rw = dest.response_webhook
    shown = f"-> {rw.topic} (request body: {rw.request_body.value})" if rw.enabled else "off"
    lines.append(f"  responses    {shown}")
    lines.append(f"  dead letter  -> {dest.dead_letter_topic}")
    group = dest.consumer_group(group_prefix)
    lines.append(f"  consumer     group {group}; without committed offsets starts from {dest.start_from}")
    return lines


@app.command(short_help="Check a config; summary per destination or every error.")
def validate(
    config: ConfigOption,
    secrets: Annotated[bool, typer.Option(help="Also check that every secret can be read now.")] = True,
    overrides: SetOption = None,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print {ok, errors, warnings} as JSON; each error has path, message, suggestion and line.",
    )] = False,
) -> None:
    """Check a destinations file and print a summary of each destination (exit 1 on any error)."""
    if as_json:
        import orjson

        from worker.core.config.base import Problem
        from worker.core.templates import check_templates
        from worker.host.tls import tls_problems

        try:
            checked = load_config(config, overrides or ())
            lines = check_templates(checked) + (check_secrets(checked) + tls_problems(checked.kafka) if secrets else [])
            problems, warnings = [Problem.from_line(line) for line in lines], checked.warnings()
        except ConfigError as exc:
            problems, warnings = exc.items, []
        errors = [p.as_dict() for p in problems]
        typer.echo(orjson.dumps({"ok": not problems, "errors": errors, "warnings": warnings}).decode())
        raise typer.Exit(1 if problems else 0)
    cfg = load_or_exit(config, secrets=secrets, overrides=overrides)
    typer.echo(f"{config}: OK, {len(cfg.destinations)} destination(s), Kafka {bootstrap_servers(cfg.kafka)}")
    token = cfg.worker.control_token()
    guard = f"need the bearer token from {token.describe()}" if token else "open to this machine only"
    typer.echo(f"control API on {cfg.worker.web_host}:{cfg.worker.web_port} (POST routes {guard})")
    for dest in cfg.destinations:
        typer.echo("")
        for line in describe(dest, cfg.kafka.group_id):
            typer.echo(line)
    for warning in cfg.warnings():
        typer.echo(f"\nwarning: {warning}", err=True)


@app.command("config", short_help="Print the effective config, defaults filled, secrets masked.")
def config_command(config: ConfigOption, overrides: SetOption = None) -> None:
    """Print the effective config (file, environment and --set overrides, every default) as YAML, secrets masked."""
    import yaml

    from worker.core.config.effective import effective_document

    cfg = load_or_exit(config, overrides=overrides)
    typer.echo(yaml.safe_dump(effective_document(cfg, known_secret_values(cfg)), sort_keys=False, width=100).rstrip())


@app.command(short_help="Check (or --write) the JSON Schemas in schemas/.")
def schemas(
    write: Annotated[bool, typer.Option("--write", help="Rewrite schemas/ (and the README's tables).")] = False,
) -> None:
    """Check (or with --write, regenerate) the JSON Schemas in schemas/ and the README's settings and scopes
    tables."""
    from worker.tools import chart_schema, readme_sections, scopes_table, settings_table
    from worker.tools import schemas as schema_mod

    readme = readme_sections.README.exists()  # a source checkout (an installed package has no README)
    sections = (settings_table.SECTION, scopes_table.SECTION) if readme else ()
    chart = chart_schema.CHART_SCHEMA.exists()  # and the Helm chart beside it
    if write:
        for path in schema_mod.write():
            typer.echo(f"wrote {path}")
        for section in sections:
            section.write()
            typer.echo(f"wrote the {section.name} of {readme_sections.README}")
        if chart:
            typer.echo(f"wrote the config schema embedded in {chart_schema.write()}")
        return
    stale = [f"schemas/{name}" for name in schema_mod.drifted()]
    stale += [f"the README's {section.name}" for section in sections if section.drifted()]
    if chart and chart_schema.drifted():
        stale.append(str(chart_schema.CHART_SCHEMA.relative_to(chart_schema.CHART_SCHEMA.parents[3])))
    if stale:
        fail([f"{name} is out of date: run `gorgias-worker schemas --write`" for name in stale])
    typer.echo("schemas are up to date")




@app.command("secrets-key", short_help="Print a new key for worker.secrets_key_env / _file.")
def secrets_key() -> None:
    """Print a new Fernet key for the secrets of credentials saved at runtime (worker.secrets_key_env or
    worker.secrets_key_file; to rotate, put it first: NEW,OLD)."""
    from worker.host.secret_box import new_key

    typer.echo(new_key())
