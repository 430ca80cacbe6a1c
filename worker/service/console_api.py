"""The routes the console needs beyond the destinations' and credentials' own: the template catalog,
the broker's topics and a sample of one, and the preview and test of an unsaved destination.

``POST /preview`` and ``POST /test`` take ``{"destination": {...}}``, one destination as in the file's
``destinations`` (not saved, nothing written). A destination that does not validate is a 400 whose
``errors`` name each setting (``batching.batch_size``), so a form can show them by their fields.
``POST /test`` without ``"confirm": true`` only says what the request would create or change and whom
it would email; with it, the request is sent once through the account's shared rate limiter.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import orjson
from aiohttp import web
from aiokafka.errors import KafkaError

from worker import __version__
from worker.core.chain.preview import SampleMessage, preview
from worker.core.chain.record_chain import build_renderer
from worker.core.chain.sample_effects import undo_url
from worker.core.chain.template_guide import guide
from worker.core.config.account import Credential
from worker.core.config.base import ConfigError, Problem
from worker.core.config.delivery import algorithms
from worker.core.config.deployment import Store
from worker.core.config.worker_config import Destination, WorkerConfig
from worker.core.store.destinations import check_inline_credential, stored_document, validate_destination
from worker.gorgias.endpoint_trial import EndpointTestError, deletion, plan_test, send_once, send_test
from worker.kafka.clients import all_partitions
from worker.kafka.topic_sample import read_sample
from worker.service.control_http import RUNTIME, TOKEN, error, invalid, json_body, json_response, token_refusal
from worker.service.runtime import Runtime

__all__ = ["answer_test", "console_routes"]

MAX_RECORDS = 1000  # records in one preview
MAX_SAMPLE = 100  # records read from a topic at once
KAFKA_TIMEOUT_S = 15.0
# Preview needs an account to show URLs and headers: until a credential is chosen, an example one.
EXAMPLE_CREDENTIAL = {"domain": "your-domain", "username": "agent@example.com", "api_key_env": "UNSET"}


async def about(request: web.Request) -> web.Response:
    """What the page needs to know first: the worker's version, whether writes need the control token,
    which route groups this worker has (``credentials``: saved credentials; ``saved_destinations``), and the
    grouping algorithms with their own settings."""
    paths = {resource.canonical for resource in request.app.router.resources()}
    return json_response({
        "version": __version__, "control_token": request.app[TOKEN] is not None,
        "deployment": request.app[RUNTIME].config.kafka.scope.name,
        "routes": {"credentials": "/credentials" in paths,
                   "saved_destinations": "/destinations/{name}/config" in paths},
        "algorithms": algorithms(),
    })


async def templates(_request: web.Request) -> web.Response:
    """Every template explained: fields, options, batching, may it email, an example record and its request."""
    return json_response(guide())


def _internal(topic: str, config: WorkerConfig) -> bool:
    """Kafka's own topics and the worker's (its stores, faust's, the outcome topics of its destinations):
    not sources anyone picks (a destination reading its own outcomes would feed itself)."""
    own = {config.kafka.store_topic(store) for store in Store}
    for dest in config.destinations:
        own |= {dest.dead_letter_topic, dest.response_webhook.topic}
    return topic.startswith("_") or topic in own or topic.startswith(f"{config.kafka.group_id}.host")


async def _kafka(request: web.Request, work: Any) -> Any:
    try:
        return await asyncio.wait_for(work, KAFKA_TIMEOUT_S)
    except (KafkaError, OSError, TimeoutError) as exc:
        raise web.HTTPServiceUnavailable(
            text=orjson.dumps({"error": f"Kafka cannot be reached: {str(exc) or type(exc).__name__}"}).decode(),
            content_type="application/json") from None


async def topics(request: web.Request) -> web.Response:
    """The broker's topics (internal ones hidden), with their partition counts."""
    config = request.app[RUNTIME].config
    found = await _kafka(request, all_partitions(config.kafka))
    shown = sorted(name for name in found if not _internal(name, config))
    return json_response({"topics": [{"name": name, "partitions": len(found[name])} for name in shown]})


def _sample_item(msg: SampleMessage) -> dict[str, Any]:
    out: dict[str, Any] = {"partition": msg.source.partition, "offset": msg.source.offset,
                           "timestamp_ms": msg.source.timestamp_ms,
                           "key": None if msg.source.key is None else msg.source.key.decode("utf-8", "replace"),
                           "headers": {k: v.decode("utf-8", "replace") for k, v in msg.headers}}
    try:
        out["value"] = None if msg.value is None else orjson.loads(msg.value)
    except orjson.JSONDecodeError:
        out["value"] = None
        out["text"] = msg.value.decode("utf-8", "replace") if msg.value is not None else None
    return out


async def topic_sample(request: web.Request) -> web.Response:
    """The latest ``limit`` records of a topic, read without a consumer group (nothing committed).

    Records are data: like every write, this read needs the control token when one is configured.
    """
    refused = token_refusal(request)
    if refused is not None:
        return refused
    config = request.app[RUNTIME].config
    topic = request.match_info["topic"]
    try:
        limit = int(request.query.get("limit", "10"))
    except ValueError:
        return error(400, "limit must be a whole number")
    if not 1 <= limit <= MAX_SAMPLE:
        return error(400, f"limit must be between 1 and {MAX_SAMPLE} (got {limit})")
    if _internal(topic, config):
        return error(404, f"{topic} is one of the worker's own topics, not a source")
    try:
        found = await _kafka(request, read_sample(config.kafka, topic, limit))
    except LookupError as exc:
        return error(404, str(exc))
    return json_response({"topic": topic, "records": [_sample_item(m) for m in found]})


class Invalid(Exception):
    """A destination in a request body that the worker would refuse: the problems name each setting."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(p.line for p in problems))
        self.problems = problems


def _credentials(runtime: Runtime) -> tuple[Mapping[str, Credential], list[Credential]]:
    """The credentials a destination may name, and every credential the worker's config has."""
    named = runtime.saved.credentials() if runtime.saved is not None else runtime.config.credentials
    return named, [*named.values(), *(d.credential for d in runtime.config.destinations)]


def _unsaved(doc: Any, *, sending: bool, runtime: Runtime) -> tuple[Destination, bool]:
    """The destination in a request body, checked as a saved one is (:mod:`worker.core.store.destinations`),
    and whether its credential is the example one; :class:`Invalid` naming every setting that is wrong.

    To preview, any credential block will do (no secret is read) and none at all means an example account;
    to send, the credential must be one the worker has (by name, or the same block as the config's), so
    that a request cannot send another secret of the worker's environment to an origin of its choosing.
    """
    if not isinstance(doc, dict):
        raise Invalid([Problem("destination", "send {\"destination\": {...}}: one destination as in the config "
                               "file's `destinations`", None, "destination: an object is required")])
    body = stored_document(doc)
    example = body.get("credential") is None
    if example:
        if sending:
            raise Invalid([Problem("credential", "choose a credential: a test sends a real request", None,
                                   "credential: is required to send a test")])
        body["credential"] = EXAMPLE_CREDENTIAL
    named, known = _credentials(runtime)
    try:
        dest = validate_destination(body, named)
        try:
            build_renderer(dest)
        except ValueError as exc:
            raise ConfigError([str(exc)]) from None
        if sending:
            check_inline_credential(body, dest, known)
    except ConfigError as exc:
        raise Invalid(exc.items) from None
    return dest, example


async def preview_unsaved(request: web.Request) -> web.Response:
    """``{"destination": {...}, "records": [...]}`` -> the requests and dead letters, as for a saved one.

    Settings the worker would refuse are an answer too, not a failure (a form asks after every
    keystroke): 200 with ``errors`` naming each setting and no ``items``.
    """
    runtime = request.app[RUNTIME]
    doc = await json_body(request)
    if not isinstance(doc, dict) or not isinstance(doc.get("records", []), list):
        return error(400, 'send {"destination": {...}, "records": [record, ...]}')
    records = doc.get("records") or []
    if len(records) > MAX_RECORDS:
        return error(400, f"at most {MAX_RECORDS} records per preview (got {len(records)})")
    try:
        dest, example = _unsaved(doc.get("destination"), sending=False, runtime=runtime)
    except Invalid as exc:
        return json_response({"destination": None, "items": [], "errors": [p.as_dict() for p in exc.problems]})
    items = preview(dest, records, max_record_bytes=runtime.config.kafka.max_record_bytes)
    return json_response({"destination": dest.name, "items": [i.as_dict() for i in items], "errors": [],
                          "example_credential": example})


async def answer_test(runtime: Runtime, dest: Destination, doc: dict[str, Any]) -> web.Response:
    """A test of ``dest`` (``doc``: ``record``, ``payload``, ``confirm``): without ``"confirm": true`` what
    the request would create or change and whom it would email, nothing sent; with it, sent once."""
    try:
        sample, effect = plan_test(dest, doc.get("record"), doc.get("payload"))
    except (EndpointTestError, ValueError) as exc:
        return error(400, str(exc))
    if doc.get("confirm") is not True:
        return json_response({"sent": False, **effect.as_dict(), "request": sample.as_dict()})
    if runtime.delivery is None:
        return error(503, "the worker is still starting")
    result = await send_test(dest, runtime.delivery, sample)
    return json_response({"sent": True, **result.as_dict(), "effect": effect.as_dict()})


def _sending(doc: Any, runtime: Runtime) -> Destination:
    """The unsaved destination a test sends with, or a 400 naming what is wrong."""
    try:
        return _unsaved(doc, sending=True, runtime=runtime)[0]
    except Invalid as exc:
        raise invalid(exc.problems) from None


async def test_unsaved(request: web.Request) -> web.Response:
    """``{"destination", "record"?, "payload"?}``: what the test would do; with ``"confirm": true``, do it."""
    runtime = request.app[RUNTIME]
    doc = await json_body(request)
    if not isinstance(doc, dict) or set(doc) - {"destination", "record", "payload", "confirm"}:
        return error(400, 'send {"destination": {...}, "record": {...}, "payload": ..., "confirm": true}')
    return await answer_test(runtime, _sending(doc.get("destination"), runtime), doc)


async def undo_test(request: web.Request) -> web.Response:
    """``{"destination", "undo": {"kind", "id", "ticket_id"?}}``: delete what a test created, once."""
    runtime = request.app[RUNTIME]
    doc = await json_body(request)
    undo = doc.get("undo") if isinstance(doc, dict) else None
    if not isinstance(undo, dict):
        return error(400, 'send {"destination": {...}, "undo": {"kind": "ticket", "id": 123}}')
    dest = _sending(doc.get("destination"), runtime)
    try:
        url = undo_url(dest.credential.origin, undo.get("kind"), undo.get("id"), undo.get("ticket_id"))
    except ValueError as exc:
        return error(400, str(exc))
    if runtime.delivery is None:
        return error(503, "the worker is still starting")
    result = await send_once(dest, runtime.delivery, deletion(dest, url))
    return json_response(result.as_dict())


def console_routes() -> list[web.RouteDef]:
    return [
        web.get("/about", about),
        web.get("/templates", templates),
        web.get("/topics", topics),
        web.get("/topics/{topic}/sample", topic_sample),
        web.post("/preview", preview_unsaved),
        web.post("/test", test_unsaved),
        web.post("/test/undo", undo_test),
    ]

