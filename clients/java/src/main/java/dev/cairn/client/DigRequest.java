package dev.cairn.client;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;
import java.util.UUID;

/**
 * A dig by {@code player}, standing at {@code pos}, at the block {@code at}.
 *
 * <p>The {@code requestId} is fixed when the request is made ({@link #of} draws a random one) and
 * is what makes retries safe: the client resends this same request, under this same id, until it
 * gets an answer; the server gives a replayed dig that claimed the same claim back. Keep the
 * request (or its id) if you want to retry it yourself after {@link CairnException#transport()}.
 * {@code teleport} marks a position reached by teleport (servers that support it on digs).
 */
public record DigRequest(String hunt, String player, BlockPos pos, BlockPos at, String requestId, boolean teleport)
        implements Op {
    public DigRequest {
        Objects.requireNonNull(hunt, "hunt");
        Objects.requireNonNull(player, "player");
        Objects.requireNonNull(pos, "pos");
        Objects.requireNonNull(at, "at");
        if (requestId == null || requestId.isEmpty() || requestId.length() > 128) {
            throw new IllegalArgumentException("requestId must be 1-128 characters");
        }
    }

    /** A dig with a fresh random request id. */
    public static DigRequest of(String hunt, String player, BlockPos pos, BlockPos at) {
        return new DigRequest(hunt, player, pos, at, UUID.randomUUID().toString(), false);
    }

    Map<String, Object> toJson() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("player", player);
        m.put("pos", pos);
        m.put("at", at);
        m.put("request_id", requestId);
        if (teleport) m.put("teleport", true);
        return m;
    }

    @Override
    public Map<String, Object> toOpJson() {
        return Wire.op("dig", hunt, toJson());
    }
}
