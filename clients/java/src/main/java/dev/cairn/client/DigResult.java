package dev.cairn.client;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * The reply to a dig: {@code result} is {@code miss}, {@code found} (with the claim) or {@code taken}.
 * A {@code taken} because other players claimed the treasure lists them in {@code finders}, in claim
 * order (empty otherwise).
 */
public record DigResult(String result, String temperature, Claim claim, List<String> finders) {
    /** True when this dig claimed a treasure; {@link #claim()} is then set. */
    public boolean found() {
        return "found".equals(result);
    }

    static DigResult from(Map<String, Object> m) {
        Map<String, Object> c = Wire.obj(m, "claim");
        List<String> finders = new ArrayList<>();
        if (m.get("finders") instanceof List<?> names) {
            for (Object name : names) finders.add(String.valueOf(name));
        }
        return new DigResult(Wire.str(m, "result"), Wire.str(m, "temperature"), c == null ? null : Claim.from(c),
                List.copyOf(finders));
    }
}
