package dev.cairn.client;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Predicate;

/** An EventListener that keeps what it is told, for the tests. */
final class Recorder implements EventListener {
    final List<Event> events = new CopyOnWriteArrayList<>();
    final List<Long> gaps = new CopyOnWriteArrayList<>();
    final AtomicInteger connects = new AtomicInteger();
    final AtomicInteger disconnects = new AtomicInteger();

    @Override
    public void onEvent(Event event) {
        events.add(event);
    }

    @Override
    public void onGap(long after) {
        gaps.add(after);
    }

    @Override
    public void onConnected() {
        connects.incrementAndGet();
    }

    @Override
    public void onDisconnected(Throwable cause) {
        disconnects.incrementAndGet();
    }

    List<Event> ofType(String type) {
        List<Event> out = new ArrayList<>();
        for (Event e : events) if (e.type().equals(type)) out.add(e);
        return out;
    }

    /** Waits (up to 30 s) until some event matches. */
    Event await(Predicate<Event> p) {
        long deadline = System.nanoTime() + 30_000_000_000L;
        while (System.nanoTime() < deadline) {
            for (Event e : events) if (p.test(e)) return e;
            TestServer.sleep(20);
        }
        throw new AssertionError("no matching event; got " + events);
    }

    void awaitConnects(int n) {
        long deadline = System.nanoTime() + 30_000_000_000L;
        while (connects.get() < n && System.nanoTime() < deadline) TestServer.sleep(20);
        if (connects.get() < n) throw new AssertionError("connected " + connects.get() + " times, not " + n);
    }

    /** Event ids rise strictly: none twice, none out of order. */
    void checkOrder() {
        long last = 0;
        for (Event e : events) {
            if (e.id() <= last) throw new AssertionError("event " + e.id() + " after " + last + ": " + events);
            last = e.id();
        }
    }
}
