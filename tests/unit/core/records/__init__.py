"""Records: JSON types and the transform (excluded attributes)."""
