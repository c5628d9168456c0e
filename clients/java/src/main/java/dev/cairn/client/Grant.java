package dev.cairn.client;

import java.util.List;
import java.util.Map;

/** A reward that must reach the player in game: {@code status} is {@code pending} until acked, then {@code acked}. */
public record Grant(String grantId, String player, String claimId, List<Item> items, String status) {
    static Grant from(Map<String, Object> m) {
        return new Grant(Wire.str(m, "grant_id"), Wire.str(m, "player"), Wire.str(m, "claim_id"),
                Wire.list(m, "items", Item::from), Wire.str(m, "status"));
    }
}
