package dev.cairn.client;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/** One tick of player positions in one world. */
public record PositionsRequest(String world, List<PositionUpdate> updates) implements Op {
    public PositionsRequest {
        Objects.requireNonNull(world, "world");
        updates = List.copyOf(updates);
    }

    Map<String, Object> toJson() {
        List<Object> list = new ArrayList<>(updates.size());
        for (PositionUpdate u : updates) list.add(u.toJson());
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("world", world);
        m.put("updates", list);
        return m;
    }

    @Override
    public Map<String, Object> toOpJson() {
        return Wire.op("positions", null, toJson());
    }
}
