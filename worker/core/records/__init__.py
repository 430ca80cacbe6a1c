"""Nexset records as the worker reads them: decoding, dotted attribute paths, JSON type words."""
