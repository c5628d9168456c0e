package dev.cairn.client;

import java.util.Map;

/**
 * An engine event ({@code treasure.claimed}, {@code proximity.enter}, {@code hunt.started}, ...).
 * Ids rise strictly in every stream; {@code data} is the type's payload as parsed JSON.
 */
public record Event(long id, String type, String hunt, String at, Map<String, Object> data) {
    static Event from(Map<String, Object> m) {
        Map<String, Object> d = Wire.obj(m, "data");
        return new Event(Wire.lng(m, "id", 0), Wire.str(m, "type"), Wire.str(m, "hunt"), Wire.str(m, "at"),
                d == null ? Map.of() : d);
    }

    /** A string field of {@code data} (for example {@code "player"} or {@code "treasure"}), or null. */
    public String dataString(String key) {
        return Wire.str(data, key);
    }
}
