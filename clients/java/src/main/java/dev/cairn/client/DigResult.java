package dev.cairn.client;

import java.util.Map;

/** The reply to a dig: {@code result} is {@code miss}, {@code found} (with the claim) or {@code taken}. */
public record DigResult(String result, String temperature, Claim claim) {
    /** True when this dig claimed a treasure; {@link #claim()} is then set. */
    public boolean found() {
        return "found".equals(result);
    }

    static DigResult from(Map<String, Object> m) {
        Map<String, Object> c = Wire.obj(m, "claim");
        return new DigResult(Wire.str(m, "result"), Wire.str(m, "temperature"), c == null ? null : Claim.from(c));
    }
}
