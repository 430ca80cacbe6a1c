"""The pure core, one sub-package per subject: records, config, grouping, requests, templates, outcomes,
progress, store and the chain. No I/O, no clock of its own; imports nothing above it."""
