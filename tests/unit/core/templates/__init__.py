"""Endpoint templates: the catalogue, options, bodies, plans and validation."""
