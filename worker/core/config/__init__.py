"""The configuration models a worker's config file is validated against, and the effective config."""
