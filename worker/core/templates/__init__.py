"""Endpoint templates: pre-built Gorgias write endpoints with their body mapping and checks.

``endpoint.template: NAME`` picks one (``gorgias-worker templates`` lists them);
``endpoint.template_options`` customises it without code: ``fields`` (constant body fields),
``mapping`` (body field <- record attribute), ``external_id`` (``{from: attribute}`` or
``{stamp: false}``), ``url_attributes`` (URL placeholder <- record attribute) and ``dedupe``
(``{lookup_before_create: replayed|always|never, on_unknown_outcome: true|false}``).
"""

from worker.core.templates.catalog import get_template, list_templates
from worker.core.templates.model import ConfiguredTemplate, Template, default_external_id
from worker.core.templates.renderer import TemplateRenderer, check_templates, configured_for, renderer_for

__all__ = [
    "ConfiguredTemplate",
    "Template",
    "TemplateRenderer",
    "check_templates",
    "configured_for",
    "default_external_id",
    "get_template",
    "list_templates",
    "renderer_for",
]
