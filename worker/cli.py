"""The `gorgias-worker` command line."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from pydantic import ValidationError

from worker.config import ConfigError, Destination, KafkaSettings, WorkerConfig
from worker.config_loading import load_config
from worker.environment import bootstrap_servers, check_secrets, known_secret_values, resolve_secret

T = TypeVar("T")

app = typer.Typer(
    help="Kafka to Gorgias destination worker: validate configs, run the worker, try things locally.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: no emoji codes, no <bool>, nothing cut at 80 columns
    context_settings={"max_content_width": 100},
)

ConfigOption = Annotated[Path, typer.Option("--config", "-c", help="Destinations file (YAML or JSON).")]
SetOption = Annotated[
    list[str] | None,
    typer.Option("--set", metavar="PATH=VALUE",
                 help="Override a setting, e.g. worker.web_port=7000 or destinations.NAME.active=false (repeatable)."),
]
LOG_LEVELS = ("debug", "info", "warning", "error")


def package_version() -> str:
    try:
        return version("nexset-gorgias-worker")
    except PackageNotFoundError:
        from worker import __version__

        return __version__


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"gorgias-worker {package_version()}")
        raise typer.Exit(0)


@app.callback()
def main_options(
    show_version: Annotated[
        bool, typer.Option("--version", callback=_show_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Kafka to Gorgias destination worker: validate configs, run the worker, try things locally."""


def fail(lines: list[str], code: int = 1) -> NoReturn:
    for line in lines:
        typer.echo(f"error: {line}", err=True)
    raise typer.Exit(code)


def kafka_call(kafka: KafkaSettings, work: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that talks to Kafka; a broker that cannot be reached is one error line, exit 1."""
    import logging

    from aiokafka.errors import KafkaConnectionError, KafkaError, KafkaTimeoutError

    client_log = logging.getLogger("aiokafka")
    level = client_log.level
    client_log.setLevel(logging.CRITICAL)  # its connection errors would print around our one line
    try:
        return asyncio.run(work)
    except (TimeoutError, KafkaError, OSError) as exc:
        detail = str(exc) or type(exc).__name__
        unreachable = isinstance(exc, TimeoutError | OSError | KafkaConnectionError | KafkaTimeoutError)
        hint = " (is the broker running and reachable?)" if unreachable else ""
        fail([f"Kafka at {bootstrap_servers(kafka)}: {detail}{hint}"])
    finally:
        client_log.setLevel(level)


def load_or_exit(path: Path, secrets: bool = False, overrides: list[str] | None = None) -> WorkerConfig:
    try:
        config = load_config(path, overrides or ())
    except ConfigError as exc:
        fail(exc.problems)
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


@app.command(short_help="Check a config; summary per destination or every error.")
def validate(
    config: ConfigOption,
    secrets: Annotated[bool, typer.Option(help="Also check that every secret can be read now.")] = True,
    overrides: SetOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print {ok, errors, warnings} as JSON.")] = False,
) -> None:
    """Check a destinations file and print a summary of each destination (exit 1 on any error)."""
    if as_json:
        import orjson

        from worker.templates import check_templates

        try:
            checked = load_config(config, overrides or ())
            problems = check_templates(checked) + (check_secrets(checked) if secrets else [])
            warnings = checked.warnings()
        except ConfigError as exc:
            problems, warnings = exc.problems, []
        typer.echo(orjson.dumps({"ok": not problems, "errors": problems, "warnings": warnings}).decode())
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

    from worker.effective_config import effective_document

    cfg = load_or_exit(config, overrides=overrides)
    typer.echo(yaml.safe_dump(effective_document(cfg, known_secret_values(cfg)), sort_keys=False, width=100).rstrip())


@app.command(short_help="Check (or --write) the JSON Schemas in schemas/.")
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


@app.command(short_help="Run the worker until SIGTERM.")
def run(
    config: ConfigOption,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "",
    overrides: SetOption = None,
) -> None:
    """Run the worker: consume every active destination's topics and deliver to Gorgias until SIGTERM."""
    if log_level and log_level.lower() not in LOG_LEVELS:
        fail([f"--log-level {log_level}: use one of {', '.join(LOG_LEVELS)}"])
    cfg = load_or_exit(config, secrets=True, overrides=overrides)
    for warning in cfg.warnings():
        typer.echo(f"warning: {warning}", err=True)
    from worker.logs import register_secret
    from worker.pipeline.app import run as run_worker

    for dest in cfg.destinations:
        register_secret(resolve_secret(dest.credential.secret()).get_secret_value())
    for ref in (cfg.kafka.sasl_password(), cfg.worker.control_token()):
        if ref is not None:
            register_secret(resolve_secret(ref).get_secret_value())
    run_worker(cfg, log_level.lower() or cfg.worker.log_level)


@app.command(short_help="Run the local Gorgias sandbox.")
def sandbox(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (0 picks a free one).")] = 8080,
    rate_limit: Annotated[str, typer.Option(help="API-key budget like 40/20s, or off.")] = "40/20s",
    faults: Annotated[str | None, typer.Option(help="Fault spec (see docs/sandbox.md).")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed for reproducible faults.")] = None,
    account: Annotated[
        list[str] | None,
        typer.Option(metavar="SPEC", help="domain:email:apikey[:role]; repeatable. Default: acme."),
    ] = None,
) -> None:
    """Run the local Gorgias sandbox (a faithful fake Gorgias API) for tests, demos and benchmarks."""
    from gorgias_sandbox.server import serve

    try:
        serve(host=host, port=port, rate_limit=rate_limit, faults=faults, seed=seed, accounts=account or None)
    except ValidationError as exc:  # the sandbox's settings model: name the option
        fail(["; ".join(
            f"--{str(e['loc'][0]).replace('_', '-') if e['loc'] else 'sandbox'}: "
            + e["msg"].removeprefix("Value error, ")
            for e in exc.errors(include_url=False)
        )])
    except ValueError as exc:
        fail([f"sandbox: {exc}"])
    except OSError as exc:
        fail([f"sandbox: cannot listen on {host}:{port} ({exc.strerror or exc}); choose another --port"])


@app.command(short_help="Publish records from a JSON Lines file to a topic.")
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
    overrides: SetOption = None,
) -> None:
    """Publish records from a JSON Lines file to a topic, with a progress bar."""
    from worker.topic_io import produce_file

    if not file.is_file():
        fail([f"{file}: no such file (give a JSON Lines file, one record per line)"])
    kafka = load_or_exit(config, overrides=overrides).kafka if config else KafkaSettings(bootstrap_servers=bootstrap)
    sent, bad = kafka_call(kafka, produce_file(kafka, topic, file, key_attribute))
    typer.echo(f"published {sent} record(s) to {topic}" + (f"; skipped {bad} line(s) that are not JSON" if bad else ""))


@app.command(short_help="Print response events from the response topics.")
def responses(
    destination: Annotated[str | None, typer.Option(help="Only this destination's events.")] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new events.")] = False,
    topic: Annotated[
        str | None, typer.Option(help="Response topic (default: the config's, else gorgias.responses).")
    ] = None,
    bootstrap: Annotated[str, typer.Option(envvar="KAFKA_BOOTSTRAP_SERVERS", help="Kafka bootstrap.")] = (
        "localhost:9092"
    ),
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="Take Kafka settings and topic from here.")
    ] = None,
    limit: Annotated[int | None, typer.Option(help="Stop after this many events.")] = None,
    raw: Annotated[bool, typer.Option("--json", help="Print each event as one JSON line.")] = False,
    overrides: SetOption = None,
) -> None:
    """Print response events as they arrive (one line per API call, or full JSON with --json)."""
    from worker.topic_io import TopicMissing, print_responses

    if limit is not None and limit < 1:
        fail(["--limit must be at least 1"])
    topics = [topic] if topic else []
    if config:
        cfg = load_or_exit(config, overrides=overrides)
        kafka = cfg.kafka
        chosen = [_destination_or_exit(cfg, destination)] if destination else cfg.destinations
        if not topics:
            topics = sorted({d.response_webhook.topic for d in chosen if d.response_webhook.enabled})
            if not topics:
                fail([f"{config}: no destination{' ' + destination if destination else ''} has response_webhook "
                      "enabled, so there is no response topic to read"])
    else:
        kafka = KafkaSettings(bootstrap_servers=bootstrap)
        topics = topics or ["gorgias.responses"]
    try:
        kafka_call(kafka, print_responses(kafka, topics, destination, follow, limit, raw))
    except TopicMissing as exc:
        fail([str(exc)])


def _command(config: Path, name: str, active: bool, overrides: list[str] | None) -> None:
    from worker.control import send_command

    cfg = load_or_exit(config, overrides=overrides)
    _destination_or_exit(cfg, name)
    kafka_call(cfg.kafka, send_command(cfg.kafka, name, active))
    typer.echo(f"{name}: {'activated' if active else 'paused'} on every replica (via {cfg.kafka.control_topic})")


@app.command(short_help="Activate a destination on every replica.")
def activate(
    name: Annotated[str, typer.Argument(help="Destination name.")], config: ConfigOption, overrides: SetOption = None
) -> None:
    """Start sending a destination's records (every replica, no restart; resumes at the committed offset)."""
    _command(config, name, True, overrides)


@app.command(short_help="Pause a destination on every replica.")
def pause(
    name: Annotated[str, typer.Argument(help="Destination name.")], config: ConfigOption, overrides: SetOption = None
) -> None:
    """Stop consuming a destination's topics on every replica (nothing is read and dropped)."""
    _command(config, name, False, overrides)


@app.command(short_help="Is each destination healthy? State, lag, counters, budget.")
def status(
    config: ConfigOption,
    worker: Annotated[
        str | None,
        typer.Option("--worker", metavar="URL",
                     help="Control API of a running worker for its counters (default: http://127.0.0.1:<web_port>)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    overrides: SetOption = None,
) -> None:
    """Is each destination healthy? State, offsets and lag per partition, and a running worker's counters."""
    import orjson

    from worker.config import is_loopback
    from worker.status_report import fetch_worker, format_report, kafka_view, merge

    cfg = load_or_exit(config, overrides=overrides)
    view = kafka_call(cfg.kafka, kafka_view(cfg))
    local = is_loopback(cfg.worker.web_host) or cfg.worker.web_host in ("0.0.0.0", "::")  # reachable from here
    url = worker or (f"http://127.0.0.1:{cfg.worker.web_port}" if local else None)
    live, note = fetch_worker(url) if url else (None, "not asked")
    report = merge(view, live)
    report["worker_note"] = note or None
    if as_json:
        typer.echo(orjson.dumps(report).decode())
        return
    for line in format_report(report):
        typer.echo(line)


@app.command(short_help="Re-send dead-lettered records after a fix.")
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
        bool, typer.Option("--include-undecodable", help="Also republish raw bytes that were not records (decode).")
    ] = False,
    from_beginning: Annotated[
        bool, typer.Option("--from-beginning", help="Ignore earlier replays' progress; scan the whole topic.")
    ] = False,
    overrides: SetOption = None,
) -> None:
    """Re-send dead-lettered records to the destination after a fix (republished to its source topic)."""
    from worker.replay import replay as run_replay

    cfg = load_or_exit(config, overrides=overrides)
    dest = _destination_or_exit(cfg, destination)
    stages = set(stage or ["deliver", "render"])
    unknown = stages - {"deliver", "render", "decode"}
    if unknown:
        fail([f"--stage: unknown stage(s) {', '.join(sorted(unknown))}; use deliver, render or decode"])
    report = kafka_call(
        cfg.kafka, run_replay(cfg, dest, stages, to_topic, dry_run, limit, include_undecodable, from_beginning)
    )
    verb = "would replay" if dry_run else "replayed"
    typer.echo(f"{dest.dead_letter_topic}: scanned {report.scanned} dead letter(s), {verb} {report.replayed} "
               f"record(s) to {to_topic or dest.source_topics[0]}")
    for reason, count in report.by_reason.most_common(10):
        typer.echo(f"  {count:6d}  {reason}")
    for why, count in report.skipped.most_common():
        typer.echo(f"  skipped {count}: {why}")


@app.command("templates", short_help="List the endpoint templates, or show one.")
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
    for line in lines:
        typer.echo(line)


def _destination_or_exit(cfg: WorkerConfig, name: str) -> Destination:
    try:
        return cfg.destination(name)
    except KeyError as exc:
        fail([str(exc.args[0])])


def _json_file(path: Path, what: str) -> object:
    import orjson

    try:
        raw = path.read_bytes()
    except OSError as exc:
        fail([f"{what} {path}: cannot read it ({exc.strerror})"])
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


@app.command("preview", short_help="Print the exact requests some records would make.")
def preview_command(
    config: ConfigOption,
    destination: Annotated[str, typer.Option("--destination", "-d", help="Destination name.")],
    records: Annotated[Path | None, typer.Option("--records", help="JSON Lines file of records.")] = None,
    from_topic: Annotated[
        bool, typer.Option("--from-topic", help="Read records from the destination's first source topic.")
    ] = False,
    limit: Annotated[int, typer.Option(help="With --from-topic: how many of its latest records.")] = 10,
    raw: Annotated[bool, typer.Option("--json", help="Print the requests as JSON.")] = False,
    overrides: SetOption = None,
) -> None:
    """Print the exact requests the current settings would send for some records (batching included)."""
    import orjson

    from worker.preview import PreviewRequest, format_items, preview, read_sample

    cfg = load_or_exit(config, overrides=overrides)
    dest = _destination_or_exit(cfg, destination)
    values: list[object]
    if records is not None and from_topic:
        fail(["give either --records FILE or --from-topic, not both"])
    if records is not None:
        try:
            values = [line for line in records.read_bytes().splitlines() if line.strip()]
        except OSError as exc:
            fail([f"--records {records}: cannot read it ({exc.strerror})"])
    elif from_topic:
        if limit < 1:
            fail(["--limit must be at least 1"])
        topic = dest.source_topics[0]
        try:
            values = list(kafka_call(cfg.kafka, read_sample(cfg.kafka, topic, limit)))
        except LookupError as exc:
            fail([str(exc)])
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
    if raw:
        typer.echo(orjson.dumps({"destination": dest.name, "items": [i.as_dict() for i in items]}).decode())
        return
    for line in format_items(items):
        typer.echo(line)
    requests = sum(1 for i in items if isinstance(i, PreviewRequest))
    typer.echo(f"{len(values)} record(s) -> {requests} request(s), {len(items) - requests} dead letter(s)")


@app.command("test", short_help="Send one sample request and print the answer.")
def test_command(
    config: ConfigOption,
    destination: Annotated[str, typer.Option("--destination", "-d", help="Destination name.")],
    payload: Annotated[Path | None, typer.Option("--payload", help="JSON file: the body to send instead.")] = None,
    record: Annotated[Path | None, typer.Option("--record", help="JSON file: the sample record.")] = None,
    raw: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    overrides: SetOption = None,
) -> None:
    """Send one sample request to the configured endpoint (one attempt) and print the answer; exit 1 unless 2xx."""
    import orjson

    from worker.endpoint_test import EndpointTestError, run_test

    cfg = load_or_exit(config, overrides=overrides)
    dest = _destination_or_exit(cfg, destination)
    try:
        resolve_secret(dest.credential.secret())
    except LookupError as exc:
        fail([f"destinations.{dest.name}.credential: {exc}"])
    sample = _json_file(record, "--record") if record is not None else None
    body = _json_file(payload, "--payload") if payload is not None else None
    try:
        result = asyncio.run(run_test(dest, sample, body))
    except (EndpointTestError, ValueError) as exc:
        fail([str(exc)])
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
