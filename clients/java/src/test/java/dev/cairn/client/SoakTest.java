package dev.cairn.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * 200 simulated players through the library while the server is killed with SIGKILL twice and
 * restarted: no dig lost, no claim duplicated, every grant given and acked once, and the event
 * subscriber sees every claim event once, without a gap.
 */
class SoakTest {
    static final int PLAYERS = 200;
    static final int TREASURES = 60;
    static final long RUN_MS = 24_000;
    static final long TICK_MS = 50;
    static final long[] KILLS_AT_MS = {7_000, 15_000};
    static final double DIG_CHANCE = 0.03; // per player per tick: about 120 digs/s in all

    static final int AREA = 400; // the hunt's area is [-400, 400] in x and z: digs must stay inside

    /** The z step from a treasure toward the middle of the area. */
    static int inward(BlockPos t) {
        return t.z() > 0 ? -1 : 1;
    }

    record Dig(DigRequest req, long startNs, CompletableFuture<DigResult> reply) {}

    @Test
    void twoHundredPlayersThroughTwoKills() throws Exception {
        long seed = Long.getLong("cairn.soak.seed", System.nanoTime());
        System.out.println("SoakTest seed " + seed + " (rerun with -Dcairn.soak.seed=" + seed + ")");
        Random rnd = new Random(seed);
        try (TestServer server = new TestServer()) {
            CairnClient admin = server.admin();
            admin.blocking().createHunt(TestServer.spec("soak", "treasures", TREASURES));
            List<BlockPos> ts = new ArrayList<>();
            for (Hunt.Treasure t : admin.blocking().revealHunt("soak").treasures()) ts.add(t.pos());
            assertEquals(TREASURES, ts.size());

            CairnClient game = CairnClient.builder(server.url()).apiKey(TestServer.GAME).retryFor(Duration.ofSeconds(120))
                    .backoff(Duration.ofMillis(50), Duration.ofSeconds(1)).build();
            Recorder events = new Recorder();
            EventStream stream = game.events("soak", 0, events);

            // The game's main thread, where items are given.
            ExecutorService main = Executors.newSingleThreadExecutor();
            Map<String, Integer> given = new ConcurrentHashMap<>();
            Map<String, String> grantClaim = new ConcurrentHashMap<>();
            GrantDeliverer deliverer = new GrantDeliverer(game, g -> CompletableFuture.supplyAsync(() -> {
                given.merge(g.grantId(), 1, Integer::sum);
                grantClaim.put(g.grantId(), g.claimId());
                return true;
            }, main));
            List<CompletableFuture<Integer>> deliveries = new ArrayList<>();

            PositionBatcher batcher = new PositionBatcher(game, r -> { }, e -> { });
            String[] names = new String[PLAYERS];
            BlockPos[] home = new BlockPos[PLAYERS];
            BlockPos[] at = new BlockPos[PLAYERS];
            boolean[] settled = new boolean[PLAYERS]; // found or taken its treasure
            Dig[] inFlight = new Dig[PLAYERS];
            for (int i = 0; i < PLAYERS; i++) {
                names[i] = String.format("p%03d", i);
                BlockPos t = ts.get(i % TREASURES);
                home[i] = new BlockPos(t.x() + i / TREASURES - 1, t.y(), t.z() + inward(t));
                at[i] = home[i];
                batcher.teleport("overworld", names[i], home[i]);
            }
            batcher.flush().get(30, TimeUnit.SECONDS);

            List<Dig> digs = new ArrayList<>();
            long[] killNs = new long[KILLS_AT_MS.length];
            long[] readyNs = new long[KILLS_AT_MS.length];
            CompletableFuture<?> restarting = CompletableFuture.completedFuture(null);
            int kills = 0;
            long t0 = System.nanoTime();
            for (long tick = 0; ; tick++) {
                long now = (System.nanoTime() - t0) / 1_000_000;
                if (now >= RUN_MS) break;
                if (kills < KILLS_AT_MS.length && now >= KILLS_AT_MS[kills] && restarting.isDone()) {
                    int k = kills++;
                    killNs[k] = System.nanoTime();
                    server.kill();
                    restarting = CompletableFuture.runAsync(() -> {
                        try {
                            server.start();
                        } catch (Exception e) {
                            throw new IllegalStateException(e);
                        }
                        readyNs[k] = System.nanoTime();
                    });
                }
                for (int i = 0; i < PLAYERS; i++) {
                    if (inFlight[i] != null && inFlight[i].reply().isDone()) {
                        DigResult r = inFlight[i].reply().getNow(null);
                        if (r != null && (r.found() || r.result().equals("taken")) && inFlight[i].req().at().equals(ts.get(i % TREASURES))) {
                            settled[i] = true;
                        }
                        if (r != null && r.found()) deliveries.add(deliverer.deliverPending(names[i]));
                        inFlight[i] = null;
                    }
                    // A step of at most one block, staying within a block of home (the treasure stays in reach).
                    int dx = rnd.nextInt(3) - 1, dz = rnd.nextInt(3) - 1;
                    BlockPos next = new BlockPos(at[i].x() + dx, at[i].y(), at[i].z() + dz);
                    if (Math.abs(next.x() - home[i].x()) <= 1 && Math.abs(next.z() - home[i].z()) <= 1) at[i] = next;
                    batcher.move("overworld", names[i], at[i]);
                    if (inFlight[i] == null && rnd.nextDouble() < DIG_CHANCE) {
                        BlockPos t = ts.get(i % TREASURES);
                        boolean unlocked = now >= (i % TREASURES) * (RUN_MS * 9 / 10 / TREASURES);
                        // A miss is dug 2 to 4 blocks from the treasure along z, out of its tolerance, inside the area.
                        int x = Math.max(-AREA, Math.min(AREA, at[i].x() + rnd.nextInt(3) - 1));
                        BlockPos cell = unlocked && !settled[i] ? t : new BlockPos(x, at[i].y() - 1, at[i].z() + 2 * inward(t));
                        DigRequest req = DigRequest.of("soak", names[i], at[i], cell);
                        Dig d = new Dig(req, System.nanoTime(), game.dig(req));
                        inFlight[i] = d;
                        digs.add(d);
                    }
                }
                batcher.flush();
                long sleep = (tick + 1) * TICK_MS - (System.nanoTime() - t0) / 1_000_000;
                if (sleep > 0) Thread.sleep(sleep);
            }
            restarting.get(120, TimeUnit.SECONDS);
            assertEquals(KILLS_AT_MS.length, kills, "the server was killed twice");

            // No dig lost: every one was answered (retried across the kills under its own id).
            Map<String, Claim> claims = new HashMap<>(); // claim id -> claim
            Map<String, String> finderOf = new HashMap<>(); // treasure -> player
            int[] crossedKill = new int[KILLS_AT_MS.length];
            for (Dig d : digs) {
                DigResult r = d.reply().get(150, TimeUnit.SECONDS);
                assertTrue(Set.of("miss", "found", "taken").contains(r.result()), r.toString());
                if (r.found()) {
                    Claim c = r.claim();
                    assertEquals(d.req().player(), c.player());
                    Claim before = claims.put(c.claimId(), c);
                    assertTrue(before == null, "claim " + c.claimId() + " reported twice");
                    String other = finderOf.put(c.treasure(), c.player());
                    assertTrue(other == null, c.treasure() + " claimed by " + other + " and " + c.player());
                    deliveries.add(deliverer.deliverPending(c.player()));
                }
            }
            for (Dig d : digs) {
                for (int k = 0; k < KILLS_AT_MS.length; k++) {
                    // Sent while the server was dead: answered only by a retry after the restart.
                    if (d.startNs() > killNs[k] && d.startNs() < readyNs[k]) crossedKill[k]++;
                }
            }
            for (int k = 0; k < KILLS_AT_MS.length; k++) assertTrue(crossedKill[k] > 0, "no dig was sent while the server was dead " + k);
            assertTrue(claims.size() >= TREASURES / 2, "only " + claims.size() + " claims");
            for (int k = 0; k < KILLS_AT_MS.length; k++) {
                long after = readyNs[k];
                assertTrue(digs.stream().anyMatch(d -> d.startNs() > after && d.reply().join().found()), "no claim after restart " + k);
            }

            // The server agrees: each treasure's single finder is the one our replies named, nothing more.
            Map<String, String> serverFinders = new HashMap<>();
            for (Hunt.Treasure t : admin.blocking().hunt("soak").treasures()) {
                assertTrue(t.finders().size() <= 1, t.toString());
                if (!t.finders().isEmpty()) serverFinders.put(t.id(), t.finders().get(0));
            }
            assertEquals(finderOf, serverFinders);

            // Every grant given once and acked.
            for (CompletableFuture<Integer> f : deliveries) f.get(150, TimeUnit.SECONDS);
            Set<String> finders = new HashSet<>(finderOf.values());
            for (String p : finders) deliverer.deliverPending(p).get(150, TimeUnit.SECONDS); // after a failed ack, say
            for (String p : finders) assertEquals(List.of(), game.blocking().grants(p), p + " has a pending grant");
            assertTrue(given.values().stream().allMatch(n -> n == 1), "a grant given twice: " + given);
            assertEquals(claims.keySet(), new HashSet<>(grantClaim.values()), "one grant per claim, each delivered");
            assertEquals(claims.size(), given.size());
            assertEquals(0, deliverer.unackedCount());

            // The subscriber saw every claim event once, in order, without a gap, across both restarts.
            long until = System.nanoTime() + 30_000_000_000L;
            while (events.ofType("treasure.claimed").size() < claims.size() && System.nanoTime() < until) Thread.sleep(20);
            stream.close();
            events.checkOrder();
            assertEquals(List.of(), events.gaps);
            List<String> seen = new ArrayList<>();
            for (Event e : events.ofType("treasure.claimed")) seen.add(e.dataString("claim_id"));
            assertEquals(seen.size(), new HashSet<>(seen).size(), "a claim event seen twice");
            Set<String> missing = new HashSet<>(claims.keySet());
            missing.removeAll(seen);
            Map<String, Integer> types = new java.util.TreeMap<>();
            for (Event e : events.events) types.merge(e.type(), 1, Integer::sum);
            assertEquals(Set.of(), missing, missing.size() + " claim events not seen; connects " + events.connects.get()
                    + ", gaps " + events.gaps + ", events " + types + ", last id " + stream.lastEventId());
            assertEquals(claims.keySet(), new HashSet<>(seen));
            assertTrue(events.connects.get() >= 3, "the stream reconnected after each kill: " + events.connects.get());
            main.shutdown();
            System.out.printf("SoakTest: %d digs, %d claims, %d grants, %d events, digs sent while dead %s, %d ms%n", digs.size(),
                    claims.size(), given.size(), events.events.size(), java.util.Arrays.toString(crossedKill),
                    (System.nanoTime() - t0) / 1_000_000);
        }
    }
}
