package dev.cairn.client;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

/** Reading reply fields out of parsed JSON. Unknown fields are ignored, so newer servers stay readable. */
final class Wire {
    private Wire() {}

    @SuppressWarnings("unchecked")
    static Map<String, Object> obj(Object v) {
        if (v instanceof Map<?, ?> m) return (Map<String, Object>) m;
        throw new IllegalArgumentException("expected a JSON object, got " + Json.write(v));
    }

    static Map<String, Object> obj(Map<String, Object> m, String k) {
        Object v = m.get(k);
        return v == null ? null : obj(v);
    }

    static String str(Map<String, Object> m, String k) {
        Object v = m.get(k);
        return v == null ? null : v.toString();
    }

    static long lng(Map<String, Object> m, String k, long dflt) {
        return m.get(k) instanceof Number n ? n.longValue() : dflt;
    }

    static Double dbl(Map<String, Object> m, String k) {
        return m.get(k) instanceof Number n ? n.doubleValue() : null;
    }

    static boolean bool(Map<String, Object> m, String k) {
        return Boolean.TRUE.equals(m.get(k));
    }

    static BlockPos pos(Map<String, Object> m, String k) {
        return m.get(k) instanceof List<?> l ? BlockPos.of(l) : null;
    }

    static <T> List<T> list(Map<String, Object> m, String k, Function<Map<String, Object>, T> each) {
        List<T> out = new ArrayList<>();
        if (m.get(k) instanceof List<?> l) for (Object o : l) out.add(each.apply(obj(o)));
        return List.copyOf(out);
    }

    /** A batch op: the route's body with its {@code op} tag first and, for hint and dig, its {@code hunt}. */
    static Map<String, Object> op(String kind, String hunt, Map<String, Object> body) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("op", kind);
        if (hunt != null) m.put("hunt", hunt);
        m.putAll(body);
        return m;
    }

    static List<String> strings(Map<String, Object> m, String k) {
        List<String> out = new ArrayList<>();
        if (m.get(k) instanceof List<?> l) for (Object o : l) out.add(String.valueOf(o));
        return List.copyOf(out);
    }
}
