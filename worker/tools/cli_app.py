"""The `gorgias-worker` Typer app and what its commands share: options, one-line errors, loading a config."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from typer._click import Context  # typer vendors click: its errors are these classes, not click's
from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError
from typer.core import TyperGroup

from worker import __version__
from worker.core.config.base import ConfigError
from worker.core.config.kafka import KafkaSettings
from worker.core.config.worker_config import Destination, WorkerConfig
from worker.host.environment import bootstrap_servers, check_secrets
from worker.service.config_loading import load_config

T = TypeVar("T")


class _OneLineUsageError(ClickException):
    """A usage mistake (unknown command or option, missing option, bad value) as one line, exit 1."""

    exit_code = 1

    def __init__(self, error: UsageError) -> None:
        command = error.ctx.command_path if error.ctx is not None else "gorgias-worker"
        super().__init__(f"{error.format_message().rstrip('.')} (see {command} --help)")

    def show(self, file: Any = None) -> None:
        typer.echo(f"error: {self.format_message()}", err=True)


class _Commands(TyperGroup):
    """click's usage errors print the usage, a hint and the error on three lines with exit 2: here they are
    one `error: …` line with exit 1, like every other mistake (bare `gorgias-worker` still shows the help)."""

    def make_context(self, *args: Any, **kwargs: Any) -> Context:
        try:
            return super().make_context(*args, **kwargs)
        except NoArgsIsHelpError:
            raise
        except UsageError as exc:
            raise _OneLineUsageError(exc) from None

    def invoke(self, ctx: Context) -> Any:
        try:
            return super().invoke(ctx)
        except NoArgsIsHelpError:
            raise
        except UsageError as exc:
            raise _OneLineUsageError(exc) from None


app = typer.Typer(
    cls=_Commands,
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


def kafka_call(kafka: KafkaSettings, work: Coroutine[Any, Any, T], quiet: bool = False) -> T:
    """Run a coroutine that talks to Kafka; a broker that cannot be reached, a Kafka secret that cannot be
    read, TLS that does not work or a refused login (checked first) is one error line naming the setting,
    exit 1 (with
    ``quiet``, :class:`_KafkaUnavailable` instead)."""
    import logging

    from aiokafka.errors import KafkaConnectionError, KafkaError, KafkaTimeoutError

    from worker.host.environment import check_refs, kafka_secret_refs
    from worker.host.tls import tls_problems
    from worker.kafka.clients import check_access
    from worker.kafka.tls_check import KafkaAccessError

    def give_up(lines: list[str]) -> NoReturn:
        if quiet:
            raise _KafkaUnavailable("; ".join(lines)) from None
        fail(lines)

    problems = check_refs(kafka_secret_refs(kafka)) + tls_problems(kafka)
    if problems:
        work.close()
        give_up(problems)

    async def checked() -> T:
        try:
            await check_access(kafka)
        except BaseException:
            work.close()
            raise
        return await work

    client_log = logging.getLogger("aiokafka")
    level = client_log.level
    client_log.setLevel(logging.CRITICAL)  # its connection errors would print around our one line
    try:
        return asyncio.run(checked())
    except KafkaAccessError as exc:
        give_up([str(exc)])
    except BrokenPipeError:
        raise  # our own stdout was closed (`| head`): click ends quietly with exit 1
    except (TimeoutError, KafkaError, OSError) as exc:
        detail = str(exc) or type(exc).__name__
        unreachable = isinstance(exc, TimeoutError | OSError | KafkaConnectionError | KafkaTimeoutError)
        hint = " (is the broker running and reachable?)" if unreachable else ""
        give_up([f"Kafka at {bootstrap_servers(kafka)}: {detail}{hint}"])
    finally:
        client_log.setLevel(level)


def kafka_answer(kafka: KafkaSettings, work: Coroutine[Any, Any, T]) -> tuple[T | None, str | None]:
    """Run a coroutine that talks to Kafka: its result, or None and why Kafka could not answer (no line printed)."""
    try:
        return kafka_call(kafka, work, quiet=True), None
    except _KafkaUnavailable as exc:
        return None, str(exc)


class _KafkaUnavailable(Exception):
    """Kafka could not answer a command (raised instead of the error line by ``kafka_call(quiet=True)``)."""


def load_or_exit(path: Path, secrets: bool = False, overrides: list[str] | None = None) -> WorkerConfig:
    try:
        config = load_config(path, overrides or ())
    except ConfigError as exc:
        fail(exc.problems)
    from worker.core.templates import check_templates

    problems = check_templates(config)
    if secrets:
        from worker.host.tls import tls_problems

        problems += check_secrets(config) + tls_problems(config.kafka)
    if problems:
        fail(problems)
    return config



def destination_or_exit(cfg: WorkerConfig, name: str) -> Destination:
    try:
        return cfg.destination(name)
    except KeyError as exc:
        fail([str(exc.args[0])])


def json_file(path: Path, what: str) -> object:
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

