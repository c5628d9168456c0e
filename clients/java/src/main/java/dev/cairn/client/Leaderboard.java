package dev.cairn.client;

import java.util.List;
import java.util.Map;

/** A page of a leaderboard: the current period, when it resets, and its ranked records. */
public record Leaderboard(String board, String period, String resetsAt, List<Standing> records) {
    /** One player's rank and score. Ties break on score, then the earlier time reached, then the player id. */
    public record Standing(long rank, String player, double score) {
        static Standing from(Map<String, Object> m) {
            Double score = Wire.dbl(m, "score");
            return new Standing(Wire.lng(m, "rank", 0), Wire.str(m, "player"), score == null ? 0 : score);
        }
    }

    static Leaderboard from(Map<String, Object> m) {
        return new Leaderboard(Wire.str(m, "board"), Wire.str(m, "period"), Wire.str(m, "resets_at"),
                Wire.list(m, "records", Standing::from));
    }
}
