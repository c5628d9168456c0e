package dev.cairn.client;

import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Executors;
import java.util.function.Function;

/** A scripted HTTP server that records what it is sent: for retry and batching rules a real server cannot be made to show. */
final class FakeServer implements AutoCloseable {
    /** One request as received, with the time it arrived. */
    record Seen(String method, String path, String body, long nanos) {}

    /** A scripted reply (null from the script: the connection is dropped without one). */
    record Reply(int status, String body, String retryAfter) {}

    final List<Seen> seen = new CopyOnWriteArrayList<>();
    private final HttpServer http;

    FakeServer(Function<Seen, Reply> script) throws IOException {
        http = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
        http.setExecutor(Executors.newCachedThreadPool());
        http.createContext("/", ex -> {
            String body = new String(ex.getRequestBody().readAllBytes(), StandardCharsets.UTF_8);
            Seen s = new Seen(ex.getRequestMethod(), ex.getRequestURI().toString(), body, System.nanoTime());
            seen.add(s);
            Reply r = script.apply(s);
            if (r == null) { // no reply at all: the connection is dropped
                ex.close();
                return;
            }
            byte[] out = r.body().getBytes(StandardCharsets.UTF_8);
            ex.getResponseHeaders().add("Content-Type", "application/json");
            if (r.retryAfter() != null) ex.getResponseHeaders().add("Retry-After", r.retryAfter());
            ex.sendResponseHeaders(r.status(), out.length);
            try (OutputStream o = ex.getResponseBody()) {
                o.write(out);
            }
        });
        http.start();
    }

    String url() {
        return "http://127.0.0.1:" + http.getAddress().getPort();
    }

    @Override
    public void close() {
        http.stop(0);
    }
}
