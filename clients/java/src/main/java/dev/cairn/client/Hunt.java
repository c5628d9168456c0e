package dev.cairn.client;

import java.util.List;
import java.util.Map;

/**
 * A hunt: its summary and, from {@link CairnClient#hunt} and {@link CairnClient#createHunt}, its
 * treasures (empty in the list of hunts). {@code state} is {@code scheduled|active|ended}.
 */
public record Hunt(String id, String name, String state, String world, String startsAt, String endsAt,
        int treasuresTotal, int treasuresLeft, List<Treasure> treasures) {

    /** One treasure; {@code pos} is set for admin callers only ({@code reveal}), else null. */
    public record Treasure(String id, String tier, String state, List<Item> loot, List<String> finders, BlockPos pos) {
        static Treasure from(Map<String, Object> m) {
            return new Treasure(Wire.str(m, "id"), Wire.str(m, "tier"), Wire.str(m, "state"), Wire.list(m, "loot", Item::from),
                    Wire.strings(m, "finders"), Wire.pos(m, "pos"));
        }
    }

    /** True while digs can claim. */
    public boolean active() {
        return "active".equals(state);
    }

    static Hunt from(Map<String, Object> m) {
        return new Hunt(Wire.str(m, "id"), Wire.str(m, "name"), Wire.str(m, "state"), Wire.str(m, "world"),
                Wire.str(m, "starts_at"), Wire.str(m, "ends_at"), (int) Wire.lng(m, "treasures_total", 0),
                (int) Wire.lng(m, "treasures_left", 0), Wire.list(m, "treasures", Treasure::from));
    }
}
