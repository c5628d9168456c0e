package dev.cairn.client;

import java.util.Map;

/** One stack of a reward: a namespaced item id ({@code minecraft:diamond}), a count and its value. */
public record Item(String item, int count, long value) {
    static Item from(Map<String, Object> m) {
        return new Item(Wire.str(m, "item"), (int) Wire.lng(m, "count", 0), Wire.lng(m, "value", 0));
    }
}
