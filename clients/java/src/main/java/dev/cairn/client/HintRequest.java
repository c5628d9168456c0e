package dev.cairn.client;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;
import java.util.UUID;

/**
 * A hint asked by {@code player} standing at {@code pos}. A replayed {@code requestId} returns the
 * same hint and does not restart the cooldown, so the client retries a hint under its id.
 */
public record HintRequest(String hunt, String player, BlockPos pos, String requestId, boolean teleport) implements Op {
    public HintRequest {
        Objects.requireNonNull(hunt, "hunt");
        Objects.requireNonNull(player, "player");
        Objects.requireNonNull(pos, "pos");
        if (requestId == null || requestId.isEmpty() || requestId.length() > 128) {
            throw new IllegalArgumentException("requestId must be 1-128 characters");
        }
    }

    /** A hint request with a fresh random request id. */
    public static HintRequest of(String hunt, String player, BlockPos pos) {
        return new HintRequest(hunt, player, pos, UUID.randomUUID().toString(), false);
    }

    Map<String, Object> toJson() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("player", player);
        m.put("pos", pos);
        m.put("request_id", requestId);
        if (teleport) m.put("teleport", true);
        return m;
    }

    @Override
    public Map<String, Object> toOpJson() {
        return Wire.op("hint", hunt, toJson());
    }
}
