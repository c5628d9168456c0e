package dev.cairn.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.ServerSocket;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** Every HTTP route the client wraps, against a real `cairn serve`. */
class ClientTest {
    static TestServer server;
    static CairnClient game;
    static CairnClient admin;

    @BeforeAll
    static void start() throws Exception {
        server = new TestServer();
        game = server.game();
        admin = server.admin();
    }

    @AfterAll
    static void stop() throws Exception {
        server.close();
    }

    static BlockPos treasure(String hunt, int i) {
        return admin.blocking().revealHunt(hunt).treasures().get(i).pos();
    }

    static BlockPos offset(BlockPos p, int dx, int dy, int dz) {
        return new BlockPos(p.x() + dx, p.y() + dy, p.z() + dz);
    }

    @Test
    void huntsAreCreatedListedReadAndEnded() {
        assertTrue(game.blocking().ready());
        Hunt created = admin.blocking().createHunt(TestServer.spec("listed"));
        assertEquals("listed", created.id());
        assertTrue(created.active());
        assertEquals(10, created.treasuresTotal());
        assertEquals(10, created.treasures().size());
        assertNotNull(created.treasures().get(0).pos(), "the admin reply of a creation has positions");

        Hunt listed = game.blocking().hunts().stream().filter(h -> h.id().equals("listed")).findFirst().orElseThrow();
        assertEquals("overworld", listed.world());
        assertEquals(10, listed.treasuresLeft());
        assertNotNull(listed.startsAt());
        assertNotNull(listed.endsAt());

        Hunt one = game.blocking().hunt("listed");
        assertEquals(10, one.treasures().size());
        assertNull(one.treasures().get(0).pos(), "a game key never sees a position");
        assertEquals(created.treasures().get(0).pos(), admin.blocking().revealHunt("listed").treasures().get(0).pos());

        CairnException forbidden = assertThrows(CairnException.class, () -> game.blocking().revealHunt("listed"));
        assertEquals(403, forbidden.status());
        assertEquals("forbidden", forbidden.code());

        CairnException exists = assertThrows(CairnException.class, () -> admin.blocking().createHunt(TestServer.spec("listed")));
        assertEquals("hunt_exists", exists.code());
        assertEquals(409, exists.status());

        assertEquals("ended", admin.blocking().endHunt("listed").state());
        assertEquals("ended", admin.blocking().endHunt("listed").state(), "ending is idempotent");
        BlockPos p = new BlockPos(0, 70, 0);
        CairnException inactive = assertThrows(CairnException.class, () -> game.blocking().dig(DigRequest.of("listed", "Ender", p, p)));
        assertEquals("hunt_not_active", inactive.code());
    }

    @Test
    void digsMissFindAndReplayTheSameClaim() {
        admin.blocking().createHunt(TestServer.spec("digs"));
        BlockPos t = treasure("digs", 0);
        BlockPos stand = offset(t, 2, 0, 0);

        DigResult miss = game.blocking().dig(DigRequest.of("digs", "Steve", stand, offset(t, 3, 0, 0)));
        assertEquals("miss", miss.result());
        assertFalse(miss.found());
        assertNull(miss.claim());
        assertNotNull(miss.temperature());

        DigRequest hit = DigRequest.of("digs", "Steve", stand, t);
        DigResult found = game.blocking().dig(hit);
        assertTrue(found.found());
        Claim c = found.claim();
        assertEquals("Steve", c.player());
        assertEquals("digs#1", c.treasure());
        assertEquals(1.0, c.share());
        assertFalse(c.items().isEmpty());
        assertTrue(c.items().get(0).item().contains(":"));
        assertTrue(c.items().get(0).count() > 0);
        assertTrue(c.at().endsWith("Z"));

        DigResult replay = game.blocking().dig(hit);
        assertEquals(c, replay.claim(), "a replayed request id gets the same claim back");

        DigResult taken = game.blocking().dig(DigRequest.of("digs", "Taker", stand, t));
        assertEquals("taken", taken.result());
    }

    @Test
    void errorsCarryTheirCodeMessageAndField() {
        admin.blocking().createHunt(TestServer.spec("errors"));
        BlockPos p = new BlockPos(0, 70, 0);
        CairnException far = assertThrows(CairnException.class,
                () -> game.blocking().dig(DigRequest.of("errors", "Herobrine", p, offset(p, 20, 0, 0))));
        assertEquals(422, far.status());
        assertEquals("out_of_reach", far.code());
        assertEquals("at", far.field());
        assertTrue(far.getMessage().contains("reach"), far.getMessage());
        assertFalse(far.transport());

        CairnException missing = assertThrows(CairnException.class, () -> game.blocking().dig(DigRequest.of("no-such", "Herobrine", p, p)));
        assertEquals(404, missing.status());
        assertEquals("hunt_not_found", missing.code());

        CairnException badPlayer = assertThrows(CairnException.class,
                () -> game.blocking().dig(DigRequest.of("errors", "no spaces", p, p)));
        assertEquals("validation_error", badPlayer.code());
        assertEquals("player", badPlayer.field());

        CairnClient stranger = server.client("not-a-key");
        CairnException unauthorized = assertThrows(CairnException.class, () -> stranger.blocking().hunts());
        assertEquals(401, unauthorized.status());
        assertEquals("unauthorized", unauthorized.code());

        CairnException forbidden = assertThrows(CairnException.class, () -> game.blocking().createHunt(TestServer.spec("nope")));
        assertEquals("forbidden", forbidden.code());
    }

    @Test
    void hintsAndTheirCooldown() {
        admin.blocking().createHunt(TestServer.spec("hints", "hints", Map.of("cooldown", "30s")));
        HintRequest ask = HintRequest.of("hints", "Alex", new BlockPos(10, 70, 10));
        HintReply r = game.blocking().hint(ask);
        assertNotNull(r.hint().temperature());
        assertNotNull(r.hint().vertical());
        assertNotNull(r.hint().bearing());
        assertNotNull(r.hint().region());
        assertTrue(r.hint().region().minX() <= r.hint().region().maxX());
        assertNotNull(r.hint().riddle());
        assertEquals(30, r.nextHintIn());
        assertEquals(r, game.blocking().hint(ask), "a replayed request id gets the same hint");

        CairnException cool = assertThrows(CairnException.class,
                () -> game.blocking().hint(HintRequest.of("hints", "Alex", new BlockPos(10, 70, 10))));
        assertEquals(429, cool.status());
        assertEquals("hint_cooldown", cool.code());
        assertNotNull(cool.retryAfter());
        assertTrue(cool.retryAfter() > 0 && cool.retryAfter() <= 30, "retry_after " + cool.retryAfter());
    }

    @Test
    void positionsReportProximityEvents() {
        admin.blocking().createHunt(TestServer.spec("near"));
        BlockPos t = treasure("near", 0);
        PositionsReply far = game.blocking().positions("overworld", List.of(new PositionUpdate("Notch", offset(t, 200, 0, 0), true)));
        assertTrue(far.errors().isEmpty());
        PositionsReply near = game.blocking().positions("overworld", List.of(new PositionUpdate("Notch", offset(t, 1, 0, 0), true)));
        // Other tests' hunts share the world: pick this hunt's event.
        Event enter = near.events().stream().filter(e -> e.type().equals("proximity.enter") && e.hunt().equals("near"))
                .findFirst().orElseThrow();
        assertEquals("Notch", enter.dataString("player"));
        assertEquals("near#1", enter.dataString("treasure"));
        assertTrue(enter.id() > 0);

        CairnException world = assertThrows(CairnException.class,
                () -> game.blocking().positions("no-such-world", List.of(new PositionUpdate("Notch", t, false))));
        assertEquals("unknown_world", world.code());
    }

    @Test
    void leaveForgetsThePositionSoAFarMoveIsAccepted() {
        BlockPos a = new BlockPos(1000, 70, 1000);
        BlockPos b = new BlockPos(-5000, 70, -5000);
        game.blocking().positions("overworld", List.of(new PositionUpdate("Jeb", a, true)));
        assertEquals("implausible_movement", refusal(List.of(new PositionUpdate("Jeb", b, false))));
        game.blocking().leave("Jeb");
        assertNull(refusal(List.of(new PositionUpdate("Jeb", b, false))), "after leave, the next position comes from anywhere");
    }

    /** The code of the refusal of the (single) update, whether the server refuses the request or the update. */
    static String refusal(List<PositionUpdate> updates) {
        try {
            PositionsReply r = game.blocking().positions("overworld", updates);
            return r.errors().isEmpty() ? null : r.errors().get(0).error().code();
        } catch (CairnException e) {
            return e.code();
        }
    }

    @Test
    void batchGivesOneResultPerOpInOrder() {
        admin.blocking().createHunt(TestServer.spec("batch"));
        BlockPos t = treasure("batch", 1);
        BlockPos stand = offset(t, 0, 0, 2);
        List<Op> ops = List.of(
                new PositionsRequest("overworld", List.of(new PositionUpdate("Batcher", stand, true))),
                HintRequest.of("batch", "Batcher", stand),
                DigRequest.of("batch", "Batcher", stand, t),
                DigRequest.of("no-such-hunt", "Batcher", stand, t));
        List<OpResult> results = game.blocking().batch(ops);
        assertEquals(4, results.size());
        assertTrue(results.get(0).ok());
        assertNotNull(results.get(0).positions().events());
        assertNotNull(results.get(1).hint().hint().temperature());
        assertTrue(results.get(2).dig().found());
        assertEquals("batch#2", results.get(2).dig().claim().treasure());
        assertFalse(results.get(3).ok());
        assertEquals("hunt_not_found", results.get(3).error().code());
        assertThrows(CairnException.class, () -> results.get(3).dig());
        assertEquals(ops.get(2), results.get(2).op());

        // A batch of digs only is replay-safe: the same ops again give the same claim.
        List<OpResult> again = game.blocking().batch(List.of(ops.get(2)));
        assertEquals(results.get(2).dig().claim(), again.get(0).dig().claim());
    }

    @Test
    void grantsAreAckedOnceAndAckIsIdempotent() {
        admin.blocking().createHunt(TestServer.spec("grants"));
        BlockPos t = treasure("grants", 2);
        Claim c = game.blocking().dig(DigRequest.of("grants", "Granted", offset(t, 1, 0, 0), t)).claim();
        List<Grant> pending = game.blocking().grants("Granted");
        assertEquals(1, pending.size());
        Grant g = pending.get(0);
        assertEquals(c.claimId(), g.claimId());
        assertEquals("pending", g.status());
        assertEquals(c.items(), g.items());

        Grant acked = game.blocking().ack(g.grantId());
        assertEquals("acked", acked.status());
        assertEquals(g.grantId(), acked.grantId());
        assertEquals("acked", game.blocking().ack(g.grantId()).status(), "acking twice is safe");
        assertTrue(game.blocking().grants("Granted").isEmpty());

        CairnException unknown = assertThrows(CairnException.class, () -> game.blocking().ack("g_nope"));
        assertEquals("grant_not_found", unknown.code());
        assertEquals(404, unknown.status());
    }

    @Test
    void leaderboardsRankFinders() {
        admin.blocking().createHunt(TestServer.spec("board", "leaderboards", List.of("alltime")));
        BlockPos t = treasure("board", 0);
        game.blocking().dig(DigRequest.of("board", "Ranked", offset(t, 1, 0, 0), t));
        Leaderboard b = game.blocking().leaderboard("alltime", 5, "Ranked");
        assertEquals("alltime", b.board());
        Leaderboard.Standing me = b.records().stream().filter(s -> s.player().equals("Ranked")).findFirst().orElseThrow();
        assertTrue(me.rank() >= 1);
        assertTrue(me.score() > 0);
        CairnException none = assertThrows(CairnException.class, () -> game.blocking().leaderboard("nope", 5, null));
        assertEquals("board_not_found", none.code());
    }

    @Test
    void worldsAreRegisteredGivenSitesAndRetired() {
        World arena = admin.blocking().registerWorld("arena_1");
        assertEquals("arena_1", arena.world());
        assertTrue(arena.runtime());
        assertEquals(0, arena.sites());
        assertEquals(arena, admin.blocking().registerWorld("arena_1"), "registering is idempotent");

        StringBuilder ndjson = new StringBuilder();
        for (int i = 0; i < 40; i++) ndjson.append("{\"x\": ").append(i * 4).append(", \"y\": 64, \"z\": 0, \"tags\": [\"surface\"]}\n");
        World uploaded = admin.blocking().uploadSites("arena_1", ndjson.toString());
        assertEquals(40, uploaded.sites());
        assertTrue(uploaded.tags().contains("surface"));

        World listed = admin.blocking().worlds().stream().filter(w -> w.world().equals("arena_1")).findFirst().orElseThrow();
        assertEquals("upload", listed.source());
        assertEquals(40, listed.sites());
        assertTrue(admin.blocking().worlds().stream().anyMatch(w -> w.world().equals("overworld") && !w.runtime()));

        admin.blocking().createHunt(TestServer.spec("arena", "world", "arena_1", "treasures", 2,
                "area", Map.of("min", List.of(0, 0, -10), "max", List.of(200, 100, 10))));
        CairnException inUse = assertThrows(CairnException.class, () -> admin.blocking().retireWorld("arena_1"));
        assertEquals("world_in_use", inUse.code());
        admin.blocking().endHunt("arena");
        admin.blocking().retireWorld("arena_1");
        CairnException gone = assertThrows(CairnException.class, () -> game.blocking().positions("arena_1", List.of(new PositionUpdate("Z", new BlockPos(0, 64, 0), false))));
        assertEquals("unknown_world", gone.code());
        CairnException again = assertThrows(CairnException.class, () -> admin.blocking().retireWorld("arena_1"));
        assertEquals("world_not_found", again.code());
    }

    @Test
    void aDigOrHintMarkedAsATeleportIsNotAMovementFault() {
        admin.blocking().createHunt(TestServer.spec("warp"));
        BlockPos t = treasure("warp", 0);
        BlockPos far = offset(t, 3000, 0, 0);
        game.blocking().positions("overworld", List.of(new PositionUpdate("Warper", far, true)));
        BlockPos stand = offset(t, 1, 0, 0);
        CairnException walked = assertThrows(CairnException.class, () -> game.blocking().dig(DigRequest.of("warp", "Warper", stand, t)));
        assertEquals("implausible_movement", walked.code());
        assertEquals("pos", walked.field());
        DigRequest d = DigRequest.of("warp", "Warper", stand, t);
        assertTrue(game.blocking().dig(new DigRequest(d.hunt(), d.player(), d.pos(), d.at(), d.requestId(), true)).found());
        HintRequest h = HintRequest.of("warp", "Warper", far);
        assertNotNull(game.blocking().hint(new HintRequest(h.hunt(), h.player(), h.pos(), h.requestId(), true)).hint());
    }

    @Test
    void eachRefusedUpdateIsReportedAloneInThePositionsReply() {
        BlockPos a = new BlockPos(2000, 70, 2000);
        game.blocking().positions("overworld", List.of(new PositionUpdate("Solo", a, true)));
        PositionsReply r = game.blocking().positions("overworld", List.of(
                new PositionUpdate("Fine", a, true),
                new PositionUpdate("Solo", new BlockPos(-6000, 70, -6000), false)));
        assertEquals(1, r.errors().size());
        assertEquals(1, r.errors().get(0).index());
        assertEquals("implausible_movement", r.errors().get(0).error().code());
        assertEquals("updates[1].pos", r.errors().get(0).error().field());
    }

    @Test
    void callsReturnAtOnceAndFailAsUnreachableAfterTheirRetries() throws Exception {
        int port;
        try (ServerSocket s = new ServerSocket(0)) {
            port = s.getLocalPort(); // closed again: nothing listens there
        }
        CairnClient dead = CairnClient.builder("http://127.0.0.1:" + port).apiKey("k").retryFor(Duration.ofMillis(1500))
                .backoff(Duration.ofMillis(50), Duration.ofMillis(200)).build();
        BlockPos p = new BlockPos(0, 70, 0);
        long t0 = System.nanoTime();
        CompletableFuture<DigResult> f = dead.dig(DigRequest.of("h", "Steve", p, p));
        long returnedMs = (System.nanoTime() - t0) / 1_000_000;
        assertTrue(returnedMs < 500, "dig() returned after " + returnedMs + " ms");
        assertFalse(f.isDone(), "the dig is still being retried");
        CairnException e = assertThrows(CairnException.class, () -> CairnClient.await(f));
        long tookMs = (System.nanoTime() - t0) / 1_000_000;
        assertEquals(CairnException.UNREACHABLE, e.code());
        assertTrue(e.transport());
        assertTrue(tookMs >= 1000, "gave up after " + tookMs + " ms, before its retry budget");
        assertFalse(dead.blocking().ready(), "ready() answers false, it does not throw");
    }
}
