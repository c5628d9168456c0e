package dev.cairn.client;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.function.Consumer;

/**
 * Collects player moves during a game tick and sends them as one {@code /v1/positions} call per
 * world per tick. Call {@link #move} / {@link #teleport} from the game's event handlers (cheap, any
 * thread) and {@link #flush()} once per tick (it never blocks).
 *
 * <ul>
 *   <li>A player's last position in a tick wins; a teleport anywhere in the tick marks it, and so
 *       does a change of world (a portal).</li>
 *   <li>Calls never overlap: while one tick's call is in flight, moves collect for the next, so the
 *       server sees each player's positions in order.</li>
 *   <li>A tick that could not be sent (server unreachable) is merged into the next one, teleport
 *       marks included, so a teleport is never lost to a failed call.</li>
 * </ul>
 */
public final class PositionBatcher {
    private final CairnClient client;
    private final Consumer<PositionsReply> onReply;
    private final Consumer<CairnException> onError;
    private final Map<String, Map<String, PositionUpdate>> pending = new LinkedHashMap<>(); // world -> player -> update
    private final Map<String, String> worldOf = new HashMap<>();
    private CompletableFuture<Void> inFlight = CompletableFuture.completedFuture(null);

    /**
     * @param onReply gets each call's reply (its proximity events and refused updates), on a client thread
     * @param onError gets each failed call's error, on a client thread
     */
    public PositionBatcher(CairnClient client, Consumer<PositionsReply> onReply, Consumer<CairnException> onError) {
        this.client = client;
        this.onReply = onReply;
        this.onError = onError;
    }

    /** A player walked (or rode) to {@code pos} in {@code world}. */
    public void move(String world, String player, BlockPos pos) {
        put(world, new PositionUpdate(player, pos, false));
    }

    /** A player was teleported (command, ender pearl, respawn, portal) to {@code pos} in {@code world}. */
    public void teleport(String world, String player, BlockPos pos) {
        put(world, new PositionUpdate(player, pos, true));
    }

    /** Drops a player's unsent moves (they logged out); the next position they send is a teleport. */
    public synchronized void forget(String player) {
        String w = worldOf.remove(player);
        if (w != null && pending.containsKey(w)) pending.get(w).remove(player);
    }

    /** Moves waiting for the next flush. */
    public synchronized int pendingCount() {
        int n = 0;
        for (Map<String, PositionUpdate> m : pending.values()) n += m.size();
        return n;
    }

    private synchronized void put(String world, PositionUpdate u) {
        String was = worldOf.put(u.player(), world);
        boolean teleport = u.teleport() || was == null || !was.equals(world);
        if (was != null && !was.equals(world) && pending.containsKey(was)) pending.get(was).remove(u.player());
        merge(world, new PositionUpdate(u.player(), u.pos(), teleport));
    }

    private void merge(String world, PositionUpdate u) {
        Map<String, PositionUpdate> m = pending.computeIfAbsent(world, w -> new LinkedHashMap<>());
        PositionUpdate old = m.get(u.player());
        m.put(u.player(), old != null && old.teleport() && !u.teleport() ? new PositionUpdate(u.player(), u.pos(), true) : u);
    }

    /**
     * Sends the moves collected since the last flush, one call per world. Call once per tick. If the
     * previous tick's calls are still in flight, nothing is sent and the moves wait for the next tick.
     * Returns the future of the calls in flight (done at once when there was nothing to send).
     */
    public synchronized CompletableFuture<Void> flush() {
        if (!inFlight.isDone() || pending.isEmpty()) return inFlight;
        List<CompletableFuture<Void>> calls = new ArrayList<>();
        for (Map.Entry<String, Map<String, PositionUpdate>> e : pending.entrySet()) {
            if (e.getValue().isEmpty()) continue;
            PositionsRequest req = new PositionsRequest(e.getKey(), new ArrayList<>(e.getValue().values()));
            calls.add(client.positions(req).handle((reply, err) -> {
                if (err == null) {
                    EventStream.safely(() -> onReply.accept(reply));
                    return null;
                }
                CairnException ce = CairnClient.transportError(err);
                if (ce.transport()) requeue(req);
                EventStream.safely(() -> onError.accept(ce));
                return null;
            }));
        }
        pending.clear();
        inFlight = CompletableFuture.allOf(calls.toArray(CompletableFuture[]::new));
        return inFlight;
    }

    private synchronized void requeue(PositionsRequest req) {
        for (PositionUpdate u : req.updates()) {
            if (!req.world().equals(worldOf.get(u.player()))) continue; // moved on to another world, or left
            Map<String, PositionUpdate> m = pending.computeIfAbsent(req.world(), w -> new LinkedHashMap<>());
            PositionUpdate newer = m.get(u.player());
            if (newer == null) m.put(u.player(), u);
            else if (u.teleport() && !newer.teleport()) m.put(u.player(), new PositionUpdate(u.player(), newer.pos(), true));
        }
    }
}
