package dev.cairn.client;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;

/** One player's position in a positions call; {@code teleport} exempts it from the movement check. */
public record PositionUpdate(String player, BlockPos pos, boolean teleport) {
    public PositionUpdate {
        Objects.requireNonNull(player, "player");
        Objects.requireNonNull(pos, "pos");
    }

    Map<String, Object> toJson() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("player", player);
        m.put("pos", pos);
        if (teleport) m.put("teleport", true);
        return m;
    }
}
