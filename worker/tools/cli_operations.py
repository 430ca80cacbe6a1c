"""Commands that run or operate the worker on Kafka: `run`, `sandbox`, `produce`, `responses`, `activate`,
`pause`, `status`, `replay`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from worker.core.config.deployment import Store
from worker.core.config.kafka import KafkaSettings
from worker.core.config.worker_config import WorkerConfig
from worker.host.environment import resolve_secret
from worker.tools.cli_app import (
    LOG_LEVELS,
    ConfigOption,
    SetOption,
    app,
    destination_or_exit,
    fail,
    kafka_answer,
    kafka_call,
    load_or_exit,
)


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
    from worker.host.logs import register_secret
    from worker.service.app import run as run_worker

    for dest in cfg.destinations:
        register_secret(resolve_secret(dest.credential.secret()).get_secret_value())
    for ref in (cfg.kafka.sasl_password(), cfg.kafka.ssl_key_password(), cfg.worker.control_token()):
        if ref is not None:
            register_secret(resolve_secret(ref).get_secret_value())
    run_worker(cfg, log_level.lower() or cfg.worker.log_level, str(config))


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
    job_duration_s: Annotated[float, typer.Option(help="Seconds a ticket job runs before it ends.")] = 2.0,
) -> None:
    """Run the local Gorgias sandbox (a faithful fake Gorgias API) for tests, demos and benchmarks."""
    from gorgias_sandbox.server import serve

    try:
        serve(host=host, port=port, rate_limit=rate_limit, faults=faults, seed=seed, accounts=account or None,
              job_duration_s=job_duration_s)
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
    from worker.tools.topic_io import produce_file

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
    from worker.tools.topic_io import TopicMissing, print_responses

    if limit is not None and limit < 1:
        fail(["--limit must be at least 1"])
    topics = [topic] if topic else []
    if config:
        cfg = load_or_exit(config, overrides=overrides)
        kafka = cfg.kafka
        chosen = [destination_or_exit(cfg, destination)] if destination else cfg.destinations
        if not topics:
            topics = sorted({d.response_webhook.topic for d in chosen if d.response_webhook.enabled})
            if not topics:
                fail([f"{config}: no destination{' ' + destination if destination else ''} has response_webhook "
                      "enabled, so there is no response topic to read"])
    else:
        kafka = KafkaSettings(bootstrap_servers=bootstrap)
        topics = topics or ["gorgias.responses"]
    try:
        printed = kafka_call(kafka, print_responses(kafka, topics, destination, follow, limit, raw))
    except TopicMissing as exc:
        fail([str(exc)])
    if not printed:  # on stderr: stdout stays what scripts parse
        whose = f" of {destination}" if destination else ""
        typer.echo(f"no response events{whose} on {', '.join(topics)} yet", err=True)


async def _saved_names(cfg: WorkerConfig) -> list[str]:
    from worker.service.saved_destinations import opened

    async with opened(cfg) as saved:
        return saved.names()


def _command(config: Path, name: str, active: bool, overrides: list[str] | None) -> None:
    from worker.kafka.control import send_command

    cfg = load_or_exit(config, overrides=overrides)
    if all(d.name != name for d in cfg.destinations):
        saved, trouble = kafka_answer(cfg.kafka, _saved_names(cfg))
        if saved is None or name not in saved:
            try:
                cfg.destination(name)
            except KeyError as exc:
                where = f"; the destinations store could not be read ({trouble})" if trouble else (
                    " or in the destinations store")
                fail([f"{exc.args[0]}{where}"])
    kafka_call(cfg.kafka, send_command(cfg.kafka, name, active))
    done = "activated" if active else "paused"
    typer.echo(f"{name}: {done} on every replica of deployment {cfg.kafka.scope.name} "
               f"(via {cfg.kafka.store_topic(Store.CONTROL)})")


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

    from worker.core.config.worker_config import is_loopback
    from worker.tools.status_report import fetch_worker, format_report, kafka_view, merge

    if worker is not None and not worker.startswith(("http://", "https://")):
        fail([f"--worker {worker}: give the control API's URL, e.g. http://127.0.0.1:6066"])
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
    from worker.tools.replay import replay as run_replay

    if limit is not None and limit < 1:
        fail(["--limit must be at least 1"])
    cfg = load_or_exit(config, overrides=overrides)
    dest = destination_or_exit(cfg, destination)
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


