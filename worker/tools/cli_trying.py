"""Commands to try a destination before it runs: `templates`, `preview`, `test`."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from worker.host.environment import resolve_secret

if TYPE_CHECKING:
    from worker.core.chain.preview import PreviewRequest
    from worker.core.config.worker_config import Destination
    from worker.gorgias.endpoint_trial import EndpointTestResult
from worker.tools.cli_app import (
    ConfigOption,
    SetOption,
    app,
    destination_or_exit,
    fail,
    json_file,
    kafka_call,
    load_or_exit,
)


@app.command("templates", short_help="List the endpoint templates, or show one.")
def templates_command(
    name: Annotated[str | None, typer.Argument(help="A template to show in full.")] = None,
    raw: Annotated[bool, typer.Option("--json", help="Print the catalog (or one template) as JSON.")] = False,
) -> None:
    """List the endpoint templates, or show one: attributes, options, an example record and its exact request."""
    from worker.tools.catalog import describe_template, template_table

    if raw:
        import orjson

        from worker.core.chain.template_guide import guide, template_guide

        try:
            doc = guide() if name is None else template_guide(name)
        except ValueError as exc:
            fail([str(exc)])
        typer.echo(orjson.dumps(doc).decode())
        return
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



@app.command("preview", short_help="Print the exact requests some records would make.")
# complexity: a CLI command: records from a file, a topic or the example, each with its error line
def preview_command(  # noqa: C901
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

    from worker.core.chain.preview import PreviewRequest, format_items, preview
    from worker.kafka.topic_sample import read_sample

    cfg = load_or_exit(config, overrides=overrides)
    dest = destination_or_exit(cfg, destination)
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
        from worker.gorgias.endpoint_trial import example_record

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
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Send without asking (it still says what it does).")] = False,
    raw: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    overrides: SetOption = None,
) -> None:
    """Say what one sample request will create or change and whom it would email, ask to confirm (or
    --yes), send it once (no retry) and print the answer; exit 1 unless 2xx."""
    import orjson

    from worker.gorgias.endpoint_trial import EndpointTestError, plan_test

    cfg = load_or_exit(config, overrides=overrides)
    dest = destination_or_exit(cfg, destination)
    try:
        resolve_secret(dest.credential.secret())
    except LookupError as exc:
        fail([f"destinations.{dest.name}.credential: {exc}"])
    sample_record = json_file(record, "--record") if record is not None else None
    body = json_file(payload, "--payload") if payload is not None else None
    try:
        sample, effect = plan_test(dest, sample_record, body)
    except (EndpointTestError, ValueError) as exc:
        fail([str(exc)])
    for line in effect.lines():
        typer.echo(line, err=True)
    if not yes:
        if not interactive():
            fail(["test sends a real request: run it on a terminal to confirm, or add --yes"])
        if not typer.confirm("Send it?", default=False, err=True):
            fail(["not sent"])
    result = asyncio.run(_send(dest, sample))
    if raw:
        typer.echo(orjson.dumps({**result.as_dict(), "effect": effect.as_dict()}).decode())
    else:
        for line in result.lines():
            typer.echo(line)
    raise typer.Exit(0 if result.ok else 1)


def interactive() -> bool:
    """Can we ask the person running the command (stdin is a terminal)?"""
    return sys.stdin.isatty()


async def _send(dest: Destination, sample: PreviewRequest) -> EndpointTestResult:
    from worker.gorgias.delivery import DeliveryService
    from worker.gorgias.endpoint_trial import send_test

    async with DeliveryService() as delivery:
        return await send_test(dest, delivery, sample)
