"""Gorgias destination worker: Kafka (Nexset records) -> Gorgias REST API -> response topic."""

__version__ = "0.1.0"
