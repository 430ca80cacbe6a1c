"""Store entries: runtime destinations and credentials as kept on the compacted topics."""
