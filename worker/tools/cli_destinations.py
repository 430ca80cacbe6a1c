"""`gorgias-worker destinations list|get|delete|export|apply`: the destinations saved at runtime, read and
written on Kafka directly (the worker's config gives the Kafka settings), mirroring the REST routes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from worker.core.config.worker_config import WorkerConfig
from worker.tools.cli_app import ConfigOption, SetOption, app, fail, kafka_call, load_or_exit

destinations = typer.Typer(
    help="The destinations saved at runtime (the destinations store): list, get, delete, export, apply.",
    no_args_is_help=True,
    rich_markup_mode=None,
    context_settings={"max_content_width": 100},
)
app.add_typer(destinations, name="destinations", short_help="List, apply, export the destinations saved at runtime.")

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _dump_yaml(doc: Any) -> str:
    import yaml

    return str(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))


async def _listing(cfg: WorkerConfig, config: Path) -> list[dict[str, Any]]:
    from worker.kafka.control import read_commands
    from worker.service.saved_destinations import opened

    states = await read_commands(cfg.kafka)
    rows: list[dict[str, Any]] = [
        {"name": d.name, "source": "file", "state": "active" if states.get(d.name, d.active) else "paused"}
        for d in cfg.destinations]
    async with opened(cfg, str(config)) as saved:
        for name in saved.names():
            wanted = saved.wanted(name)
            entry = saved.stored(name)
            row: dict[str, Any] = {"name": name, "source": "store",
                                   "state": "active" if states.get(name, False) else "paused"}
            if entry is not None:
                row.update(entry.describe())
            if isinstance(wanted, str):
                row.update(state="failed", reason=wanted)
            rows.append(row)
    return rows


@destinations.command("list", short_help="List every destination: the file's and the saved ones.")
def list_(config: ConfigOption, raw: JsonOption = False, overrides: SetOption = None) -> None:
    """List every destination with where it comes from (file or store), its state and, when saved, its version."""
    import orjson

    cfg = load_or_exit(config, overrides=overrides)
    rows = kafka_call(cfg.kafka, _listing(cfg, config))
    if raw:
        typer.echo(orjson.dumps(rows).decode())
        return
    for row in rows:
        saved = (f" version {row['version']}, written {row['written_at']} by {row['written_by']}"
                 if "version" in row else "")
        reason = f": {row['reason']}" if "reason" in row else ""
        typer.echo(f"{row['name']}: {row['state']} ({row['source']}{saved}){reason}")


async def _get(cfg: WorkerConfig, config: Path, name: str) -> dict[str, Any] | None:
    from worker.service.saved_destinations import opened

    async with opened(cfg, str(config)) as saved:
        entry = saved.stored(name)
        if entry is not None:
            return {"name": name, "source": "store", **entry.describe(), "config": entry.document}
        if name in saved.store.unreadable:
            fail([f"destination {name!r} is saved but cannot be read: {saved.store.unreadable[name]}"])
    return None


@destinations.command(short_help="Print a destination's config (as saved, or from the file).")
def get(
    name: Annotated[str, typer.Argument(help="Destination name.")], config: ConfigOption, raw: JsonOption = False,
    overrides: SetOption = None,
) -> None:
    """Print a destination's config: the saved one with its version, or the file's."""
    import orjson

    cfg = load_or_exit(config, overrides=overrides)
    found = kafka_call(cfg.kafka, _get(cfg, config, name))
    if found is None:
        file_dest = next((d for d in cfg.destinations if d.name == name), None)
        if file_dest is None:
            fail([f"no destination named {name!r} in {config} or in the destinations store"])
        found = {"name": name, "source": "file", "file": str(config),
                 "config": file_dest.model_dump(mode="json", exclude_none=True)}
    typer.echo(orjson.dumps(found).decode() if raw else _dump_yaml(found).rstrip())


async def _delete(cfg: WorkerConfig, config: Path, name: str, version: int | None, forget: bool) -> str:
    from worker.core.store.writes import PRESENT, Expect, NoSuchEntry, WriteRefused
    from worker.kafka.group_offsets import forget_group
    from worker.service.saved_destinations import FileDefined, opened

    async with opened(cfg, str(config)) as saved:
        wanted = saved.wanted(name)
        try:
            deleted = await saved.delete(name, PRESENT if version is None else Expect(version=version))
        except NoSuchEntry:
            fail([f"no destination named {name!r} is saved (`destinations list` shows them)"])
        except (WriteRefused, FileDefined) as exc:
            fail([f"destination {exc}" if isinstance(exc, WriteRefused) else str(exc)])
    line = f"{name}: deleted (version {deleted}); every replica stops it as on SIGTERM"
    if forget and wanted is not None and not isinstance(wanted, str):
        group = wanted.consumer_group(cfg.kafka.group_id)
        line += f"; offsets of group {group}: {await forget_group(cfg.kafka, group, cfg.worker.shutdown_grace_s + 15)}"
    else:
        line += "; its committed offsets are kept (creating it again resumes)"
    return line


@destinations.command(short_help="Delete a saved destination on every replica.")
def delete(
    name: Annotated[str, typer.Argument(help="Destination name.")], config: ConfigOption,
    if_match: Annotated[int | None, typer.Option("--if-match", help="Only if it is at this version.")] = None,
    forget_offsets: Annotated[bool, typer.Option("--forget-offsets", help="Also drop its group's offsets.")] = False,
    overrides: SetOption = None,
) -> None:
    """Delete a saved destination: every replica stops it as on SIGTERM and leaves its consumer group."""
    cfg = load_or_exit(config, overrides=overrides)
    typer.echo(kafka_call(cfg.kafka, _delete(cfg, config, name, if_match, forget_offsets)))


async def _export(cfg: WorkerConfig, config: Path) -> tuple[dict[str, Any], list[str]]:
    from worker.core.store.destinations import export_document
    from worker.kafka.control import read_commands
    from worker.service.saved_destinations import opened

    states = await read_commands(cfg.kafka)
    async with opened(cfg, str(config)) as saved:
        skipped = [f"{n}: not exported, its stored value cannot be read: {why}"
                   for n, why in sorted(saved.store.unreadable.items())]
        items = [({**e.document, "name": n}, states.get(n)) for n, e in sorted(saved.store.entries.items())]
    return export_document(items, cfg.credentials), skipped


@destinations.command(short_help="Write the saved destinations as a config file (a backup).")
def export(
    config: ConfigOption,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")] = None,
    overrides: SetOption = None,
) -> None:
    """Write the saved destinations (each with its state) as a YAML config file the worker accepts;
    `destinations apply -f FILE` restores them."""
    cfg = load_or_exit(config, overrides=overrides)
    doc, skipped = kafka_call(cfg.kafka, _export(cfg, config))
    for line in skipped:
        typer.echo(f"warning: {line}", err=True)
    text = _dump_yaml(doc)
    if output is None:
        typer.echo(text.rstrip())
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        fail([f"{output}: cannot write it ({exc.strerror})"])
    typer.echo(f"wrote {len(doc['destinations'])} destination(s) to {output}", err=True)


def _items(path: Path) -> list[Any]:
    import yaml

    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        fail([f"{path}: cannot read it ({exc.strerror})"])
    except yaml.YAMLError as exc:
        fail([f"{path}: not valid YAML: {exc}".replace("\n", " ")])
    items = doc.get("destinations") if isinstance(doc, dict) else None
    if not isinstance(items, list):
        fail([f"{path}: give a mapping with a `destinations:` list (as `destinations export` writes)"])
    if "${" in str(items):
        fail([f"{path}: a saved destination keeps its values as written, so `${{VAR}}` would never be expanded: "
              "write the values"])
    return items


async def _apply(cfg: WorkerConfig, config: Path, items: list[Any]) -> list[str]:
    from worker.core.config.base import ConfigError
    from worker.kafka.control import read_commands
    from worker.service.saved_destinations import opened

    states = await read_commands(cfg.kafka)
    async with opened(cfg, str(config)) as saved:
        try:
            return await saved.apply(items, states)
        except ConfigError as exc:
            fail(exc.problems)


@destinations.command(short_help="Create or replace the destinations of a file in the store.")
def apply(
    config: ConfigOption,
    file: Annotated[Path, typer.Option("--file", "-f", help="YAML with a `destinations:` list.")],
    overrides: SetOption = None,
) -> None:
    """Create or replace every destination of FILE in the destinations store (idempotent: one equal to the
    saved one is left alone). A created one starts paused unless the item says `active: true`; `active`
    sets the state of an existing one. Nothing is written when any item is invalid."""
    cfg = load_or_exit(config, overrides=overrides)
    items = _items(file)
    for line in kafka_call(cfg.kafka, _apply(cfg, config, items)):
        typer.echo(line)
