package dev.cairn.client;

import java.net.URI;
import java.net.http.WebSocket;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A WebSocket session ({@code GET /v1/session}): one connection that carries ops (one per frame,
 * or a batch of ops in one frame) and the events pushed to a subscription. JSON text frames;
 * replies are matched to requests by id, so calls may overlap from any thread.
 *
 * <p>A session does not reconnect: when it closes, pending calls fail with
 * {@link CairnException#CLOSED} and the listener's {@link EventListener#onDisconnected} is called;
 * open a new one and {@link #subscribe} again from {@link #lastEventId()}. Ops sent on a session
 * are not retried (a dig can be resent under its request id on a new session or over HTTP).
 */
public final class CairnSession implements AutoCloseable {
    private final CairnClient client;
    private final EventListener listener;
    private final AtomicLong ids = new AtomicLong();
    private final Map<Long, Pending> pending = new ConcurrentHashMap<>();
    private final Object sendLock = new Object();
    private CompletableFuture<?> sending = CompletableFuture.completedFuture(null);
    private volatile WebSocket ws;
    private volatile boolean closed;
    private volatile CairnException closeCause;
    private volatile long lastId;
    private volatile String subscribedHunt;
    private volatile boolean subscribed;

    private record Pending(CompletableFuture<Map<String, Object>> reply) {}

    private CairnSession(CairnClient client, EventListener listener) {
        this.client = client;
        this.listener = listener;
    }

    static CompletableFuture<CairnSession> open(CairnClient client, EventListener listener) {
        CairnSession s = new CairnSession(client, listener);
        String http = client.uri("v1/session").toString();
        URI uri = URI.create("ws" + http.substring(4)); // http(s):// -> ws(s)://
        WebSocket.Builder b = client.http().newWebSocketBuilder().connectTimeout(client.connectTimeout());
        if (client.authorization() != null) b.header("Authorization", client.authorization());
        // Open once the server has answered a ping: a refused key closes the session before that.
        return b.buildAsync(uri, s.new Receiver()).handle((ws, err) -> {
            if (err != null) throw CairnClient.transportError(err);
            s.ws = ws;
            return s;
        }).thenCompose(x -> s.ping()).thenApply(x -> s);
    }

    /** The id of the last pushed event (where a new subscription resumes). */
    public long lastEventId() {
        return lastId;
    }

    /** True until the session closes. */
    public boolean isOpen() {
        return !closed;
    }

    /** One dig (as {@link CairnClient#dig}, without retries). */
    public CompletableFuture<DigResult> dig(DigRequest req) {
        return request(req.toOpJson()).thenApply(m -> DigResult.from(result(m)));
    }

    /** One hint (as {@link CairnClient#hint}). */
    public CompletableFuture<HintReply> hint(HintRequest req) {
        return request(req.toOpJson()).thenApply(m -> HintReply.from(result(m)));
    }

    /** One tick of positions (as {@link CairnClient#positions}). */
    public CompletableFuture<PositionsReply> positions(PositionsRequest req) {
        return request(req.toOpJson()).thenApply(m -> PositionsReply.from(result(m)));
    }

    /** Many ops in one frame; one {@link OpResult} per op, in order. */
    public CompletableFuture<List<OpResult>> batch(List<? extends Op> ops) {
        List<Op> copy = List.copyOf(ops);
        List<Object> wire = new ArrayList<>(copy.size());
        for (Op op : copy) wire.add(op.toOpJson());
        Map<String, Object> frame = new LinkedHashMap<>();
        frame.put("ops", wire);
        return request(frame).thenApply(m -> {
            failIfError(m);
            return CairnClient.results(copy, m.get("results"));
        });
    }

    /**
     * Subscribes to {@code hunt}'s events (null: every hunt) after event id {@code after}; they are
     * pushed to the listener. Completes with whether the server still had every event after
     * {@code after} (false: the listener's {@link EventListener#onGap} was called too).
     */
    public CompletableFuture<Boolean> subscribe(String hunt, long after) {
        Map<String, Object> frame = new LinkedHashMap<>();
        frame.put("op", "subscribe");
        frame.put("hunt", hunt);
        frame.put("after", after);
        if (after > lastId) lastId = after;
        return request(frame).thenApply(m -> {
            boolean complete = Wire.bool(result(m), "complete");
            subscribedHunt = hunt;
            subscribed = true;
            if (!complete) EventStream.safely(() -> listener.onGap(after));
            return complete;
        });
    }

    /** Stops the pushed events. */
    public CompletableFuture<Void> unsubscribe() {
        subscribed = false;
        return request(Map.of("op", "unsubscribe")).thenApply(m -> {
            result(m);
            return null;
        });
    }

    /** The player's pending grants. */
    public CompletableFuture<List<Grant>> grants(String player) {
        return request(Map.of("op", "grants", "player", player)).thenApply(m -> Wire.list(result(m), "grants", Grant::from));
    }

    /** Marks a grant delivered (idempotent). */
    public CompletableFuture<Grant> ack(String grantId) {
        return request(Map.of("op", "ack", "grant_id", grantId)).thenApply(m -> Grant.from(result(m)));
    }

    /** The player logged out (as {@link CairnClient#leave}): their position is forgotten, claims and grants stay. */
    public CompletableFuture<Void> leave(String player) {
        return request(Map.of("op", "leave", "player", player)).thenApply(m -> {
            result(m);
            return null;
        });
    }

    /** A round trip: completes when the server answers. */
    public CompletableFuture<Void> ping() {
        return request(Map.of("op", "ping")).thenApply(m -> {
            result(m);
            return null;
        });
    }

    /** Closes the session; pending calls fail with {@link CairnException#CLOSED}. */
    @Override
    public void close() {
        WebSocket w = ws;
        if (w != null && !closed) {
            synchronized (sendLock) {
                sending = sending.handle((x, e) -> null).thenCompose(x -> w.sendClose(WebSocket.NORMAL_CLOSURE, "bye"));
            }
            w.request(1); // read on until the server's close frame arrives
        }
        shut(new CairnException(0, CairnException.CLOSED, "the session was closed", null, null, null));
    }

    // ---- plumbing ---------------------------------------------------------------------------------------

    private CompletableFuture<Map<String, Object>> request(Map<String, Object> body) {
        if (closed) return CompletableFuture.failedFuture(closeCause);
        long id = ids.incrementAndGet();
        Map<String, Object> frame = new LinkedHashMap<>();
        frame.put("id", id);
        frame.putAll(body);
        String text = Json.write(frame);
        CompletableFuture<Map<String, Object>> reply = new CompletableFuture<>();
        pending.put(id, new Pending(reply));
        if (closed) fail(id, closeCause); // closed while registering: shut() may have missed it
        // One frame at a time: java.net.http.WebSocket refuses a send while another is outstanding.
        synchronized (sendLock) {
            sending = sending.handle((x, e) -> null).thenCompose(x -> ws.sendText(text, true)).whenComplete((x, e) -> {
                if (e != null) fail(id, CairnClient.transportError(e));
            });
        }
        long ms = client.requestTimeout().toMillis();
        return reply.orTimeout(ms, TimeUnit.MILLISECONDS).handle((m, e) -> {
            pending.remove(id);
            if (e == null) return m;
            Throwable c = e instanceof java.util.concurrent.CompletionException && e.getCause() != null ? e.getCause() : e;
            if (c instanceof TimeoutException) throw new CairnException(0, CairnException.TIMEOUT, "no reply within " + ms + " ms", null, null, c);
            if (c instanceof CairnException ce) throw ce;
            throw CairnClient.transportError(c);
        });
    }

    private void fail(long id, CairnException e) {
        Pending p = pending.remove(id);
        if (p != null) p.reply().completeExceptionally(e);
    }

    private static void failIfError(Map<String, Object> m) {
        Map<String, Object> e = Wire.obj(m, "error");
        if (e != null) throw CairnException.of(0, e, null);
    }

    private static Map<String, Object> result(Map<String, Object> m) {
        failIfError(m);
        Object r = m.get("result");
        return r instanceof Map<?, ?> ? Wire.obj(r) : Map.of();
    }

    private synchronized void shut(CairnException why) {
        if (closed) return;
        closeCause = why;
        closed = true;
        for (Long id : List.copyOf(pending.keySet())) fail(id, why);
        EventStream.safely(() -> listener.onDisconnected(why));
    }

    private void frame(String text) {
        Map<String, Object> m = Wire.obj(Json.parse(text));
        if (m.get("event") instanceof Map<?, ?> raw) {
            Event e = Event.from(Wire.obj(raw));
            if (e.id() > lastId) {
                lastId = e.id();
                EventStream.safely(() -> listener.onEvent(e));
            }
        } else if (m.get("dropped") != null) {
            // Fell behind and was cut off: subscribe again from the last event delivered.
            if (subscribed) subscribe(subscribedHunt, lastId);
        } else if (m.get("id") instanceof Number n) {
            Pending p = pending.get(n.longValue());
            if (p != null) p.reply().complete(m);
        }
    }

    private final class Receiver implements WebSocket.Listener {
        private final StringBuilder parts = new StringBuilder();

        @Override
        public void onOpen(WebSocket webSocket) {
            EventStream.safely(listener::onConnected);
            webSocket.request(1);
        }

        @Override
        public CompletionStage<?> onText(WebSocket webSocket, CharSequence data, boolean last) {
            parts.append(data);
            if (last) {
                String text = parts.toString();
                parts.setLength(0);
                try {
                    frame(text);
                } catch (RuntimeException e) {
                    shut(new CairnException(0, "bad_reply", "bad session frame: " + e.getMessage(), null, null, e));
                    webSocket.abort();
                    return null;
                }
            }
            webSocket.request(1);
            return null;
        }

        @Override
        public CompletionStage<?> onClose(WebSocket webSocket, int statusCode, String reason) {
            shut(statusCode == 4401
                    ? new CairnException(401, "unauthorized", "the session's key was refused", null, null, null)
                    : new CairnException(0, CairnException.CLOSED, "session closed by the server: " + statusCode + " " + reason, null, null, null));
            return null;
        }

        @Override
        public void onError(WebSocket webSocket, Throwable error) {
            shut(new CairnException(0, CairnException.CLOSED, "session lost: " + error, null, null, error));
        }
    }
}
