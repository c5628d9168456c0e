package dev.cairn.client;

import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.Flow;

/**
 * A subscription to {@code GET /v1/events} (server-sent events) that survives server restarts: on
 * any disconnect it reconnects with backoff and resumes after the last event id it delivered, so
 * the listener sees every event once, in order (or {@link EventListener#onGap} when the server no
 * longer has some). Made by {@link CairnClient#events}; stop it with {@link #close()}.
 */
public final class EventStream implements AutoCloseable {
    // The server sends a keep-alive every 15 s: a connection silent for longer is dead (half-open).
    private static final Duration IDLE = Duration.ofSeconds(45);

    private static final System.Logger LOG = System.getLogger("dev.cairn.client");

    private final CairnClient client;
    private final String hunt;
    private final EventListener listener;
    private volatile long lastId;
    private volatile boolean closed;
    private volatile Flow.Subscription current;
    private volatile long lastData = System.nanoTime();
    private volatile int failures;

    EventStream(CairnClient client, String hunt, long after, EventListener listener) {
        this.client = client;
        this.hunt = hunt;
        this.lastId = after;
        this.listener = listener;
    }

    /** The id of the last event delivered (where a reconnect resumes). */
    public long lastEventId() {
        return lastId;
    }

    /** Stops the stream: no reconnect follows, and no event is delivered after the current one. */
    @Override
    public void close() {
        closed = true;
        Flow.Subscription s = current;
        if (s != null) s.cancel();
    }

    void connect() {
        client.executor().execute(this::open); // off the caller's thread: sendAsync may resolve the host name there
    }

    private void open() {
        if (closed) return;
        String q = "v1/events?after=" + lastId + (hunt != null ? "&hunt=" + CairnClient.seg(hunt) : "");
        HttpRequest.Builder b = HttpRequest.newBuilder(client.uri(q)).header("Accept", "text/event-stream").GET();
        if (client.authorization() != null) b.header("Authorization", client.authorization());
        Lines lines = new Lines();
        HttpResponse.BodyHandler<Void> handler = info -> info.statusCode() == 200
                ? HttpResponse.BodySubscribers.fromLineSubscriber(lines, l -> null, StandardCharsets.UTF_8, null)
                : HttpResponse.BodySubscribers.replacing(null);
        client.http().sendAsync(b.build(), handler).whenComplete((resp, err) -> {
            if (err != null || resp.statusCode() == 200) {
                lines.ended(err); // a no-op when the body's end already reconnected
                return;
            }
            int st = resp.statusCode();
            CairnException e = new CairnException(st, "http_" + st, "event stream refused with HTTP " + st, null, null, null);
            if (st >= 400 && st < 500 && st != 429) {
                closed = true; // a bad key or a bad hunt id: reconnecting cannot help
                listener.onDisconnected(e);
                return;
            }
            lines.ended(e);
        });
    }

    private void reconnect(Throwable cause) {
        if (closed) return;
        safely(() -> listener.onDisconnected(cause));
        long wait = client.backoffMillis(failures++);
        client.after(wait).execute(this::open);
    }

    /** Runs a listener call; a listener's exception is logged and never breaks the stream. */
    static void safely(Runnable call) {
        try {
            call.run();
        } catch (RuntimeException e) {
            LOG.log(System.Logger.Level.WARNING, "Cairn event listener threw", e);
        }
    }

    /** One connection's lines, parsed as SSE: fields until a blank line, which dispatches. */
    private final class Lines implements Flow.Subscriber<String> {
        private Flow.Subscription sub;
        private boolean done;
        private String type = "message";
        private final StringBuilder data = new StringBuilder();

        void cancel() {
            Flow.Subscription s = sub;
            if (s != null) s.cancel();
        }

        @Override
        public void onSubscribe(Flow.Subscription s) {
            sub = s;
            current = s;
            lastData = System.nanoTime();
            if (closed) {
                s.cancel();
                return;
            }
            failures = 0;
            s.request(Long.MAX_VALUE);
            watch(s);
            safely(listener::onConnected);
        }

        private void watch(Flow.Subscription s) {
            client.after(IDLE.toMillis() / 3).execute(() -> {
                if (done || closed) return;
                if (System.nanoTime() - lastData > IDLE.toNanos()) {
                    s.cancel();
                    ended(new CairnException(0, CairnException.TIMEOUT, "event stream silent for " + IDLE.toSeconds() + " s", null, null, null));
                } else watch(s);
            });
        }

        @Override
        public void onNext(String line) {
            lastData = System.nanoTime();
            if (line.isEmpty()) {
                dispatch();
                return;
            }
            if (line.startsWith(":")) return;
            int colon = line.indexOf(':');
            String field = colon < 0 ? line : line.substring(0, colon);
            String value = colon < 0 ? "" : line.substring(colon + 1);
            if (value.startsWith(" ")) value = value.substring(1);
            if (field.equals("event")) type = value;
            else if (field.equals("data")) {
                if (data.length() > 0) data.append('\n');
                data.append(value);
            }
        }

        private void dispatch() {
            String t = type;
            String d = data.toString();
            type = "message";
            data.setLength(0);
            if (d.isEmpty() || closed) return;
            Map<String, Object> m = Wire.obj(Json.parse(d));
            switch (t) {
                case "gap" -> safely(() -> listener.onGap(Wire.lng(m, "after", lastId)));
                case "dropped" -> { } // the server cut us off for falling behind; the reconnect resumes
                default -> {
                    Event e = Event.from(m);
                    if (e.id() <= lastId) return; // already delivered before a reconnect
                    lastId = e.id();
                    safely(() -> listener.onEvent(e));
                }
            }
        }

        @Override
        public void onError(Throwable t) {
            ended(t);
        }

        @Override
        public void onComplete() {
            ended(null);
        }

        synchronized void ended(Throwable t) {
            if (done) return;
            done = true;
            reconnect(t);
        }
    }
}
