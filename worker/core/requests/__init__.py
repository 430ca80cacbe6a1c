"""From a prepared record to a Gorgias request: rendering, URL patterns, plans, wire headers."""
