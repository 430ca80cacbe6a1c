"""Unit tests of worker/kafka without a broker: partitioner, partitions and commits, publisher, client settings."""
