package dev.cairn.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/** Which calls are retried, how, and that a retried dig keeps its request id. */
class RetryTest {
    static final String MISS = "{\"result\":\"miss\",\"temperature\":\"cold\"}";
    static final String UNAVAILABLE = "{\"error\":{\"code\":\"store_unavailable\",\"message\":\"store down\"}}";
    static final BlockPos P = new BlockPos(0, 70, 0);

    static CairnClient client(FakeServer s) {
        return CairnClient.builder(s.url()).apiKey("k").backoff(Duration.ofMillis(20), Duration.ofMillis(50)).build();
    }

    @Test
    void a503IsRetriedWithTheSameBodyAfterRetryAfter() throws Exception {
        AtomicInteger n = new AtomicInteger();
        try (FakeServer s = new FakeServer(seen -> n.incrementAndGet() == 1
                ? new FakeServer.Reply(503, UNAVAILABLE, "1") : new FakeServer.Reply(200, MISS, null))) {
            DigRequest d = DigRequest.of("h", "Steve", P, P);
            assertEquals("miss", client(s).blocking().dig(d).result());
            assertEquals(2, s.seen.size());
            assertEquals(s.seen.get(0).body(), s.seen.get(1).body(), "the retry is the very same dig");
            assertTrue(s.seen.get(1).body().contains("\"request_id\":\"" + d.requestId() + "\""));
            long gapMs = (s.seen.get(1).nanos() - s.seen.get(0).nanos()) / 1_000_000;
            assertTrue(gapMs >= 950, "Retry-After: 1 honoured, retried after " + gapMs + " ms");
        }
    }

    @Test
    void aRetryAfterBeyondTheBudgetFailsAtOnce() throws Exception {
        try (FakeServer s = new FakeServer(seen -> new FakeServer.Reply(503, UNAVAILABLE, "60"))) {
            CairnClient c = CairnClient.builder(s.url()).retryFor(Duration.ofSeconds(5)).build();
            long t0 = System.nanoTime();
            CairnException e = assertThrows(CairnException.class, () -> c.blocking().ack("g_1"));
            assertEquals("store_unavailable", e.code());
            assertEquals(503, e.status());
            assertEquals(60.0, e.retryAfter());
            assertEquals(1, s.seen.size());
            assertTrue((System.nanoTime() - t0) / 1_000_000 < 3000);
        }
    }

    @Test
    void clientErrorsAreNotRetried() throws Exception {
        String body = "{\"error\":{\"code\":\"rate_limited\",\"message\":\"slow down\",\"retry_after\":0.25}}";
        try (FakeServer s = new FakeServer(seen -> new FakeServer.Reply(429, body, "1"))) {
            CairnException e = assertThrows(CairnException.class, () -> client(s).blocking().dig(DigRequest.of("h", "Steve", P, P)));
            assertEquals("rate_limited", e.code());
            assertEquals(0.25, e.retryAfter(), "the body's retry_after is more precise than the header");
            assertEquals(1, s.seen.size());
        }
    }

    @Test
    void positionsAndHuntCreationAreNotRetriedButAcksAndReadsAre() throws Exception {
        try (FakeServer s = new FakeServer(seen -> new FakeServer.Reply(503, UNAVAILABLE, null))) {
            CairnClient c = CairnClient.builder(s.url()).retryFor(Duration.ofMillis(400)).backoff(Duration.ofMillis(20), Duration.ofMillis(40)).build();
            assertThrows(CairnException.class, () -> c.blocking().positions("overworld", List.of(new PositionUpdate("a", P, false))));
            assertEquals(1, s.seen.size(), "positions are sent once");
            assertThrows(CairnException.class, () -> c.blocking().createHunt(TestServer.spec("x")));
            assertEquals(2, s.seen.size(), "a hunt is created once");
            assertThrows(CairnException.class, () -> c.blocking().batch(List.of(new PositionsRequest("overworld", List.of()))));
            assertEquals(3, s.seen.size(), "a batch with positions is sent once");
            assertThrows(CairnException.class, () -> c.blocking().ack("g_1"));
            int acks = s.seen.size() - 3;
            assertTrue(acks >= 3, "an ack is retried, sent " + acks + " times");
            assertTrue(s.seen.stream().skip(3).allMatch(x -> x.path().equals("/v1/grants/g_1/ack")));
        }
    }

    @Test
    void aProxysBadGatewayIsRetriedAndNamedByItsStatus() throws Exception {
        AtomicInteger n = new AtomicInteger();
        try (FakeServer s = new FakeServer(seen -> n.incrementAndGet() <= 2
                ? new FakeServer.Reply(n.get() == 1 ? 502 : 504, "<html>bad gateway</html>", null) : new FakeServer.Reply(200, MISS, null))) {
            assertEquals("miss", client(s).blocking().dig(DigRequest.of("h", "Steve", P, P)).result());
            assertEquals(3, s.seen.size());
        }
        try (FakeServer s = new FakeServer(seen -> new FakeServer.Reply(502, "<html>bad gateway</html>", null))) {
            CairnClient c = CairnClient.builder(s.url()).retryFor(Duration.ofMillis(300)).backoff(Duration.ofMillis(20), Duration.ofMillis(40)).build();
            CairnException e = assertThrows(CairnException.class, () -> c.blocking().hunts());
            assertEquals("http_502", e.code());
            assertEquals(502, e.status());
            assertTrue(s.seen.size() > 1);
        }
    }

    @Test
    void aDigSentWhileTheServerIsDownIsAnsweredAfterTheRestartUnderItsId() throws Exception {
        try (TestServer server = new TestServer()) {
            CairnClient admin = server.admin();
            admin.blocking().createHunt(TestServer.spec("restart"));
            BlockPos t = admin.blocking().revealHunt("restart").treasures().get(0).pos();
            BlockPos stand = new BlockPos(t.x() + 1, t.y(), t.z());
            CairnClient game = CairnClient.builder(server.url()).apiKey(TestServer.GAME).retryFor(Duration.ofSeconds(90)).build();
            server.kill();
            DigRequest d = DigRequest.of("restart", "Phoenix", stand, t);
            CompletableFuture<DigResult> pending = game.dig(d);
            TestServer.sleep(300);
            assertTrue(!pending.isDone(), "the dig waits for the server");
            server.start();
            DigResult r = CairnClient.await(pending);
            assertTrue(r.found(), "the dig was not lost: " + r);
            assertEquals(r.claim(), game.blocking().dig(d).claim(), "and it is the one claim of its request id");
            server.kill();
            server.start();
            assertEquals(r.claim(), game.blocking().dig(d).claim(), "the claim survived kill -9");
        }
    }
}
