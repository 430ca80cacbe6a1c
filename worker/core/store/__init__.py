"""Named, versioned entries of a compacted store topic: their codec and the rules of a write (pure)."""
