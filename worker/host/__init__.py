"""What the process shares with its host: the environment and secret files it reads at start, the
metrics it exposes, the logs it writes. Usable by every shell; imports only the core."""
