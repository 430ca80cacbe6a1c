package io.confluent.kafka.schemaregistry.client;

/**
 * Placeholder for Confluent's schema registry client, which Maven Central does not serve. The clescot
 * sink's PublishConfigurer names this type in a method signature, so the JVM needs the class to exist
 * even when nothing is published (publish.mode NONE) or responses are published as plain JSON
 * (producer.format string). The schema-registry path (producer.format json) stays unavailable.
 */
public interface SchemaRegistryClient {
}
