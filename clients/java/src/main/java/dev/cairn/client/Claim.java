package dev.cairn.client;

import java.util.List;
import java.util.Map;

/**
 * One player's find of one treasure. {@code share} is 1.0 for a first-finder treasure, and null for
 * a shared bounty until its window closes (the share's grant is created then).
 */
public record Claim(String claimId, String treasure, String player, String at, Double share, List<Item> items) {
    static Claim from(Map<String, Object> m) {
        return new Claim(Wire.str(m, "claim_id"), Wire.str(m, "treasure"), Wire.str(m, "player"), Wire.str(m, "at"),
                Wire.dbl(m, "share"), Wire.list(m, "items", Item::from));
    }
}
