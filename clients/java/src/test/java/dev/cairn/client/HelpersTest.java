package dev.cairn.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/** The plugin helpers: the per-tick position batcher and the deliver-then-ack grant deliverer. */
class HelpersTest {
    static final String NO_EVENTS = "{\"events\":[]}";

    @SuppressWarnings("unchecked")
    static List<Map<String, Object>> updates(FakeServer.Seen s) {
        return (List<Map<String, Object>>) Wire.obj(Json.parse(s.body())).get("updates");
    }

    static String world(FakeServer.Seen s) {
        return Wire.str(Wire.obj(Json.parse(s.body())), "world");
    }

    @Test
    void oneCallPerWorldPerTickWithTheLastPositionAndStickyTeleports() throws Exception {
        try (FakeServer s = new FakeServer(seen -> new FakeServer.Reply(200, NO_EVENTS, null))) {
            CairnClient c = CairnClient.builder(s.url()).build();
            List<PositionsReply> replies = new CopyOnWriteArrayList<>();
            PositionBatcher b = new PositionBatcher(c, replies::add, e -> { throw new AssertionError(e); });
            b.move("overworld", "A", new BlockPos(0, 70, 0));
            b.move("overworld", "B", new BlockPos(5, 70, 5));
            b.move("the_nether", "C", new BlockPos(1, 40, 1));
            b.flush().get(10, TimeUnit.SECONDS);
            assertEquals(2, s.seen.size(), "one call per world");
            assertEquals(2, replies.size());
            assertEquals(0, b.pendingCount());

            s.seen.clear();
            b.move("overworld", "A", new BlockPos(1, 70, 0));
            b.teleport("overworld", "A", new BlockPos(500, 70, 0));
            b.move("overworld", "A", new BlockPos(501, 70, 0)); // walked on after the teleport, in the same tick
            b.move("overworld", "B", new BlockPos(6, 70, 5));
            b.move("overworld", "C", new BlockPos(8, 70, 8)); // C came through a portal from the nether
            b.flush().get(10, TimeUnit.SECONDS);
            assertEquals(1, s.seen.size());
            List<Map<String, Object>> u = updates(s.seen.get(0));
            assertEquals(3, u.size());
            assertEquals(Map.of("player", "A", "pos", List.of(501L, 70L, 0L), "teleport", true), u.get(0), "last position, teleport kept");
            assertEquals(Map.of("player", "B", "pos", List.of(6L, 70L, 5L)), u.get(1), "a walk is not marked");
            assertEquals(Map.of("player", "C", "pos", List.of(8L, 70L, 8L), "teleport", true), u.get(2), "a change of world is a teleport");

            s.seen.clear();
            b.flush().get(10, TimeUnit.SECONDS);
            assertEquals(0, s.seen.size(), "a tick without moves sends nothing");
        }
    }

    @Test
    void ticksNeverOverlapAndAFailedTickIsMergedIntoTheNext() throws Exception {
        CountDownLatch release = new CountDownLatch(1);
        AtomicInteger calls = new AtomicInteger();
        try (FakeServer s = new FakeServer(seen -> {
            int n = calls.incrementAndGet();
            if (n == 1) {
                try {
                    release.await(10, TimeUnit.SECONDS);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
                return new FakeServer.Reply(503, RetryTest.UNAVAILABLE, null);
            }
            return new FakeServer.Reply(200, NO_EVENTS, null);
        })) {
            CairnClient c = CairnClient.builder(s.url()).build();
            List<CairnException> errors = new CopyOnWriteArrayList<>();
            PositionBatcher b = new PositionBatcher(c, r -> { }, errors::add);
            b.teleport("overworld", "A", new BlockPos(100, 70, 0));
            b.move("overworld", "B", new BlockPos(0, 70, 0));
            CompletableFuture<Void> first = b.flush();
            b.move("overworld", "A", new BlockPos(101, 70, 0));
            assertEquals(first, b.flush(), "the next tick waits while a call is in flight");
            assertEquals(1, b.pendingCount());
            release.countDown();
            first.get(10, TimeUnit.SECONDS);
            assertEquals(1, errors.size());
            assertEquals(503, errors.get(0).status());
            assertFalse(errors.get(0).transport(), "a 503 reply is not merged: the server saw the tick");

            s.seen.clear();
            b.flush().get(10, TimeUnit.SECONDS);
            List<Map<String, Object>> u = updates(s.seen.get(0));
            assertEquals(List.of(Map.of("player", "A", "pos", List.of(101L, 70L, 0L))), u);
        }
    }

    @Test
    void aTickThatGotNoReplyIsMergedIntoTheNextTeleportMarkIncluded() throws Exception {
        AtomicInteger calls = new AtomicInteger();
        try (FakeServer s = new FakeServer(seen -> calls.incrementAndGet() == 1 ? null : new FakeServer.Reply(200, NO_EVENTS, null))) {
            List<CairnException> errors = new CopyOnWriteArrayList<>();
            PositionBatcher b = new PositionBatcher(CairnClient.builder(s.url()).build(), r -> { }, errors::add);
            b.teleport("overworld", "A", new BlockPos(100, 70, 0));
            b.move("overworld", "B", new BlockPos(0, 70, 0));
            b.flush().get(10, TimeUnit.SECONDS);
            assertEquals(1, errors.size());
            assertTrue(errors.get(0).transport(), errors.get(0).toString());
            assertEquals(2, b.pendingCount(), "the lost tick waits for the next one");
            b.move("overworld", "A", new BlockPos(102, 70, 0));
            b.forget("B"); // B logged out meanwhile
            b.flush().get(10, TimeUnit.SECONDS);
            assertEquals(2, s.seen.size());
            assertEquals(List.of(Map.of("player", "A", "pos", List.of(102L, 70L, 0L), "teleport", true)), updates(s.seen.get(1)),
                    "the newer position, still marked as a teleport");
        }
    }

    @Test
    void againstARealServerATeleportIsAcceptedAndEntersTheFence() throws Exception {
        try (TestServer server = new TestServer()) {
            CairnClient admin = server.admin();
            admin.blocking().createHunt(TestServer.spec("tp"));
            BlockPos t = admin.blocking().revealHunt("tp").treasures().get(0).pos();
            List<PositionsReply> replies = new CopyOnWriteArrayList<>();
            List<CairnException> errors = new CopyOnWriteArrayList<>();
            PositionBatcher b = new PositionBatcher(server.game(), replies::add, errors::add);
            b.move("overworld", "Pearl", new BlockPos(t.x() + 300, t.y(), t.z()));
            b.flush().get(10, TimeUnit.SECONDS);
            b.teleport("overworld", "Pearl", new BlockPos(t.x() + 1, t.y(), t.z()));
            b.flush().get(10, TimeUnit.SECONDS);
            assertEquals(List.of(), errors);
            assertTrue(replies.get(1).events().stream().anyMatch(e -> e.type().equals("proximity.enter")));
            assertTrue(replies.get(1).errors().isEmpty());
        }
    }

    @Test
    void grantsAreGivenThenAckedOnceEvenWhenAskedTwiceAtOnce() throws Exception {
        try (TestServer server = new TestServer()) {
            CairnClient admin = server.admin();
            CairnClient game = server.game();
            admin.blocking().createHunt(TestServer.spec("gifts"));
            List<BlockPos> ts = new ArrayList<>();
            for (Hunt.Treasure t : admin.blocking().revealHunt("gifts").treasures()) ts.add(t.pos());
            for (int i = 0; i < 3; i++) {
                BlockPos t = ts.get(i);
                assertTrue(game.blocking().dig(DigRequest.of("gifts", "Lucky", new BlockPos(t.x(), t.y(), t.z() + 1), t)).found());
                if (i == 0) game.blocking().positions("overworld", List.of(new PositionUpdate("Lucky", ts.get(1), true)));
                if (i == 1) game.blocking().positions("overworld", List.of(new PositionUpdate("Lucky", ts.get(2), true)));
            }
            Map<String, Integer> given = new ConcurrentHashMap<>();
            AtomicInteger refuse = new AtomicInteger(1); // the first delivery fails: inventory full
            GrantDeliverer d = new GrantDeliverer(game, g -> CompletableFuture.supplyAsync(() -> {
                if (refuse.getAndDecrement() > 0) return false;
                TestServer.sleep(50); // the game's main thread is busy; a second caller arrives meanwhile
                given.merge(g.grantId(), 1, Integer::sum);
                return true;
            }));
            assertEquals(2, d.deliverPending("Lucky").get(30, TimeUnit.SECONDS), "one grant could not be given");
            assertEquals(1, game.blocking().grants("Lucky").size(), "it stays pending");

            CompletableFuture<Integer> a = d.deliverPending("Lucky");
            CompletableFuture<Integer> b = d.deliverPending("Lucky");
            assertEquals(1, a.get(30, TimeUnit.SECONDS) + b.get(30, TimeUnit.SECONDS), "two callers, one delivery");
            assertEquals(3, given.size());
            assertTrue(given.values().stream().allMatch(n -> n == 1), "each grant given once: " + given);
            assertTrue(game.blocking().grants("Lucky").isEmpty());
            assertEquals(0, d.deliverPending("Lucky").get(30, TimeUnit.SECONDS));
            assertEquals(0, d.unackedCount());
        }
    }

    @Test
    void aFailedAckIsRetriedWithoutGivingTheItemsAgain() throws Exception {
        AtomicInteger acks = new AtomicInteger();
        String grant = "{\"grant_id\":\"g_1\",\"player\":\"P\",\"claim_id\":\"c_1\",\"items\":[],\"status\":\"pending\"}";
        try (FakeServer s = new FakeServer(seen -> {
            if (seen.path().endsWith("/grants")) return new FakeServer.Reply(200, "{\"grants\":[" + grant + "]}", null);
            return acks.incrementAndGet() == 1
                    ? new FakeServer.Reply(500, "{\"error\":{\"code\":\"internal\",\"message\":\"internal error\"}}", null)
                    : new FakeServer.Reply(200, grant.replace("pending", "acked"), null);
        })) {
            AtomicInteger gives = new AtomicInteger();
            GrantDeliverer d = new GrantDeliverer(CairnClient.builder(s.url()).build(), g -> {
                gives.incrementAndGet();
                return CompletableFuture.completedFuture(true);
            });
            assertEquals(0, d.deliverPending("P").get(10, TimeUnit.SECONDS));
            assertEquals(1, d.unackedCount());
            assertEquals(1, d.deliverPending("P").get(10, TimeUnit.SECONDS));
            assertEquals(1, gives.get(), "given once, acked on the second try");
            assertEquals(2, acks.get());
            assertEquals(0, d.unackedCount());
        }
    }
}
