package dev.cairn.client;

import java.io.File;
import java.io.IOException;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A real {@code cairn serve} on a spare port, for the tests: {@link #kill()} is SIGKILL (kill -9),
 * {@link #start()} starts it again on the same port and data directory.
 * The Python with Cairn installed comes from the system property {@code cairn.python}.
 */
final class TestServer implements AutoCloseable {
    static final String ADMIN = "java-admin-key-for-tests";
    static final String GAME = "java-game-key-for-tests";
    static final String SMALL_WORLD = """
            [worlds.overworld]
            seed = 3
            size = 1024
            density = 1.0

            [[landmarks]]
            name = "the Old Mill"
            pos = [120, 70, -40]
            """;

    final Path dir;
    final int port;
    private final Path config;
    private final Path log;
    private Process proc;

    TestServer() throws IOException {
        this(SMALL_WORLD);
    }

    TestServer(String config) throws IOException {
        this.dir = Files.createTempDirectory("cairn-java-");
        try (ServerSocket s = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            this.port = s.getLocalPort();
        }
        this.config = dir.resolve("cairn.toml");
        Files.writeString(this.config, config);
        this.log = dir.resolve("serve.log");
        start();
    }

    String url() {
        return "http://127.0.0.1:" + port;
    }

    CairnClient client(String key) {
        return CairnClient.builder(url()).apiKey(key).build();
    }

    CairnClient game() {
        return client(GAME);
    }

    CairnClient admin() {
        return client(ADMIN);
    }

    synchronized void start() throws IOException {
        String python = System.getProperty("cairn.python", "python3");
        String repo = System.getProperty("cairn.repo", "../..");
        List<String> cmd = new ArrayList<>(List.of(python, "-m", "cairn", "serve", "--config", config.toString(),
                "--port", Integer.toString(port), "--data-dir", dir.resolve("data").toString()));
        ProcessBuilder pb = new ProcessBuilder(cmd).directory(new File(repo)).redirectErrorStream(true)
                .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()));
        pb.environment().put("CAIRN_ADMIN_KEY", ADMIN);
        pb.environment().put("CAIRN_GAME_KEY", GAME);
        proc = pb.start();
        HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(1)).build();
        long deadline = System.nanoTime() + Duration.ofSeconds(90).toNanos();
        while (System.nanoTime() < deadline) {
            if (!proc.isAlive()) throw new IllegalStateException("cairn serve exited with " + proc.exitValue() + ":\n" + tail());
            try {
                HttpRequest r = HttpRequest.newBuilder(URI.create(url() + "/readyz")).timeout(Duration.ofSeconds(1)).build();
                if (http.send(r, HttpResponse.BodyHandlers.discarding()).statusCode() == 200) return;
            } catch (IOException e) {
                // not listening yet
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException(e);
            }
            sleep(50);
        }
        throw new IllegalStateException("cairn serve did not become ready:\n" + tail());
    }

    /** kill -9 of the server process (Process.destroyForcibly is SIGKILL on Unix). */
    synchronized void kill() throws InterruptedException {
        if (proc != null) {
            proc.destroyForcibly();
            proc.waitFor();
            proc = null;
        }
    }

    String tail() {
        try {
            String s = Files.readString(log);
            return s.substring(Math.max(0, s.length() - 3000));
        } catch (IOException e) {
            return "(no log: " + e + ")";
        }
    }

    @Override
    public void close() throws InterruptedException {
        kill();
    }

    static void sleep(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    /** The hunt spec of the end-to-end tests, with overrides. */
    static Map<String, Object> spec(String id, Object... kv) {
        Map<String, Object> spec = new LinkedHashMap<>();
        spec.put("id", id);
        spec.put("name", "Java");
        spec.put("area", Map.of("min", List.of(-400, -64, -400), "max", List.of(400, 320, 400)));
        spec.put("treasures", 10);
        spec.put("spawn", Map.of("tags_any", List.of("surface"), "min_spacing", 8));
        spec.put("hints", Map.of("cooldown", "0s"));
        spec.put("duration", "1h");
        for (int i = 0; i < kv.length; i += 2) spec.put((String) kv[i], kv[i + 1]);
        return spec;
    }
}
