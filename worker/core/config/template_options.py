"""``endpoint.template_options``: what customises an endpoint template, without code. Pure.

The shape of every option is checked here (and published in the JSON Schema); what depends on the
template chosen (which body fields exist, which placeholders its URL has, whether it creates or sends
anything) is checked when the template is configured (:meth:`worker.core.templates.model.Template.configure`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, ConfigDict, Field, model_validator

from worker.core.config.base import Model
from worker.core.records.transform import split_path


def _attribute_path(value: Any) -> Any:
    if not isinstance(value, str):
        raise ValueError(f"must be a record attribute path, got {value!r}")
    split_path(value)  # ValueError naming the path
    return value


def _attribute_source(value: Any) -> Any:
    if value is None:
        return None
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not names or not all(isinstance(a, str) for a in names):
        raise ValueError(f"must be a record attribute path (or a list of them, or null to leave the field out), "
                         f"got {value!r}")
    for name in names:
        split_path(name)
    return value


def _mapping_of(what: str) -> BeforeValidator:
    def check(value: Any) -> Any:
        if not isinstance(value, Mapping):
            raise ValueError(what)
        return value

    return BeforeValidator(check)


AttributePath = Annotated[str, BeforeValidator(_attribute_path)]
AttributeSource = Annotated[str | list[str] | None, BeforeValidator(_attribute_source)]


class ExternalIdOption(Model):
    """Where a create's ``external_id`` comes from when the record has none of its own."""

    model_config = ConfigDict(serialize_by_alias=True)

    from_: AttributePath | None = Field(
        default=None, alias="from", description="Record attribute to take it from (instead of the stamped id)."
    )
    stamp: bool = Field(default=True, description="false: send no external_id at all (no duplicate checks).")


class DedupeOption(Model):
    """When a create template looks an object up before creating it."""

    lookup_before_create: Literal["replayed", "always", "never"] = Field(
        default="replayed",
        description="replayed: for replays and records possibly delivered before a restart; always: every "
        "create (one more call each); never: replays only.",
    )
    on_unknown_outcome: bool = Field(
        default=True, description="Look a create up before retrying it when its answer was lost."
    )


class JobOption(Model):
    """How a destination's Gorgias jobs (``ticket_job``, or ``delivery.coalesce: jobs``) are followed until they
    end: every job the destination follows is read together."""

    first_poll_s: float = Field(default=2.0, gt=0,
                                description="Pause before the first read of the jobs (after a job arrives at an idle "
                                "destination).")
    max_poll_interval_s: float = Field(default=60.0, gt=0,
                                       description="Pauses between reads double up to this while jobs are followed.")
    max_wait_s: float = Field(
        default=1800.0, gt=0,
        description="No read of a job starts later than this after it was created; a job still running then leaves "
        "its records' outcome unknown (dead-lettered). Each read takes a token of the account's budget: GET "
        "/api/jobs/{id} for one job, one GET /api/jobs page for many.",
    )

    @model_validator(mode="after")
    def _a_poll_fits(self) -> JobOption:
        if self.max_wait_s < self.first_poll_s:
            raise ValueError(f"max_wait_s ({self.max_wait_s:g}) must be at least first_poll_s ({self.first_poll_s:g}): "
                             "else the job would never be read")
        return self


class TemplateOptions(Model):
    """Template customisation; every option is optional."""

    fields: Annotated[dict[str, Any], _mapping_of(
        "must map body fields to constant values, e.g. {channel: email}")] = Field(
        default_factory=dict, description="Constant body fields: `{channel: email, \"messages[].channel\": email}`."
    )
    mapping: Annotated[dict[str, AttributeSource], _mapping_of(
        "must map body fields to record attributes, e.g. {customer.email: contact.email}")] = Field(
        default_factory=dict,
        description="Body field <- record attribute (or a list: the first present), null: leave the field out.",
    )
    external_id: ExternalIdOption | None = Field(default=None, description="Create templates only.")
    url_attributes: Annotated[dict[str, AttributePath], _mapping_of(
        "must map URL placeholders to record attributes, e.g. {ticket_id: ticket.id}")] = Field(
        default_factory=dict, description="URL placeholder <- record attribute: `{ticket_id: ticket.id}`."
    )
    dedupe: DedupeOption | None = Field(default=None, description="Create templates only.")
    job: JobOption | None = Field(default=None, description="ticket_job, and destinations with delivery.coalesce: "
                                  "jobs: how their jobs are read until they end.")
    tags: Literal["add", "replace"] | None = Field(
        default=None,
        description="update_ticket only: add (default) the record's tags to the ticket's, or replace them all.",
    )
    mode: Literal["import", "send"] | None = Field(
        default=None,
        description="Message and survey templates: import (default; stored as history, nobody is emailed) or "
        "send (Gorgias sends outgoing messages and surveys).",
    )
