"""How far a partition may commit, which calls a worker still owns, and crash-recovery marks."""
