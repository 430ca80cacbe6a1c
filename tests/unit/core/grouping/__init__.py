"""Grouping: batching algorithms, open batches and the call scheduler."""
