"""The `gorgias-worker` command line."""

from __future__ import annotations

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
    from worker.templates import check_templates

    problems = check_templates(config)
    if secrets:
        problems += check_secrets(config)
    if problems:
        fail(problems)
    return config


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
    group = dest.consumer_group(group_prefix)
    lines.append(f"  consumer     group {group}; without committed offsets starts from {dest.start_from}")
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
        for line in describe(dest, cfg.kafka.group_id):
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


@app.command()
def run(
    config: ConfigOption,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "",
) -> None:
    """Run the worker: consume every active destination's topics and deliver to Gorgias until SIGTERM."""
    cfg = load_or_exit(config, secrets=True)
    for warning in cfg.warnings():
        typer.echo(f"warning: {warning}", err=True)
    from worker.logs import register_secret
    from worker.pipeline.app import run as run_worker

    for dest in cfg.destinations:
        register_secret(dest.credential.secret().resolve().get_secret_value())
    ref = cfg.kafka.sasl_password()
    if ref is not None:
        register_secret(ref.resolve().get_secret_value())
    run_worker(cfg, log_level or cfg.worker.log_level)


@app.command()
def sandbox(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (0 picks a free one).")] = 8080,
    rate_limit: Annotated[str, typer.Option(help="API-key budget like 40/20s, or off.")] = "40/20s",
    faults: Annotated[str | None, typer.Option(help="Fault spec (see docs/sandbox.md).")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed for reproducible faults.")] = None,
    account: Annotated[
        list[str] | None, typer.Option(help="domain:email:apikey[:role]; repeatable. Default: acme.")
    ] = None,
) -> None:
    """Run the local Gorgias sandbox (a faithful fake Gorgias API) for tests, demos and benchmarks."""
    from gorgias_sandbox.server import serve

    serve(host=host, port=port, rate_limit=rate_limit, faults=faults, seed=seed, accounts=account or None)


@app.command()
def produce(
    file: Annotated[Path, typer.Argument(help="JSON Lines file: one record per line.")],
    topic: Annotated[str, typer.Option("--topic", "-t", help="Topic to publish to.")],
    bootstrap: Annotated[str, typer.Option(envvar="KAFKA_BOOTSTRAP_SERVERS", help="Kafka bootstrap.")] = (
        "localhost:9092"
    ),
    key_attribute: Annotated[
        str | None, typer.Option("--key", help="Record attribute (dotted) to use as the Kafka key.")
    ] = None,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="Take Kafka settings from here.")] = None,
) -> None:
    """Publish records from a JSON Lines file to a topic, with a progress bar."""
    import asyncio

    from worker.config import KafkaSettings
    from worker.topic_io import produce_file

    kafka = load_or_exit(config).kafka if config else KafkaSettings(bootstrap_servers=bootstrap)
    sent, bad = asyncio.run(produce_file(kafka, topic, file, key_attribute))
    typer.echo(f"published {sent} record(s) to {topic}" + (f"; skipped {bad} line(s) that are not JSON" if bad else ""))


@app.command()
def responses(
    destination: Annotated[str | None, typer.Option(help="Only this destination's events.")] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new events.")] = False,
    topic: Annotated[str, typer.Option(help="Response topic.")] = "gorgias.responses",
    bootstrap: Annotated[str, typer.Option(envvar="KAFKA_BOOTSTRAP_SERVERS", help="Kafka bootstrap.")] = (
        "localhost:9092"
    ),
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="Take Kafka settings and topic from here.")
    ] = None,
    limit: Annotated[int | None, typer.Option(help="Stop after this many events.")] = None,
    raw: Annotated[bool, typer.Option("--json", help="Print each event as one JSON line.")] = False,
) -> None:
    """Print response events as they arrive (one line per API call, or full JSON with --json)."""
    import asyncio

    from worker.config import KafkaSettings
    from worker.topic_io import print_responses

    if config:
        cfg = load_or_exit(config)
        kafka = cfg.kafka
        if destination:
            topic = cfg.destination(destination).response_webhook.topic
    else:
        kafka = KafkaSettings(bootstrap_servers=bootstrap)
    asyncio.run(print_responses(kafka, topic, destination, follow, limit, raw))


def _command(config: Path, name: str, active: bool) -> None:
    import asyncio

    from worker.control import send_command

    cfg = load_or_exit(config)
    try:
        cfg.destination(name)
    except KeyError as exc:
        fail([str(exc.args[0])])
    asyncio.run(send_command(cfg.kafka, name, active))
    typer.echo(f"{name}: {'activated' if active else 'paused'} on every replica (via {cfg.kafka.control_topic})")


@app.command()
def activate(name: Annotated[str, typer.Argument(help="Destination name.")], config: ConfigOption) -> None:
    """Start sending a destination's records (every replica, no restart; resumes at the committed offset)."""
    _command(config, name, True)


@app.command()
def pause(name: Annotated[str, typer.Argument(help="Destination name.")], config: ConfigOption) -> None:
    """Stop consuming a destination's topics on every replica (nothing is read and dropped)."""
    _command(config, name, False)


@app.command()
def status(config: ConfigOption) -> None:
    """Show each destination's state: saved config, control-topic word, and the effective state."""
    import asyncio

    from worker.control import read_commands

    cfg = load_or_exit(config)
    words = asyncio.run(read_commands(cfg.kafka))
    for dest in cfg.destinations:
        word = words.get(dest.name)
        effective = dest.active if word is None else word
        source = "config" if word is None else "control topic"
        typer.echo(f"{dest.name}: {'active' if effective else 'paused'} (from {source})")


@app.command()
def replay(
    config: ConfigOption,
    destination: Annotated[str, typer.Option("--destination", "-d", help="Destination whose dead letters to replay.")],
    stage: Annotated[
        list[str] | None, typer.Option(help="Stages to replay: deliver, render, decode (default: deliver, render).")
    ] = None,
    to_topic: Annotated[str | None, typer.Option(help="Republish here instead of the first source topic.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only report what would be replayed.")] = False,
    limit: Annotated[int | None, typer.Option(help="Replay at most this many records.")] = None,
    include_undecodable: Annotated[
        bool, typer.Option(help="Also republish raw bytes that were not records (decode stage).")
    ] = False,
    from_beginning: Annotated[
        bool, typer.Option(help="Ignore earlier replays' progress and scan the whole dead-letter topic.")
    ] = False,
) -> None:
    """Re-send dead-lettered records to the destination after a fix (republished to its source topic)."""
    import asyncio

    from worker.replay import replay as run_replay

    cfg = load_or_exit(config)
    try:
        dest = cfg.destination(destination)
    except KeyError as exc:
        fail([str(exc.args[0])])
        raise
    stages = set(stage or ["deliver", "render"])
    unknown = stages - {"deliver", "render", "decode"}
    if unknown:
        fail([f"--stage: unknown stage(s) {', '.join(sorted(unknown))}; use deliver, render or decode"])
    report = asyncio.run(run_replay(cfg, dest, stages, to_topic, dry_run, limit, include_undecodable, from_beginning))
    verb = "would replay" if dry_run else "replayed"
    typer.echo(f"{dest.dead_letter_topic}: scanned {report.scanned} dead letter(s), {verb} {report.replayed} "
               f"record(s) to {to_topic or dest.source_topics[0]}")
    for reason, count in report.by_reason.most_common(10):
        typer.echo(f"  {count:6d}  {reason}")
    for why, count in report.skipped.most_common():
        typer.echo(f"  skipped {count}: {why}")


@app.command("templates")
def templates_command(
    name: Annotated[str | None, typer.Argument(help="A template to show in full.")] = None,
) -> None:
    """List the endpoint templates, or show one: attributes, options, an example record and its exact request."""
    from worker.templates.describe import describe_template, template_table

    if name is None:
        for line in template_table():
            typer.echo(line)
        typer.echo("\n`gorgias-worker templates NAME` shows one; use it with endpoint.template: NAME")
        return
    try:
        lines = describe_template(name)
    except ValueError as exc:
        fail([str(exc)])
        raise
    for line in lines:
        typer.echo(line)


def _destination_or_exit(cfg: WorkerConfig, name: str) -> Destination:
    try:
        return cfg.destination(name)
    except KeyError as exc:
        fail([str(exc.args[0])])
        raise


def _json_file(path: Path, what: str) -> object:
    import orjson

    try:
        raw = path.read_bytes()
    except OSError as exc:
        fail([f"{what} {path}: cannot read it ({exc.strerror})"])
        raise
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        lines = [line for line in raw.splitlines() if line.strip()]
        if lines:  # a JSON Lines file: its first record
            try:
                return orjson.loads(lines[0])
            except orjson.JSONDecodeError:
                pass
        fail([f"{what} {path}: not JSON"])
        raise


@app.command("preview")
def preview_command(
    config: ConfigOption,
    destination: Annotated[str, typer.Option("--destination", "-d", help="Destination name.")],
    records: Annotated[Path | None, typer.Option("--records", help="JSON Lines file of records.")] = None,
    from_topic: Annotated[
        bool, typer.Option("--from-topic", help="Read records from the destination's first source topic.")
    ] = False,
    limit: Annotated[int, typer.Option(help="With --from-topic: how many of its latest records.")] = 10,
    raw: Annotated[bool, typer.Option("--json", help="Print the requests as JSON.")] = False,
) -> None:
    """Print the exact requests the current settings would send for some records (batching included)."""
    import asyncio

    import orjson

    from worker.preview import PreviewRequest, format_items, preview, read_sample

    cfg = load_or_exit(config)
    dest = _destination_or_exit(cfg, destination)
    values: list[object]
    if records is not None and from_topic:
        fail(["give either --records FILE or --from-topic, not both"])
    if records is not None:
        try:
            values = [line for line in records.read_bytes().splitlines() if line.strip()]
        except OSError as exc:
            fail([f"--records {records}: cannot read it ({exc.strerror})"])
            raise
    elif from_topic:
        if limit < 1:
            fail(["--limit must be at least 1"])
        topic = dest.source_topics[0]
        try:
            values = list(asyncio.run(read_sample(cfg.kafka, topic, limit)))
        except LookupError as exc:
            fail([str(exc)])
            raise
        if not values:
            typer.echo(f"{topic} holds no records", err=True)
    else:
        from worker.endpoint_test import example_record

        example = example_record(dest)
        if example is None:
            fail(["give --records FILE.jsonl or --from-topic (manual endpoints have no example record)"])
        typer.echo("(no --records: the template's example record)", err=True)
        values = [example]
    try:
        items = preview(dest, values, max_record_bytes=cfg.kafka.max_record_bytes)
    except ValueError as exc:
        fail([f"destinations.{dest.name}: {exc}"])
        raise
    if raw:
        typer.echo(orjson.dumps({"destination": dest.name, "items": [i.as_dict() for i in items]}).decode())
        return
    for line in format_items(items):
        typer.echo(line)
    requests = sum(1 for i in items if isinstance(i, PreviewRequest))
    typer.echo(f"{len(values)} record(s) -> {requests} request(s), {len(items) - requests} dead letter(s)")


@app.command("test")
def test_command(
    config: ConfigOption,
    destination: Annotated[str, typer.Option("--destination", "-d", help="Destination name.")],
    payload: Annotated[Path | None, typer.Option("--payload", help="JSON file: the body to send instead.")] = None,
    record: Annotated[Path | None, typer.Option("--record", help="JSON file: the sample record.")] = None,
    raw: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Send one sample request to the configured endpoint (one attempt) and print the answer; exit 1 unless 2xx."""
    import asyncio

    import orjson

    from worker.endpoint_test import EndpointTestError, run_test

    cfg = load_or_exit(config)
    dest = _destination_or_exit(cfg, destination)
    try:
        dest.credential.secret().resolve()
    except LookupError as exc:
        fail([f"destinations.{dest.name}.credential: {exc}"])
    sample = _json_file(record, "--record") if record is not None else None
    body = _json_file(payload, "--payload") if payload is not None else None
    try:
        result = asyncio.run(run_test(dest, sample, body))
    except (EndpointTestError, ValueError) as exc:
        fail([str(exc)])
        raise
    if raw:
        typer.echo(orjson.dumps(result.as_dict()).decode())
    else:
        for line in result.lines():
            typer.echo(line)
    raise typer.Exit(0 if result.ok else 1)


def main() -> None:
    app(prog_name="gorgias-worker")


if __name__ == "__main__":
    main()
