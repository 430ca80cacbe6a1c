"""Checks of the repository as a whole: import layers, dependency locks, Kubernetes manifests."""
