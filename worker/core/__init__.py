"""The pure core: configuration models, records, transform, grouping, rendering, templates, offsets,
outcome documents and the record chain. No I/O, no clock of its own; imports nothing above it."""
