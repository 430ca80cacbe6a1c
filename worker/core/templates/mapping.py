"""Body mapping: how one record becomes a request body, as described by a template's body spec.

A spec (YAML in ``catalog.yaml``) compiles once into a tree of nodes; :meth:`Node.eval` then runs per
record over the transformed record (exclusions applied). A node yields a value or :data:`MISSING`
(nothing to send), so optional fields simply disappear from the body:

* :class:`From` — a record attribute (dotted path; several paths are tried in turn), optionally
  converted (``as``: :mod:`worker.core.templates.converters`), defaulted, or only used in a message
  from a customer / an agent (``when``);
* :class:`Const` — a constant;
* :class:`FirstOf` — the first alternative that yields something;
* :class:`One` — a one-item list (a message, a custom field value);
* :class:`Rest` — the record without some attributes;
* :class:`Obj` — an object of fields, with ``_copy`` (record attributes copied under their name).

Template options rewrite the tree before use (:func:`set_source`, :func:`set_constant`), addressing
fields by body path: ``customer.email``, ``messages[].channel``, ``[].value`` (items of a bare array).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

from worker.core.records.transform import MissingAttribute, get_parts, split_path
from worker.core.templates.converters import CONVERTERS

__all__ = [
    "CONVERTERS",
    "MISSING",
    "Const",
    "FirstOf",
    "From",
    "Node",
    "Obj",
    "One",
    "Rest",
    "compile_spec",
    "parse_body_path",
    "remove_field",
    "set_constant",
    "set_source",
    "sources",
]


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Final[Any] = _Missing()
INTERNAL_NOTE: Final = "internal-note"


# --------------------------------------------------------------------------------------------------
# Nodes


def _incoming(partial: Mapping[str, Any]) -> bool:
    return partial.get("from_agent") is False and partial.get("channel") != INTERNAL_NOTE


def _outgoing(partial: Mapping[str, Any]) -> bool:
    return partial.get("from_agent") is True and partial.get("channel") != INTERNAL_NOTE


CONDITIONS: dict[str, Callable[[Mapping[str, Any]], bool]] = {"incoming": _incoming, "outgoing": _outgoing}


class Node:
    """A piece of a body spec."""

    __slots__ = ()

    def eval(self, record: Mapping[str, Any], partial: Mapping[str, Any]) -> Any:
        """The value for ``record`` (``partial``: the fields of the enclosing object built so far)."""
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class From(Node):
    paths: tuple[str, ...]
    parts: tuple[tuple[str, ...], ...]
    default: Any = MISSING
    convert: str | None = None
    when: str | None = None
    omit_empty: bool = False

    @classmethod
    def of(cls, paths: str | list[str] | tuple[str, ...], **kwargs: Any) -> From:
        names = (paths,) if isinstance(paths, str) else tuple(paths)
        if not names:
            raise ValueError("`from` needs at least one attribute path")
        return cls(names, tuple(split_path(p) for p in names), **kwargs)

    def eval(self, record: Mapping[str, Any], partial: Mapping[str, Any]) -> Any:
        if self.when is not None and not CONDITIONS[self.when](partial):
            return MISSING
        value = MISSING
        for name, parts in zip(self.paths, self.parts, strict=True):
            if len(parts) == 1 and type(record) is dict:  # the common case, without an exception per miss
                value = record.get(name, MISSING)
                if value is not MISSING:
                    break
                continue
            try:
                value = get_parts(record, parts, name)
            except MissingAttribute:
                continue
            break
        if value is MISSING:
            default = self.default
            return copy.deepcopy(default) if isinstance(default, dict | list) else default
        if self.convert is not None:
            value = CONVERTERS[self.convert](value)
        if self.omit_empty and isinstance(value, list) and not value:
            return MISSING
        return value


@dataclass(frozen=True, slots=True)
class Const(Node):
    value: Any

    def eval(self, record: Mapping[str, Any], partial: Mapping[str, Any]) -> Any:
        value = self.value
        return copy.deepcopy(value) if isinstance(value, dict | list) else value


@dataclass(frozen=True, slots=True)
class FirstOf(Node):
    options: tuple[Node, ...]

    def eval(self, record: Mapping[str, Any], partial: Mapping[str, Any]) -> Any:
        for option in self.options:
            value = option.eval(record, partial)
            if value is not MISSING:
                return value
        return MISSING


@dataclass(frozen=True, slots=True)
class One(Node):
    item: Node

    def eval(self, record: Mapping[str, Any], partial: Mapping[str, Any]) -> Any:
        value = self.item.eval(record, {})
        return MISSING if value is MISSING else [value]


@dataclass(frozen=True, slots=True)
class Rest(Node):
    exclude: frozenset[str]

    def eval(self, record: Mapping[str, Any], partial: Mapping[str, Any]) -> Any:
        out = {k: v for k, v in record.items() if k not in self.exclude}
        return out if out else MISSING


@dataclass(frozen=True, slots=True)
class Obj(Node):
    fields: tuple[tuple[str, Node], ...] = ()
    copy: tuple[str, ...] = ()

    def eval(self, record: Mapping[str, Any], partial: Mapping[str, Any]) -> Any:
        out: dict[str, Any] = {}
        for name in self.copy:
            if name in record:
                out[name] = record[name]
        for name, node in self.fields:
            value = node.eval(record, out)
            if value is not MISSING:
                out[name] = value
        return out if out else MISSING

    def child(self, name: str) -> Node | None:
        for key, node in self.fields:
            if key == name:
                return node
        return None

    def with_child(self, name: str, node: Node | None) -> Obj:
        fields = [(k, n) for k, n in self.fields if k != name]
        if node is not None:
            position = next((i for i, (k, _) in enumerate(self.fields) if k == name), len(fields))
            fields.insert(position, (name, node))
        return Obj(tuple(fields), tuple(c for c in self.copy if c != name))


# --------------------------------------------------------------------------------------------------
# Compiling specs

_FROM_KEYS = frozenset({"from", "default", "as", "when", "omit_empty"})


def compile_spec(spec: Any, where: str = "body") -> Node:
    """Compile a YAML body spec; ``ValueError`` naming ``where`` for a malformed one."""
    if isinstance(spec, Mapping):
        if "from" in spec:
            unknown = set(spec) - _FROM_KEYS
            if unknown:
                raise ValueError(f"{where}: unknown key(s) {sorted(unknown)} next to `from`")
            convert = spec.get("as")
            if convert is not None and convert not in CONVERTERS:
                raise ValueError(f"{where}: unknown converter {convert!r} (known: {', '.join(CONVERTERS)})")
            when = spec.get("when")
            if when is not None and when not in CONDITIONS:
                raise ValueError(f"{where}: unknown condition {when!r} (known: {', '.join(CONDITIONS)})")
            return From.of(spec["from"], default=spec.get("default", MISSING), convert=convert, when=when,
                           omit_empty=bool(spec.get("omit_empty", False)))
        if set(spec) == {"value"}:
            return Const(spec["value"])
        if set(spec) == {"first_of"}:
            return FirstOf(tuple(compile_spec(o, f"{where}.first_of[{i}]") for i, o in enumerate(spec["first_of"])))
        if set(spec) == {"one"}:
            return One(compile_spec(spec["one"], f"{where}[]"))
        if set(spec) == {"rest"}:
            return Rest(frozenset(spec["rest"]))
        fields = tuple((str(k), compile_spec(v, f"{where}.{k}")) for k, v in spec.items() if k != "_copy")
        return Obj(fields, tuple(spec.get("_copy", ())))
    return Const(spec)


# --------------------------------------------------------------------------------------------------
# Rewriting specs (template options)


def parse_body_path(path: str) -> list[str]:
    """``messages[].sender.email`` -> ``["messages", "[]", "sender", "email"]``; ``[].value`` too."""
    steps: list[str] = []
    for part in path.split("."):
        if not part:
            raise ValueError(f"{path!r} is not a body path like `customer.email` or `messages[].channel`")
        name, brackets = (part[:-2], True) if part.endswith("[]") else (part, False)
        if name:
            steps.append(name)
        if brackets:
            steps.append("[]")
        if "[" in name or "]" in name:
            raise ValueError(f"{path!r}: write list items as `name[]`, without an index")
    return steps


def _rewrite(node: Node | None, steps: list[str], make: Callable[[Node | None], Node | None]) -> Node | None:
    if not steps:
        return make(node)
    step, rest = steps[0], steps[1:]
    if isinstance(node, FirstOf):
        wanted = One if step == "[]" else Obj
        for i, option in enumerate(node.options):
            if isinstance(option, wanted):
                new = _rewrite(option, steps, make)
                options = list(node.options)
                if new is None:
                    del options[i]
                else:
                    options[i] = new
                return FirstOf(tuple(options)) if options else None
        # no alternative has that shape: the last one becomes it
        return _rewrite(None, steps, make)
    if step == "[]":
        item = node.item if isinstance(node, One) else None
        new_item = _rewrite(item, rest, make)
        return One(new_item) if new_item is not None else None
    parent = node if isinstance(node, Obj) else Obj()
    new_child = _rewrite(parent.child(step), rest, make)
    return parent.with_child(step, new_child)


def _converter_of(node: Node | None) -> tuple[str | None, Any, str | None]:
    """(converter, default, condition) of the first attribute source in ``node``."""
    if isinstance(node, From):
        return node.convert, node.default, node.when
    if isinstance(node, FirstOf):
        for option in node.options:
            if isinstance(option, From):
                return option.convert, option.default, None
    return None, MISSING, None


def set_source(root: Node, body_path: str, attributes: str | list[str]) -> Node:
    """Body field ``body_path`` comes from ``attributes`` (keeping the field's converter and default)."""

    def make(old: Node | None) -> Node:
        convert, default, _ = _converter_of(old)
        return From.of(attributes, convert=convert, default=default)

    new = _rewrite(root, parse_body_path(body_path), make)
    assert new is not None
    return new


def set_constant(root: Node, body_path: str, value: Any) -> Node:
    """Body field ``body_path`` is always ``value``."""
    new = _rewrite(root, parse_body_path(body_path), lambda _old: Const(value))
    assert new is not None
    return new


def remove_field(root: Node, body_path: str) -> Node:
    """Body field ``body_path`` is never sent."""
    new = _rewrite(root, parse_body_path(body_path), lambda _old: None)
    return new if new is not None else Obj()


# --------------------------------------------------------------------------------------------------
# Introspection


def sources(node: Node, prefix: str = "") -> Iterator[tuple[str, tuple[str, ...], Node]]:
    """``(body path, record attributes, node)`` for every field fed from the record."""
    if isinstance(node, From):
        yield prefix, node.paths, node
    elif isinstance(node, FirstOf):
        for option in node.options:
            yield from sources(option, prefix)
    elif isinstance(node, One):
        yield from sources(node.item, f"{prefix}[]")
    elif isinstance(node, Rest):
        yield prefix, ("(the other attributes)",), node
    elif isinstance(node, Obj):
        for name in node.copy:
            path = f"{prefix}.{name}" if prefix else name
            yield path, (name,), node
        for name, child in node.fields:
            yield from sources(child, f"{prefix}.{name}" if prefix else name)
