package dev.cairn.client;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Delivers rewards deliver-then-ack: a grant's items are given in game through the
 * {@link Inventory} hook first, and the grant is acked only once the hook reports them given. A
 * grant whose delivery fails (player offline, inventory full) stays pending on the server and is
 * delivered on a later call (on join, say).
 *
 * <p>Within this process a grant is given at most once: concurrent calls share one delivery, and a
 * grant already given is only re-acked (never re-given) when its ack failed. Across a crash of the
 * game server between giving and acking, the grant is still pending and is given again unless the
 * hook remembers delivered grant ids (in the player's saved data, for example) and reports those
 * as given without giving them.
 */
public final class GrantDeliverer {
    /** The game's side: give a grant's items to its player. */
    @FunctionalInterface
    public interface Inventory {
        /**
         * Gives {@code grant.items()} to {@code grant.player()}, typically by scheduling onto the game's
         * main thread. Completes with true once given, false if it could not be (the grant stays pending).
         */
        CompletableFuture<Boolean> give(Grant grant);
    }

    private static final int REMEMBERED = 65_536;

    private final CairnClient client;
    private final Inventory inventory;
    private final Map<String, CompletableFuture<Boolean>> inFlight = new ConcurrentHashMap<>();
    private final Set<String> given = ConcurrentHashMap.newKeySet(); // given in game, ack not yet confirmed
    private final Map<String, Boolean> acked = new LinkedHashMap<>(16, 0.75f, false) {
        @Override
        protected boolean removeEldestEntry(Map.Entry<String, Boolean> e) {
            return size() > REMEMBERED;
        }
    };

    public GrantDeliverer(CairnClient client, Inventory inventory) {
        this.client = client;
        this.inventory = inventory;
    }

    /**
     * Reads the player's pending grants and delivers each one. Completes with the number of grants
     * this call gave and acked; fails only if the grants could not be read (a failed delivery or ack
     * leaves its grant pending for the next call).
     */
    public CompletableFuture<Integer> deliverPending(String player) {
        return client.grants(player).thenCompose(grants -> {
            List<CompletableFuture<Boolean>> all = new ArrayList<>();
            for (Grant g : grants) all.add(deliver(g).exceptionally(e -> false));
            return CompletableFuture.allOf(all.toArray(CompletableFuture[]::new)).thenApply(x -> {
                int n = 0;
                for (CompletableFuture<Boolean> f : all) if (f.join()) n++;
                return n;
            });
        });
    }

    /**
     * Delivers one grant: gives its items (unless this process gave them already), then acks it.
     * Completes with true when the grant is acked, false when the hook could not give it or it was
     * acked before; fails with the ack's error (the grant stays pending and will be re-acked, not re-given).
     */
    public CompletableFuture<Boolean> deliver(Grant grant) {
        String id = grant.grantId();
        if (wasAcked(id) || "acked".equals(grant.status())) return CompletableFuture.completedFuture(false);
        CompletableFuture<Boolean> mine = new CompletableFuture<>();
        CompletableFuture<Boolean> running = inFlight.putIfAbsent(id, mine);
        if (running != null) return running.thenApply(x -> false); // someone else is delivering it
        if (wasAcked(id)) { // acked between the check above and taking the slot
            inFlight.remove(id, mine);
            mine.complete(false);
            return mine;
        }
        CompletableFuture<Boolean> gave = given.contains(id) ? CompletableFuture.completedFuture(true) : giveSafely(grant);
        gave.thenCompose(ok -> {
            if (!ok) return CompletableFuture.completedFuture(false);
            given.add(id);
            return client.ack(id).thenApply(g -> {
                synchronized (acked) {
                    acked.put(id, Boolean.TRUE);
                }
                given.remove(id);
                return true;
            });
        }).whenComplete((ok, err) -> {
            inFlight.remove(id, mine);
            if (err != null) mine.completeExceptionally(err);
            else mine.complete(ok);
        });
        return mine;
    }

    /** Grants given in game whose ack has not been confirmed yet (they are re-acked, never re-given). */
    public int unackedCount() {
        return given.size();
    }

    private CompletableFuture<Boolean> giveSafely(Grant g) {
        try {
            CompletableFuture<Boolean> f = inventory.give(g);
            return f == null ? CompletableFuture.completedFuture(false) : f;
        } catch (RuntimeException e) {
            return CompletableFuture.failedFuture(e);
        }
    }

    private boolean wasAcked(String id) {
        synchronized (acked) {
            return acked.containsKey(id);
        }
    }
}
