"""Grouping records into calls: batching algorithms, open batches per key, the account's call scheduler."""
