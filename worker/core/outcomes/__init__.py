"""The documents every record ends in: response events and dead letters, fitted to their topic."""
