"""The record -> request path: rendering URLs, headers and bodies, wire headers."""
