package dev.cairn.client;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.HttpTimeoutException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executor;
import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;

/**
 * The client of a Cairn server, for game-server plugins (Paper, Hytale, ...).
 *
 * <p>Every call is asynchronous: it returns at once with a {@link CompletableFuture} that completes
 * on one of the client's threads (never the caller's), with a typed reply or a
 * {@link CairnException}. Hand results back to the game's main thread with the game's scheduler.
 * {@link #blocking()} gives the same calls as blocking methods, for tools and tests (never on a
 * game's main thread). One instance serves a whole plugin and is safe to call from any thread.
 *
 * <p>Retries: calls that cannot have a second effect are retried on connection errors, timeouts,
 * 503 (honouring {@code Retry-After}) and a proxy's 502 or 504 with exponential backoff, for up to {@link Builder#retryFor}:
 * digs and hints (under their request id), acks (under their grant id), leave, ending a hunt, every
 * read, and batches without a positions op. Positions and hunt creation are not retried.
 *
 * <pre>{@code
 * CairnClient cairn = CairnClient.builder("http://127.0.0.1:7420").apiKey(gameKey).build();
 * cairn.dig(DigRequest.of("friday-night", "Steve", pos, at)).thenAccept(r -> ...);
 * }</pre>
 */
public final class CairnClient {
    private final URI base;
    private final String auth;
    private final HttpClient http;
    private final Duration requestTimeout;
    private final Duration connectTimeout;
    private final Duration retryFor;
    private final Duration backoffMin;
    private final Duration backoffMax;
    private final Executor executor;
    private final Blocking blocking = new Blocking();

    private CairnClient(Builder b) {
        String url = b.baseUrl.endsWith("/") ? b.baseUrl : b.baseUrl + "/";
        this.base = URI.create(url);
        this.auth = b.apiKey == null ? null : "Bearer " + b.apiKey;
        this.requestTimeout = b.requestTimeout;
        this.connectTimeout = b.connectTimeout;
        this.retryFor = b.retryFor;
        this.backoffMin = b.backoffMin;
        this.backoffMax = b.backoffMax;
        this.executor = b.executor != null ? b.executor : ForkJoinPool.commonPool();
        // HTTP/1.1: Cairn does not speak HTTP/2, and pinning it skips the h2c upgrade offer on every request.
        HttpClient.Builder hb = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).connectTimeout(b.connectTimeout);
        if (b.executor != null) hb.executor(b.executor);
        this.http = hb.build();
    }

    /** A builder for a client of the server at {@code baseUrl} (for example {@code http://127.0.0.1:7420}). */
    public static Builder builder(String baseUrl) {
        return new Builder(baseUrl);
    }

    /** Settings of a client; every one has a default. */
    public static final class Builder {
        private final String baseUrl;
        private String apiKey;
        private Duration connectTimeout = Duration.ofSeconds(5);
        private Duration requestTimeout = Duration.ofSeconds(10);
        private Duration retryFor = Duration.ofSeconds(30);
        private Duration backoffMin = Duration.ofMillis(100);
        private Duration backoffMax = Duration.ofSeconds(5);
        private Executor executor;

        private Builder(String baseUrl) {
            this.baseUrl = Objects.requireNonNull(baseUrl, "baseUrl");
        }

        /** The API key (a {@code game} key for a plugin, {@code admin} to create and end hunts). */
        public Builder apiKey(String key) {
            this.apiKey = key;
            return this;
        }

        /** How long a connection may take to open (default 5 s). */
        public Builder connectTimeout(Duration d) {
            this.connectTimeout = Objects.requireNonNull(d);
            return this;
        }

        /** How long one request may wait for its reply (default 10 s). */
        public Builder requestTimeout(Duration d) {
            this.requestTimeout = Objects.requireNonNull(d);
            return this;
        }

        /** How long a retryable call keeps retrying before it fails with {@code unreachable} (default 30 s; zero: no retry). */
        public Builder retryFor(Duration d) {
            this.retryFor = Objects.requireNonNull(d);
            return this;
        }

        /** The first and the longest pause between retries and reconnects (default 100 ms and 5 s). */
        public Builder backoff(Duration min, Duration max) {
            this.backoffMin = Objects.requireNonNull(min);
            this.backoffMax = Objects.requireNonNull(max);
            return this;
        }

        /** The executor that runs replies, retries and event listeners (default: the JDK's defaults). */
        public Builder executor(Executor e) {
            this.executor = e;
            return this;
        }

        public CairnClient build() {
            return new CairnClient(this);
        }
    }

    // ---- hunts ------------------------------------------------------------------------------------------

    /** {@code GET /v1/hunts}: every hunt's summary. */
    public CompletableFuture<List<Hunt>> hunts() {
        return call("GET", "v1/hunts", null, true).thenApply(m -> Wire.list(m, "hunts", Hunt::from));
    }

    /** {@code GET /v1/hunts/{hunt}}: one hunt with its treasures (no positions). */
    public CompletableFuture<Hunt> hunt(String hunt) {
        return call("GET", "v1/hunts/" + seg(hunt), null, true).thenApply(Hunt::from);
    }

    /** {@code GET /v1/hunts/{hunt}?reveal=true} (admin key): the hunt with its treasures' positions. */
    public CompletableFuture<Hunt> revealHunt(String hunt) {
        return call("GET", "v1/hunts/" + seg(hunt) + "?reveal=true", null, true).thenApply(Hunt::from);
    }

    /** {@code POST /v1/hunts} (admin key): creates a hunt from a spec given as a JSON object. Not retried. */
    public CompletableFuture<Hunt> createHunt(Map<String, Object> spec) {
        return call("POST", "v1/hunts", spec, false).thenApply(Hunt::from);
    }

    /** {@code POST /v1/hunts/{hunt}/end} (admin key): ends a hunt now; idempotent. */
    public CompletableFuture<Hunt> endHunt(String hunt) {
        return call("POST", "v1/hunts/" + seg(hunt) + "/end", Map.of(), true).thenApply(Hunt::from);
    }

    // ---- the game loop --------------------------------------------------------------------------------

    /** {@code POST /v1/hunts/{hunt}/hint}; 429 {@code hint_cooldown} carries {@link CairnException#retryAfter()}. */
    public CompletableFuture<HintReply> hint(HintRequest req) {
        return call("POST", "v1/hunts/" + seg(req.hunt()) + "/hint", req.toJson(), true).thenApply(HintReply::from);
    }

    /**
     * {@code POST /v1/hunts/{hunt}/dig}. Retried under the request's id until it is answered or
     * {@link Builder#retryFor} runs out; a dig that claimed returns the same claim on every replay.
     */
    public CompletableFuture<DigResult> dig(DigRequest req) {
        return call("POST", "v1/hunts/" + seg(req.hunt()) + "/dig", req.toJson(), true).thenApply(DigResult::from);
    }

    /** {@code POST /v1/positions}: one tick of positions in one world; see {@link PositionBatcher}. Not retried. */
    public CompletableFuture<PositionsReply> positions(PositionsRequest req) {
        return call("POST", "v1/positions", req.toJson(), false).thenApply(PositionsReply::from);
    }

    /** {@code POST /v1/positions} for a list of updates in {@code world}. */
    public CompletableFuture<PositionsReply> positions(String world, List<PositionUpdate> updates) {
        return positions(new PositionsRequest(world, updates));
    }

    /**
     * {@code POST /v1/batch}: up to 1,000 ops in one request, one {@link OpResult} per op, in order.
     * Retried only when it has no positions op (digs and hints replay under their ids).
     */
    public CompletableFuture<List<OpResult>> batch(List<? extends Op> ops) {
        List<Op> copy = List.copyOf(ops);
        List<Object> wire = new ArrayList<>(copy.size());
        boolean retry = true;
        for (Op op : copy) {
            wire.add(op.toOpJson());
            if (op instanceof PositionsRequest) retry = false;
        }
        return call("POST", "v1/batch", Map.of("ops", wire), retry).thenApply(m -> results(copy, m.get("results")));
    }

    static List<OpResult> results(List<Op> ops, Object raw) {
        List<?> slots = raw instanceof List<?> l ? l : List.of();
        if (slots.size() != ops.size()) throw new IllegalStateException("batch reply has " + slots.size() + " results for " + ops.size() + " ops");
        List<OpResult> out = new ArrayList<>(ops.size());
        for (int i = 0; i < ops.size(); i++) out.add(OpResult.from(ops.get(i), Wire.obj(slots.get(i))));
        return List.copyOf(out);
    }

    /** {@code POST /v1/players/{player}/leave}: the player logged out (claims and grants stay). */
    public CompletableFuture<Void> leave(String player) {
        return call("POST", "v1/players/" + seg(player) + "/leave", Map.of(), true).thenApply(m -> null);
    }

    // ---- rewards ----------------------------------------------------------------------------------------

    /** {@code GET /v1/players/{player}/grants}: the player's pending grants; see {@link GrantDeliverer}. */
    public CompletableFuture<List<Grant>> grants(String player) {
        return call("GET", "v1/players/" + seg(player) + "/grants", null, true).thenApply(m -> Wire.list(m, "grants", Grant::from));
    }

    /** {@code POST /v1/grants/{grant}/ack}: marks a grant delivered, after the items are given. Idempotent, retried. */
    public CompletableFuture<Grant> ack(String grantId) {
        return call("POST", "v1/grants/" + seg(grantId) + "/ack", Map.of(), true).thenApply(Grant::from);
    }

    /** {@code GET /v1/leaderboards/{board}?limit=&around=}: {@code around} (a player, or null) centres the page. */
    public CompletableFuture<Leaderboard> leaderboard(String board, int limit, String around) {
        String q = "?limit=" + limit + (around != null ? "&around=" + seg(around) : "");
        return call("GET", "v1/leaderboards/" + seg(board) + q, null, true).thenApply(Leaderboard::from);
    }

    /** {@code GET /readyz}: true when the server is up and its store reachable; never fails. */
    public CompletableFuture<Boolean> ready() {
        return call("GET", "readyz", null, false).handle((m, e) -> e == null);
    }

    // ---- worlds (admin key) -----------------------------------------------------------------------------

    /** {@code GET /v1/worlds}: every world, configured or registered at runtime. */
    public CompletableFuture<List<World>> worlds() {
        return call("GET", "v1/worlds", null, true).thenApply(m -> Wire.list(m, "worlds", World::from));
    }

    /** {@code PUT /v1/worlds/{world}}: registers a world (an instance, an arena) that gets its sites by upload. Idempotent. */
    public CompletableFuture<World> registerWorld(String world) {
        return call("PUT", "v1/worlds/" + seg(world), Map.of(), true).thenApply(World::from);
    }

    /** {@code DELETE /v1/worlds/{world}}: retires a world registered at runtime (409 {@code world_in_use} while hunts use it). */
    public CompletableFuture<Void> retireWorld(String world) {
        return call("DELETE", "v1/worlds/" + seg(world), null, false).thenApply(m -> null);
    }

    /**
     * {@code PUT /v1/worlds/{world}/sites}: replaces the world's sites with NDJSON, one site a line
     * ({@code {"x": 10, "y": 64, "z": -3, "tags": ["surface"]}}). Not retried.
     */
    public CompletableFuture<World> uploadSites(String world, String ndjson) {
        return send("PUT", "v1/worlds/" + seg(world) + "/sites", ndjson, "application/x-ndjson", false).thenApply(World::from);
    }

    // ---- events -----------------------------------------------------------------------------------------

    /**
     * {@code GET /v1/events}: subscribes to the server-sent events of {@code hunt} (null: every hunt)
     * after event id {@code after} (0: what the server retains). The stream reconnects by itself with
     * backoff, resuming after the last event it delivered, until {@link EventStream#close()}.
     */
    public EventStream events(String hunt, long after, EventListener listener) {
        EventStream s = new EventStream(this, hunt, after, listener);
        s.connect();
        return s;
    }

    /**
     * Opens a WebSocket session ({@code GET /v1/session}); pushed events go to {@code listener}.
     * Completes once the server has answered a first ping; a refused key fails it with {@code unauthorized}.
     */
    public CompletableFuture<CairnSession> session(EventListener listener) {
        return CairnSession.open(this, listener);
    }

    // ---- plumbing ---------------------------------------------------------------------------------------

    HttpClient http() {
        return http;
    }

    URI uri(String path) {
        return base.resolve(path);
    }

    String authorization() {
        return auth;
    }

    Duration requestTimeout() {
        return requestTimeout;
    }

    Duration connectTimeout() {
        return connectTimeout;
    }

    Executor executor() {
        return executor;
    }

    /** The pause before retry number {@code n} (0-based): doubling from the minimum, capped, with jitter. */
    long backoffMillis(int n) {
        long min = Math.max(1, backoffMin.toMillis());
        long cap = Math.max(min, backoffMax.toMillis());
        long d = min << Math.min(n, 20);
        if (d <= 0 || d > cap) d = cap;
        return d / 2 + ThreadLocalRandom.current().nextLong(d / 2 + 1); // jitter spreads 200 players' retries
    }

    Executor after(long millis) {
        return CompletableFuture.delayedExecutor(millis, TimeUnit.MILLISECONDS, executor);
    }

    /** Percent-encodes one path segment (player ids, hunt ids and grant ids are URL-safe already). */
    static String seg(String s) {
        Objects.requireNonNull(s);
        StringBuilder sb = new StringBuilder();
        for (byte b : s.getBytes(StandardCharsets.UTF_8)) {
            char c = (char) (b & 0xff);
            if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || "-._~:@".indexOf(c) >= 0) sb.append(c);
            else sb.append('%').append(Character.toUpperCase(Character.forDigit(c >> 4, 16))).append(Character.toUpperCase(Character.forDigit(c & 15, 16)));
        }
        return sb.toString();
    }

    CompletableFuture<Map<String, Object>> call(String method, String path, Object body, boolean retry) {
        return send(method, path, body == null ? null : Json.write(body), "application/json", retry);
    }

    private CompletableFuture<Map<String, Object>> send(String method, String path, String body, String type, boolean retry) {
        HttpRequest.Builder b = HttpRequest.newBuilder(uri(path)).timeout(requestTimeout).header("Accept", "application/json");
        if (auth != null) b.header("Authorization", auth);
        if (body == null) b.method(method, HttpRequest.BodyPublishers.noBody());
        else b.header("Content-Type", type).method(method, HttpRequest.BodyPublishers.ofString(body, StandardCharsets.UTF_8));
        HttpRequest req = b.build(); // built once: every retry sends the very same request
        long deadline = System.nanoTime() + (retry ? retryFor.toNanos() : 0);
        return attempt(req, deadline, 0);
    }

    private CompletableFuture<Map<String, Object>> attempt(HttpRequest req, long deadline, int n) {
        // Sent from the client's executor: sendAsync may resolve the host name on the calling thread.
        return CompletableFuture.supplyAsync(() -> http.sendAsync(req, HttpResponse.BodyHandlers.ofString(StandardCharsets.UTF_8)), executor)
                .thenCompose(Function.identity()).handle((resp, err) -> {
            CairnException fail;
            if (err != null) {
                fail = transportError(err);
            } else if (resp.statusCode() < 400) {
                return CompletableFuture.completedFuture(parseReply(resp));
            } else {
                fail = errorReply(resp);
                int st = resp.statusCode(); // 503 from Cairn; 502 and 504 from a proxy in front of it
                if (st != 502 && st != 503 && st != 504) return CompletableFuture.<Map<String, Object>>failedFuture(fail);
            }
            long wait = backoffMillis(n);
            if (fail.retryAfter() != null) wait = Math.max(wait, (long) (fail.retryAfter() * 1000));
            if (System.nanoTime() + wait * 1_000_000 > deadline) return CompletableFuture.<Map<String, Object>>failedFuture(fail);
            return CompletableFuture.supplyAsync(() -> null, after(wait)).thenCompose(x -> attempt(req, deadline, n + 1));
        }).thenCompose(Function.identity());
    }

    static CairnException transportError(Throwable err) {
        Throwable t = err instanceof CompletionException && err.getCause() != null ? err.getCause() : err;
        if (t instanceof CairnException c) return c;
        if (t instanceof HttpTimeoutException && !(t instanceof java.net.http.HttpConnectTimeoutException)) {
            return new CairnException(0, CairnException.TIMEOUT, "no reply within the request timeout", null, null, t);
        }
        return new CairnException(0, CairnException.UNREACHABLE, "Cairn is unreachable: " + t, null, null, t);
    }

    private static CairnException errorReply(HttpResponse<String> resp) {
        Double header = null;
        String ra = resp.headers().firstValue("Retry-After").orElse(null);
        if (ra != null) {
            try {
                header = Double.parseDouble(ra.trim());
            } catch (NumberFormatException ignored) {
                header = null; // an HTTP date: Cairn never sends one, and the backoff still applies
            }
        }
        Map<String, Object> error = null;
        try {
            if (Json.parse(resp.body()) instanceof Map<?, ?> m) error = Wire.obj(Wire.obj(m).get("error"));
        } catch (IllegalArgumentException ignored) {
            error = null;
        }
        if (error == null) {
            error = new LinkedHashMap<>();
            error.put("code", "http_" + resp.statusCode());
            error.put("message", "HTTP " + resp.statusCode() + " without a Cairn error body");
        }
        return CairnException.of(resp.statusCode(), error, header);
    }

    private static Map<String, Object> parseReply(HttpResponse<String> resp) {
        try {
            return Wire.obj(Json.parse(resp.body()));
        } catch (IllegalArgumentException e) {
            throw new CairnException(resp.statusCode(), "bad_reply", "reply is not a JSON object: " + e.getMessage(), null, null, e);
        }
    }

    /** Waits for a call's result; rethrows its {@link CairnException} (the caller's thread blocks). */
    static <T> T await(CompletableFuture<T> f) {
        try {
            return f.get();
        } catch (InterruptedException e) {
            f.cancel(true);
            Thread.currentThread().interrupt();
            throw new CairnException(0, "interrupted", "interrupted while waiting for Cairn", null, null, e);
        } catch (ExecutionException | CancellationException e) {
            Throwable c = e.getCause() != null ? e.getCause() : e;
            if (c instanceof CairnException ce) {
                // A copy thrown here, so that the stack trace shows the caller (the cause keeps the reply's).
                throw new CairnException(ce.status(), ce.code(), ce.getMessage(), ce.field(), ce.retryAfter(), ce);
            }
            if (c instanceof IOException || c instanceof CancellationException) throw transportError(c);
            if (c instanceof RuntimeException re) throw re;
            throw new IllegalStateException(c);
        }
    }

    // ---- blocking ---------------------------------------------------------------------------------------

    /** The same calls, blocking the calling thread until the reply. Never use them on a game's main thread. */
    public Blocking blocking() {
        return blocking;
    }

    /** Blocking versions of the client's calls; each throws {@link CairnException} on failure. */
    public final class Blocking {
        private Blocking() {}

        public List<Hunt> hunts() {
            return await(CairnClient.this.hunts());
        }

        public Hunt hunt(String hunt) {
            return await(CairnClient.this.hunt(hunt));
        }

        public Hunt revealHunt(String hunt) {
            return await(CairnClient.this.revealHunt(hunt));
        }

        public Hunt createHunt(Map<String, Object> spec) {
            return await(CairnClient.this.createHunt(spec));
        }

        public Hunt endHunt(String hunt) {
            return await(CairnClient.this.endHunt(hunt));
        }

        public HintReply hint(HintRequest req) {
            return await(CairnClient.this.hint(req));
        }

        public DigResult dig(DigRequest req) {
            return await(CairnClient.this.dig(req));
        }

        public PositionsReply positions(String world, List<PositionUpdate> updates) {
            return await(CairnClient.this.positions(world, updates));
        }

        public List<OpResult> batch(List<? extends Op> ops) {
            return await(CairnClient.this.batch(ops));
        }

        public void leave(String player) {
            await(CairnClient.this.leave(player));
        }

        public List<Grant> grants(String player) {
            return await(CairnClient.this.grants(player));
        }

        public Grant ack(String grantId) {
            return await(CairnClient.this.ack(grantId));
        }

        public Leaderboard leaderboard(String board, int limit, String around) {
            return await(CairnClient.this.leaderboard(board, limit, around));
        }

        public boolean ready() {
            return await(CairnClient.this.ready());
        }

        public List<World> worlds() {
            return await(CairnClient.this.worlds());
        }

        public World registerWorld(String world) {
            return await(CairnClient.this.registerWorld(world));
        }

        public void retireWorld(String world) {
            await(CairnClient.this.retireWorld(world));
        }

        public World uploadSites(String world, String ndjson) {
            return await(CairnClient.this.uploadSites(world, ndjson));
        }

        public CairnSession session(EventListener listener) {
            return await(CairnClient.this.session(listener));
        }
    }
}
