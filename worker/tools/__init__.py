"""Operator tools behind the command line: cli, replay, demo, status, schemas, template catalog."""
