"""Endpoint templates as request renderers: the template's method, URL and body builder on RequestRenderer."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import orjson

from worker.core.config.base import PLACEHOLDER
from worker.core.config.delivery import Coalesce
from worker.core.config.endpoint import ContentFormat
from worker.core.config.worker_config import Destination, WorkerConfig
from worker.core.records.record import Record
from worker.core.requests.rendering import Prepared, RequestRenderer, compact
from worker.core.requests.request import RenderedRequest
from worker.core.templates.catalog import get_template
from worker.core.templates.job_forms import check_coalescing
from worker.core.templates.model import ConfiguredTemplate, Template
from worker.core.templates.plans import plan_for, update_adding_tags

__all__ = ["TemplateBodyBuilder", "TemplateRenderer", "check_templates", "configured_for", "renderer_for"]


class TemplateBodyBuilder:
    """A :class:`~worker.core.requests.rendering.BodyBuilder` whose bodies were built (and checked) in ``prepare``."""

    __slots__ = ("configured",)

    def __init__(self, configured: ConfiguredTemplate) -> None:
        self.configured = configured

    def single(self, body: Any) -> Any:
        return body

    def batch(self, bodies: Sequence[Any]) -> Any:
        return self.configured.merge(bodies)


class TemplateRenderer(RequestRenderer):
    """A RequestRenderer whose ``prepare`` builds and checks the template body of each record.

    ``Prepared.body`` is that body (``body_bytes`` its JSON), so the grouper counts the bytes each
    record adds to a call, and a record that cannot make a valid request fails alone, in ``prepare``.
    """

    def __init__(self, destination: Destination, configured: ConfiguredTemplate) -> None:
        super().__init__(
            destination,
            body_builder=TemplateBodyBuilder(configured),
            method=configured.template.method,
            url_pattern=configured.url,
        )
        self.configured = configured
        self.template = configured.template

    def prepare(self, record: Record) -> Prepared:
        prepared = super().prepare(record)  # exclusions, grouping key, URL (RenderError when unusable)
        # a replay keeps its first identity; a replay (or a possible redelivery) is never sent to a customer
        body = self.configured.build(prepared.body, record.origin, replayed=record.replayed)
        return dataclasses.replace(prepared, body=body, body_bytes=compact(orjson.dumps(body)))

    def render_one(self, prepared: Prepared) -> RenderedRequest:
        return self._finish(super().render_one(prepared), prepared.body)

    def render_batch(self, key: tuple[Any, ...], items: Sequence[Prepared]) -> RenderedRequest:
        request = super().render_batch(key, items)
        if self.template.plan is None and self.template.sends is None:
            return request
        return self._finish(request, orjson.loads(request.body) if request.body is not None else None)

    def _finish(self, request: RenderedRequest, body: Any) -> RenderedRequest:
        """Attach the template's plan (several requests) and what a preview reader must know."""
        kind = self.template.plan
        if self.configured.tags_mode == "add":
            plan = update_adding_tags(request, body)
        else:
            plan = plan_for(kind, request, body) if kind is not None else None
        notes = tuple(self.configured.emails(body))
        if plan is None and not notes:
            return request
        return dataclasses.replace(request, plan=plan, notes=notes)


def _check_destination(dest: Destination, template: Template, configured: ConfiguredTemplate) -> None:
    ep = dest.endpoint
    name = template.name
    if ep.method is not None or ep.url is not None:
        set_ = " and ".join(f"endpoint.{f}" for f in ("method", "url") if getattr(ep, f) is not None)
        raise ValueError(
            f"{set_.split(' and ')[0]}: template {name} sets the method and URL itself ({template.method} "
            f"{template.url}); remove {set_}, or remove endpoint.template to configure manually"
        )
    if ep.content_format is ContentFormat.FORM:
        raise ValueError(f"endpoint.content_format: template {name} sends JSON (Gorgias accepts only JSON); "
                         "remove content_format: form")
    b = dest.batching
    if not b.enabled:
        return
    spec = template.batch
    if spec.mode == "none":
        why = spec.reason or "Gorgias has no batch form of this endpoint"
        raise ValueError(f"batching.enabled: template {name} sends one record per call ({why}); "
                         "set batching.enabled: false")
    if b.wrap_key is not None:
        raise ValueError(f"batching.wrap_key: template {name} shapes its own batch body; remove wrap_key")
    keyed = b.keyed
    needed = [p for p in PLACEHOLDER.findall(configured.url) if p != "domain"]
    if spec.key == () and not keyed:
        raise ValueError(
            f"batching.attributes: batched template {name} turns a group into {template.grouping_target}, so "
            f"records must be grouped by {spec.group_by}: use algorithm by_attribute or session_window with "
            f"attributes: [{spec.group_example}] (any attribute the group's records share)"
        )
    missing = [p for p in needed if p not in b.attributes]
    if missing:
        example = ", ".join(needed)
        raise ValueError(
            f"batching.attributes: batched template {name} makes one call per {example}, so batching.attributes "
            f"must include {', '.join(missing)}: e.g. algorithm: by_attribute, attributes: [{example}]"
        )
    if spec.max_items is not None and b.batch_size > spec.max_items:
        raise ValueError(f"batching.batch_size: template {name} carries at most {spec.max_items} records in one "
                         f"call (Gorgias' limit); set batch_size <= {spec.max_items} (got {b.batch_size})")


def configured_for(dest: Destination) -> ConfiguredTemplate:
    """The destination's template with its options applied; ``ValueError`` naming the setting otherwise."""
    name = dest.endpoint.template
    if name is None:
        raise ValueError(f"endpoint.template: destination {dest.name} has no template (manual configuration)")
    template = get_template(name)
    coalesce = dest.delivery.coalesce is Coalesce.JOBS
    configured = template.configure(dest.endpoint.template_options, dest.name, coalesce=coalesce)
    _check_destination(dest, template, configured)
    if coalesce:
        check_coalescing(name, configured.tags_mode)
    return configured


def renderer_for(dest: Destination) -> RequestRenderer:
    """The request renderer of a templated destination (checked at start: every problem is a ValueError)."""
    configured = configured_for(dest)
    try:
        return TemplateRenderer(dest, configured)
    except ValueError as exc:
        raise ValueError(f"endpoint.template: {configured.name}: {exc}") from None


def check_templates(config: WorkerConfig) -> list[str]:
    """One readable problem per templated destination that cannot start (for ``validate`` and ``run``):
    ``destinations[0].endpoint.template_options.fields.priority: must be one of ...``."""
    problems: list[str] = []
    for i, dest in enumerate(config.destinations):
        if dest.endpoint.template is None:
            continue
        try:
            renderer_for(dest)
        except ValueError as exc:
            problems.append(f"destinations[{i}].{exc}")
    return problems
