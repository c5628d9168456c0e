package dev.cairn.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** The WebSocket session: ops, batched ops, grants and acks, pushed events, closing. */
class SessionTest {
    static TestServer server;
    static CairnClient admin;
    static CairnClient game;

    @BeforeAll
    static void start() throws Exception {
        server = new TestServer();
        admin = server.admin();
        game = server.game();
    }

    @AfterAll
    static void stop() throws Exception {
        server.close();
    }

    static List<BlockPos> treasures(String hunt) {
        List<BlockPos> out = new ArrayList<>();
        for (Hunt.Treasure t : admin.blocking().revealHunt(hunt).treasures()) out.add(t.pos());
        return out;
    }

    @Test
    void opsBatchesGrantsAcksAndPushedEvents() {
        admin.blocking().createHunt(TestServer.spec("ws"));
        List<BlockPos> ts = treasures("ws");
        Recorder rec = new Recorder();
        CairnSession s = game.blocking().session(rec);
        try {
            assertEquals(1, rec.connects.get());
            assertTrue(CairnClient.await(s.subscribe("ws", 0)), "nothing missed from 0");
            rec.await(e -> e.type().equals("hunt.started"));
            CairnClient.await(s.ping());

            BlockPos t0 = ts.get(0);
            BlockPos stand = new BlockPos(t0.x() + 1, t0.y(), t0.z());
            DigResult found = CairnClient.await(s.dig(DigRequest.of("ws", "Wes", stand, t0)));
            assertTrue(found.found());
            Event claimed = rec.await(e -> e.type().equals("treasure.claimed"));
            assertEquals(found.claim().claimId(), claimed.dataString("claim_id"), "the claim is pushed to the subscriber");
            assertEquals(claimed.id(), s.lastEventId());

            HintReply hint = CairnClient.await(s.hint(HintRequest.of("ws", "Wes", stand)));
            assertNotNull(hint.hint().temperature());
            PositionsReply moved = CairnClient.await(s.positions(new PositionsRequest("overworld", List.of(new PositionUpdate("Wes", stand, false)))));
            assertTrue(moved.errors().isEmpty());

            BlockPos t1 = ts.get(1);
            BlockPos near1 = new BlockPos(t1.x(), t1.y(), t1.z() + 1);
            List<OpResult> results = CairnClient.await(s.batch(List.of(
                    new PositionsRequest("overworld", List.of(new PositionUpdate("Wanda", near1, true))),
                    DigRequest.of("ws", "Wanda", near1, t1),
                    DigRequest.of("ws", "Wanda", near1, new BlockPos(near1.x() + 30, near1.y(), near1.z())))));
            assertEquals(3, results.size());
            assertTrue(results.get(0).ok());
            assertTrue(results.get(1).dig().found());
            assertEquals("out_of_reach", results.get(2).error().code());
            assertEquals("at", results.get(2).error().field());

            List<Grant> grants = CairnClient.await(s.grants("Wanda"));
            assertEquals(1, grants.size());
            assertEquals(results.get(1).dig().claim().claimId(), grants.get(0).claimId());
            assertEquals("acked", CairnClient.await(s.ack(grants.get(0).grantId())).status());
            assertTrue(CairnClient.await(s.grants("Wanda")).isEmpty());

            CairnException err = assertThrows(CairnException.class, () -> CairnClient.await(s.ack("g_nope")));
            assertEquals("grant_not_found", err.code());

            // After leave, a far position is a fresh start, not a jump.
            BlockPos away = new BlockPos(stand.x() + 3000, stand.y(), stand.z());
            PositionsRequest jump = new PositionsRequest("overworld", List.of(new PositionUpdate("Wes", away, false)));
            assertEquals("implausible_movement", CairnClient.await(s.positions(jump)).errors().get(0).error().code());
            CairnClient.await(s.leave("Wes"));
            assertTrue(CairnClient.await(s.positions(jump)).errors().isEmpty());

            CairnClient.await(s.unsubscribe());
            BlockPos t2 = ts.get(2);
            CairnClient.await(s.dig(DigRequest.of("ws", "Quiet", new BlockPos(t2.x() + 1, t2.y(), t2.z()), t2)));
            CairnClient.await(s.ping()); // the claim's events, had they been pushed, came before this reply
            assertFalse(rec.events.stream().anyMatch(e -> "Quiet".equals(e.dataString("player"))), "no events after unsubscribe");
            rec.checkOrder();
        } finally {
            s.close();
        }
        assertFalse(s.isOpen());
        CairnException closed = assertThrows(CairnException.class, () -> CairnClient.await(s.ping()));
        assertEquals(CairnException.CLOSED, closed.code());
        assertEquals(1, rec.disconnects.get());
    }

    @Test
    void manyCallsOverlapFromManyThreads() {
        admin.blocking().createHunt(TestServer.spec("ws-many"));
        CairnSession s = game.blocking().session(e -> { });
        try {
            List<CompletableFuture<HintReply>> all = new ArrayList<>();
            List<Thread> threads = new ArrayList<>();
            for (int i = 0; i < 8; i++) {
                int k = i;
                Thread t = new Thread(() -> {
                    for (int j = 0; j < 25; j++) {
                        CompletableFuture<HintReply> f = s.hint(HintRequest.of("ws-many", "P" + k + "_" + j, new BlockPos(k, 70, j)));
                        synchronized (all) {
                            all.add(f);
                        }
                    }
                });
                threads.add(t);
                t.start();
            }
            for (Thread t : threads) t.join();
            for (CompletableFuture<HintReply> f : all) assertNotNull(CairnClient.await(f).hint().temperature());
            assertEquals(200, all.size());
        } catch (InterruptedException e) {
            throw new AssertionError(e);
        } finally {
            s.close();
        }
    }

    @Test
    void aKilledServerFailsPendingCallsAsClosed() throws Exception {
        try (TestServer own = new TestServer()) {
            Recorder rec = new Recorder();
            CairnSession s = own.game().blocking().session(rec);
            CairnClient.await(s.ping());
            own.kill();
            // isOpen() turns false before the listener runs (on the socket's thread): wait for both.
            EventsTest.awaitTrue(() -> !s.isOpen() && rec.disconnects.get() > 0);
            assertEquals(1, rec.disconnects.get());
            CairnException e = assertThrows(CairnException.class, () -> CairnClient.await(s.ping()));
            assertEquals(CairnException.CLOSED, e.code());
        }
    }

    @Test
    void aBadKeyIsRefused() {
        CairnException e = assertThrows(CairnException.class, () -> server.client("bad-key").blocking().session(ev -> { }));
        assertEquals("unauthorized", e.code(), e.toString());
        assertEquals(401, e.status());
    }
}
