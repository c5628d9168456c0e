package cairn;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A dependency-free client for Cairn's HTTP API, for game-server plugins (Hytale, Paper...).
 *
 * <p>Thread-safe: one instance per server. Calls block; run them off the game's main thread
 * (for example on a plugin's async scheduler) and hand results back to the main thread.
 */
public final class CairnClient {
    /** An error reply from Cairn: the HTTP status and the stable error code. */
    public static final class CairnException extends RuntimeException {
        public final int status;
        public final String code;
        public final Double retryAfter;

        CairnException(int status, String code, String message, Double retryAfter) {
            super(status + " " + code + ": " + message);
            this.status = status;
            this.code = code;
            this.retryAfter = retryAfter;
        }
    }

    private final HttpClient http;
    private final URI base;
    private final String key;

    public CairnClient(String baseUrl, String apiKey) {
        this.base = URI.create(baseUrl.endsWith("/") ? baseUrl : baseUrl + "/");
        this.key = apiKey;
        this.http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).connectTimeout(Duration.ofSeconds(5)).build();
    }

    /** A position update for {@link #positions}. */
    public record Position(String player, int x, int y, int z, boolean teleport) {}

    /** Asks for a hint: {"hint": {...}, "next_hint_in": s}. Throws with code hint_cooldown on 429. */
    public Map<String, Object> hint(String hunt, String player, int[] pos) throws IOException, InterruptedException {
        return hint(hunt, player, pos, false);
    }

    /** As {@link #hint(String, String, int[])}; {@code teleport}: the player just got to {@code pos} by teleport. */
    public Map<String, Object> hint(String hunt, String player, int[] pos, boolean teleport)
            throws IOException, InterruptedException {
        Map<String, Object> body = new LinkedHashMap<>();
        body.put("player", player);
        body.put("pos", pos);
        if (teleport) body.put("teleport", true);
        return call("POST", "v1/hunts/" + hunt + "/hint", body);
    }

    /** Digs at {@code at}; {@code requestId} makes retries safe: a replayed dig returns the same claim. */
    public Map<String, Object> dig(String hunt, String player, int[] pos, int[] at, String requestId)
            throws IOException, InterruptedException {
        return dig(hunt, player, pos, at, requestId, false);
    }

    /** As above; {@code teleport}: the player just got to {@code pos} by teleport (a portal), so it is not
     *  movement-checked and the dig is not refused with implausible_movement. */
    public Map<String, Object> dig(String hunt, String player, int[] pos, int[] at, String requestId, boolean teleport)
            throws IOException, InterruptedException {
        Map<String, Object> body = new LinkedHashMap<>();
        body.put("player", player);
        body.put("pos", pos);
        body.put("at", at);
        body.put("request_id", requestId);
        if (teleport) body.put("teleport", true);
        return call("POST", "v1/hunts/" + hunt + "/dig", body);
    }

    /** Sends one tick of player positions; returns {"events": proximity events, "errors": refused updates,
     *  each {"index", "error": {"code", "message", "field"}}}. One refused update does not stop the others. */
    public Map<String, Object> positions(String world, List<Position> updates) throws IOException, InterruptedException {
        List<Object> list = new ArrayList<>();
        for (Position p : updates) {
            Map<String, Object> u = new LinkedHashMap<>();
            u.put("player", p.player());
            u.put("pos", new int[] {p.x(), p.y(), p.z()});
            if (p.teleport()) u.put("teleport", true);
            list.add(u);
        }
        return call("POST", "v1/positions", Map.of("world", world, "updates", list));
    }

    /** Many ops in one request; each op is a map with "op" ("dig", "hint", "positions"). */
    @SuppressWarnings("unchecked")
    public List<Object> batch(List<Map<String, Object>> ops) throws IOException, InterruptedException {
        return (List<Object>) call("POST", "v1/batch", Map.of("ops", ops)).get("results");
    }

    /** The player's pending grants (rewards to deliver in game). */
    @SuppressWarnings("unchecked")
    public List<Map<String, Object>> grants(String player) throws IOException, InterruptedException {
        return (List<Map<String, Object>>) call("GET", "v1/players/" + player + "/grants", null).get("grants");
    }

    /** Marks a grant delivered. Idempotent: acking twice is safe. */
    public Map<String, Object> ack(String grantId) throws IOException, InterruptedException {
        return call("POST", "v1/grants/" + grantId + "/ack", Map.of());
    }

    /** The list of hunts. */
    @SuppressWarnings("unchecked")
    public List<Map<String, Object>> hunts() throws IOException, InterruptedException {
        return (List<Map<String, Object>>) call("GET", "v1/hunts", null).get("hunts");
    }

    @SuppressWarnings("unchecked")
    private Map<String, Object> call(String method, String path, Object body) throws IOException, InterruptedException {
        HttpRequest.Builder b = HttpRequest.newBuilder(base.resolve(path))
                .timeout(Duration.ofSeconds(10))
                .header("Authorization", "Bearer " + key);
        if (body == null) b.method(method, HttpRequest.BodyPublishers.noBody());
        else b.header("Content-Type", "application/json").method(method, HttpRequest.BodyPublishers.ofString(Json.write(body)));
        HttpResponse<String> r = http.send(b.build(), HttpResponse.BodyHandlers.ofString());
        Object parsed = r.body().isEmpty() ? Map.of() : Json.parse(r.body());
        if (r.statusCode() >= 400) {
            Map<String, Object> err = (Map<String, Object>) ((Map<String, Object>) parsed).getOrDefault("error", Map.of());
            Object retry = err.get("retry_after");
            throw new CairnException(r.statusCode(), String.valueOf(err.get("code")), String.valueOf(err.get("message")),
                    retry instanceof Number n ? n.doubleValue() : null);
        }
        return (Map<String, Object>) parsed;
    }
}
