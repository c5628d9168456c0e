package dev.cairn.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;

/** The SSE subscriber: live events, reconnection with backoff, resumption after kill -9. */
class EventsTest {
    /** Events the journal rebuilds after a restart (proximity and anti-cheat events are not journaled). */
    static final Set<String> JOURNALED = Set.of("hunt.started", "treasure.found", "treasure.claimed", "hunt.ended", "hunt.scheduled");

    @Test
    void theStreamResumesAfterKillAndRestartWithoutLossOrRepeat() throws Exception {
        try (TestServer server = new TestServer()) {
            CairnClient admin = server.admin();
            admin.blocking().createHunt(TestServer.spec("sse"));
            List<BlockPos> ts = new ArrayList<>();
            for (Hunt.Treasure t : admin.blocking().revealHunt("sse").treasures()) ts.add(t.pos());
            // Reconnects pause 1-2 s, so the claims made right after the restart land before the stream is back.
            CairnClient slow = CairnClient.builder(server.url()).apiKey(TestServer.GAME).backoff(Duration.ofSeconds(2), Duration.ofSeconds(2)).build();
            CairnClient game = server.game();
            Recorder rec = new Recorder();
            try (EventStream stream = slow.events("sse", 0, rec)) {
                rec.await(e -> e.type().equals("hunt.started"));
                dig(game, "First", ts.get(0));
                rec.await(e -> e.type().equals("treasure.claimed") && "First".equals(e.dataString("player")));

                server.kill();
                awaitTrue(() -> rec.disconnects.get() > 0); // the stream saw the kill
                server.start();
                dig(game, "Second", ts.get(1));
                dig(game, "Third", ts.get(2));
                rec.awaitConnects(2);
                rec.await(e -> e.type().equals("treasure.claimed") && "Third".equals(e.dataString("player")));

                server.kill();
                server.start();
                dig(game, "Fourth", ts.get(3));
                rec.await(e -> e.type().equals("treasure.claimed") && "Fourth".equals(e.dataString("player")));
                assertTrue(rec.connects.get() >= 3, "reconnected after each kill: " + rec.connects.get());
                assertEquals(rec.events.get(rec.events.size() - 1).id(), stream.lastEventId());
            }
            rec.checkOrder();
            assertTrue(rec.gaps.isEmpty(), "no gap: " + rec.gaps);
            List<String> claimed = new ArrayList<>();
            for (Event e : rec.ofType("treasure.claimed")) claimed.add(e.dataString("player"));
            assertEquals(List.of("First", "Second", "Third", "Fourth"), claimed);

            // What the resumed stream delivered is what a fresh stream from 0 replays (journaled kinds).
            Recorder fresh = new Recorder();
            long last = rec.events.get(rec.events.size() - 1).id();
            try (EventStream again = game.events("sse", 0, fresh)) {
                fresh.await(e -> e.id() >= last);
            }
            assertEquals(journaled(fresh), journaled(rec));
        }
    }

    static void awaitTrue(java.util.function.BooleanSupplier cond) {
        long deadline = System.nanoTime() + 30_000_000_000L;
        while (!cond.getAsBoolean()) {
            if (System.nanoTime() > deadline) throw new AssertionError("condition not met in 30 s");
            TestServer.sleep(20);
        }
    }

    static Set<Long> journaled(Recorder r) {
        Set<Long> ids = new TreeSet<>();
        for (Event e : r.events) if (JOURNALED.contains(e.type())) ids.add(e.id());
        return ids;
    }

    static void dig(CairnClient game, String player, BlockPos t) {
        DigResult r = game.blocking().dig(DigRequest.of("sse", player, new BlockPos(t.x(), t.y(), t.z() + 1), t));
        assertTrue(r.found(), r.toString());
    }

    @Test
    void aStreamStartingAfterAnIdGetsOnlyLaterEvents() throws Exception {
        try (TestServer server = new TestServer()) {
            CairnClient admin = server.admin();
            admin.blocking().createHunt(TestServer.spec("after"));
            Recorder all = new Recorder();
            try (EventStream s = server.game().events(null, 0, all)) {
                all.await(e -> e.type().equals("hunt.started") && e.hunt().equals("after"));
            }
            long started = all.ofType("hunt.started").get(0).id();
            admin.blocking().endHunt("after");
            Recorder later = new Recorder();
            try (EventStream s = server.game().events("after", started, later)) {
                later.await(e -> e.type().equals("hunt.ended"));
            }
            assertFalse(later.events.stream().anyMatch(e -> e.id() <= started));
        }
    }

    @Test
    void aBadKeyStopsTheStreamInsteadOfRetrying() throws Exception {
        try (TestServer server = new TestServer()) {
            Recorder rec = new Recorder();
            EventStream s = server.client("bad-key").events(null, 0, rec);
            awaitTrue(() -> rec.disconnects.get() > 0);
            TestServer.sleep(500);
            assertEquals(1, rec.disconnects.get());
            assertEquals(0, rec.connects.get());
            s.close();
        }
    }
}
