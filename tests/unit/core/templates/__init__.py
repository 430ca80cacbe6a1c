"""Endpoint templates: the catalog, options, bodies, plans and validation."""
