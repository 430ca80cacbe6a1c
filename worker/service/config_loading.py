"""Loading a config: parse the file, expand ``${VAR}`` in its values, apply overrides, validate.

Overrides come from ``--set path=value`` (repeatable) and ``GORGIAS_WORKER__<PATH>`` environment
variables (``__`` separates the path's parts); both go through the same validation as the file, and
every error names where the value came from: ``FILE:LINE``, ``--set ...`` or the variable.

A path is dotted (``worker.web_port``); a list item is chosen by index (``destinations[0]`` or
``destinations.0``) or, for destinations, by name (``destinations.support-tickets.active``). A
value is read as YAML (``5``, ``true``, ``[a, b]``, ``{k: v}``); anything else stays a string.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import yaml
from pydantic import ValidationError

from worker.core.config.base import ConfigError, Problem
from worker.core.config.worker_config import Destination, WorkerConfig, error_location, problem_of

ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
ENV_PREFIX = "GORGIAS_WORKER__"

Loc = tuple[int | str, ...]


@dataclass
class Origins:
    """Where each value came from, by its path in the document: ``file:line``, ``--set ...``, or a variable."""

    by_path: dict[Loc, str] = field(default_factory=dict)

    def of(self, loc: Loc) -> str | None:
        """The origin of the deepest known prefix of ``loc``."""
        for end in range(len(loc), -1, -1):
            found = self.by_path.get(tuple(loc[:end]))
            if found is not None:
                return found
        return None


def expand(text: str, environ: Mapping[str, str], where: str, missing: list[str]) -> str:
    """``${NAME}`` / ``${NAME:-default}`` in one value; unset names without a default go to ``missing``."""

    def sub(match: re.Match[str]) -> str:
        value = environ.get(match.group(1))
        if value is not None:
            return value
        if match.group(2) is not None:
            return match.group(2)
        name = match.group(1)
        missing.append(f"{where}: environment variable {name} is referenced as ${{{name}}} but not set "
                       f"(export it, or write ${{{name}:-default}})")
        return ""

    return ENV_REFERENCE.sub(sub, text) if "${" in text else text


def _yaml_document(text: str, source: str, environ: Mapping[str, str]) -> tuple[Any, Origins]:
    """The YAML document with ``${VAR}`` expanded in its string values (never comments), and each value's line."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise ConfigError([f"{source}: not valid YAML: {exc}"]) from None
    origins = Origins()
    missing: list[str] = []
    constructor = yaml.SafeLoader("")

    def build(node: yaml.Node, loc: Loc) -> Any:
        origins.by_path[loc] = f"{source}:{node.start_mark.line + 1}"
        if isinstance(node, yaml.MappingNode):
            constructor.flatten_mapping(node)
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key = constructor.construct_object(key_node, deep=True)
                out[key] = build(value_node, (*loc, key))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [build(item, (*loc, i)) for i, item in enumerate(node.value)]
        value = constructor.construct_object(node, deep=True)
        if isinstance(value, str):
            return expand(value, environ, origins.by_path[loc], missing)
        return value

    data = None if root is None else build(root, ())
    if missing:
        raise ConfigError(list(dict.fromkeys(missing)))
    return data, origins


def _json_document(text: str, source: str, environ: Mapping[str, str]) -> tuple[Any, Origins]:
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ConfigError([f"{source}: not valid JSON: {exc}"]) from None
    missing: list[str] = []

    def walk(value: Any, loc: Loc) -> Any:
        if isinstance(value, dict):
            return {k: walk(v, (*loc, k)) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, (*loc, i)) for i, v in enumerate(value)]
        if isinstance(value, str):
            return expand(value, environ, f"{source} at {error_location(loc)}", missing)
        return value

    data = walk(data, ())
    if missing:
        raise ConfigError(list(dict.fromkeys(missing)))
    return data, Origins({(): source})


# --------------------------------------------------------------------------------------------------
# Overrides


def split_path(path: str) -> list[str]:
    """``destinations[0].batching.batch_size`` -> ``["destinations", "0", "batching", "batch_size"]``."""
    parts = [p for p in re.split(r"\.|\[|\]", path.strip()) if p != ""]
    if not parts:
        raise ValueError("the path is empty")
    return parts


def _normalised(name: str) -> str:
    return re.sub(r"[-.]", "_", name.lower())


def _list_index(items: list[Any], part: str, where: str) -> int:
    if part.isdigit():
        index = int(part)
        if index < len(items):
            return index
        if index == len(items):
            items.append({})
            return index
        raise ValueError(f"{where}: index {index} is past the end (the list has {len(items)} item(s))")
    for i, item in enumerate(items):
        if isinstance(item, dict) and _normalised(str(item.get("name", ""))) == _normalised(part):
            return i
    names = [str(item.get("name")) for item in items if isinstance(item, dict)]
    raise ValueError(f"{where}: no list item named {part!r} (known: {', '.join(names) or 'none'})")


def apply_override(data: dict[str, Any], path: str, value: Any, origin: str, origins: Origins) -> None:
    """Set ``path`` to ``value`` inside ``data`` (creating mappings on the way)."""
    parts = split_path(path)
    node: Any = data
    loc: list[int | str] = []
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        where = f"{origin}: {'.'.join(parts[: i + 1])}"
        if isinstance(node, list):
            index = _list_index(node, part, where)
            loc.append(index)
            if last:
                node[index] = value
            else:
                node = node[index]
            continue
        if not isinstance(node, dict):
            raise ValueError(f"{where}: {'.'.join(parts[:i])} is not a mapping or a list")
        key = part if part in node else next((k for k in node if _normalised(str(k)) == _normalised(part)), part)
        loc.append(key)
        if last:
            node[key] = value
        else:
            if not isinstance(node.get(key), dict | list):
                node[key] = [] if parts[i + 1].isdigit() else {}
                origins.by_path[tuple(loc)] = origin  # made by the override: a problem here is the override's
            node = node[key]
    origins.by_path[tuple(loc)] = origin


def destination_setting_problem(path: str, data: dict[str, Any], origin: str) -> str | None:
    """A problem when ``path`` names a destination's setting at the top level (``delivery.max_in_flight``),
    saying how to set it on a destination; None otherwise."""
    first = _normalised(split_path(path)[0])
    worker_level = {_normalised(name) for name in WorkerConfig.model_fields}
    if first in worker_level or first not in {_normalised(name) for name in Destination.model_fields}:
        return None
    names = [str(d.get("name")) for d in data.get("destinations") or () if isinstance(d, dict) and d.get("name")]
    example = names[0] if names else "<name>"
    known = f" (destinations: {', '.join(names)})" if names else ""
    return (f"{origin}: {split_path(path)[0]} is a setting of each destination: set it on one, e.g. "
            f"destinations.{example}.{path}{known}")


def parse_value(text: str) -> Any:
    """A value as YAML would read it (numbers, booleans, lists, mappings); otherwise the text itself."""
    try:
        return yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError:
        return text


def env_overrides(environ: Mapping[str, str]) -> list[tuple[str, str, str]]:
    """``(path, value, origin)`` for each ``GORGIAS_WORKER__A__B=value`` variable, in name order."""
    out = []
    for name in sorted(environ):
        if name.startswith(ENV_PREFIX) and len(name) > len(ENV_PREFIX):
            path = ".".join(p.lower() for p in name[len(ENV_PREFIX):].split("__") if p)
            out.append((path, environ[name], f"environment variable {name}"))
    return out


def set_overrides(settings: Iterable[str]) -> list[tuple[str, str, str]]:
    """``(path, value, origin)`` for each ``--set path=value``."""
    out = []
    for item in settings:
        path, sep, value = item.partition("=")
        if not sep or not path.strip():
            raise ConfigError([f"--set {item}: write it as path=value, e.g. --set worker.web_port=7000"])
        out.append((path.strip(), value, f"--set {path.strip()}"))
    return out


# --------------------------------------------------------------------------------------------------
# Whole config


def parse_text(
    text: str,
    source: str,
    overrides: Iterable[str] = (),
    environ: Mapping[str, str] | None = None,
    json: bool = False,
) -> WorkerConfig:
    """Validate a config document (YAML, or JSON with ``json``), with env and ``--set`` overrides applied."""
    env = os.environ if environ is None else environ
    data, origins = (_json_document if json else _yaml_document)(text, source, env)
    if not isinstance(data, dict):
        raise ConfigError([f"{source}: the top level must be a mapping with `destinations:`"])
    problems: list[str] = []
    for path, raw, origin in [*env_overrides(env), *set_overrides(overrides)]:
        misplaced = destination_setting_problem(path, data, origin)
        if misplaced is not None:
            problems.append(misplaced)
            continue
        try:
            apply_override(data, path, parse_value(raw), origin, origins)
        except ValueError as exc:
            problems.append(str(exc))
    if problems:
        raise ConfigError(problems)
    try:
        return WorkerConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(located_errors(exc, origins)) from None


def located_errors(exc: ValidationError, origins: Origins) -> list[Problem]:
    """One problem per error: the setting, what to do, and where the value came from."""
    problems = []
    for err in exc.errors(include_url=False):
        loc = tuple(p for p in err["loc"] if not str(p).startswith(("function-", "union[")))
        problems.append(problem_of(err, origins.of(loc)))
    return problems


def load_config(
    path: str | Path, overrides: Iterable[str] = (), environ: Mapping[str, str] | None = None
) -> WorkerConfig:
    """Read a YAML or JSON config file, expand ``${VAR}`` in its values, apply overrides and validate it."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{p}: cannot read the config file ({exc.strerror})"]) from None
    return parse_text(text, str(p), overrides, environ, json=p.suffix == ".json")
