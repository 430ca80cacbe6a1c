package io.confluent.kafka.serializers;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import java.util.Map;
import org.apache.kafka.common.errors.SerializationException;
import org.apache.kafka.common.serialization.Serializer;

/**
 * Stand-in for Confluent's plain JSON serializer (not on Maven Central), which the clescot sink uses
 * when it publishes HTTP exchanges with producer.format=string: Jackson writes the value as JSON.
 * Honours the two settings the sink passes: json.indent.output and json.write.dates.as.iso8601.
 */
public class KafkaJsonSerializer<T> implements Serializer<T> {
    private final ObjectMapper mapper = new ObjectMapper().findAndRegisterModules();

    @Override
    public void configure(Map<String, ?> configs, boolean isKey) {
        mapper.configure(SerializationFeature.INDENT_OUTPUT, isTrue(configs.get("json.indent.output")));
        mapper.configure(SerializationFeature.WRITE_DATES_AS_TIMESTAMPS,
                !isTrue(configs.get("json.write.dates.as.iso8601")));
    }

    private static boolean isTrue(Object value) {
        return value != null && Boolean.parseBoolean(value.toString());
    }

    @Override
    public byte[] serialize(String topic, T data) {
        if (data == null) {
            return null;
        }
        try {
            return mapper.writeValueAsBytes(data);
        } catch (Exception e) {
            throw new SerializationException("cannot write the value as JSON: " + e.getMessage(), e);
        }
    }
}
