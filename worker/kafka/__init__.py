"""The Kafka shell: the consuming pipeline, partition ownership, the outcome publisher, client
factories, topic I/O and the control topic. Imports the Gorgias shell, host and core."""
