"""The config models: settings, defaults, validation messages, deployments, topics, start positions."""
