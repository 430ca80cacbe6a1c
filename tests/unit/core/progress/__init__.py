"""Progress and crash recovery: offsets, checkpoints, ownership epochs, recovery marks."""
