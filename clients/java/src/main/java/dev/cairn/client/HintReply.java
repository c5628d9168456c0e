package dev.cairn.client;

import java.util.Map;

/** The reply to a hint: the hint and the seconds until the player may ask again. */
public record HintReply(Hint hint, long nextHintIn) {
    static HintReply from(Map<String, Object> m) {
        return new HintReply(Hint.from(Wire.obj(m, "hint")), Wire.lng(m, "next_hint_in", 0));
    }
}
