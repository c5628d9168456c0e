package dev.cairn.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.math.BigInteger;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class JsonTest {
    @Test
    void parsesEveryKindOfValue() {
        Object v = Json.parse(" {\"a\": [1, -2, 3.5, -0.25e2, 1E3, true, false, null], \"b\": {}, \"c\": [], \"d\": \"x\"} ");
        Map<String, Object> m = Wire.obj(v);
        assertEquals(List.of("a", "b", "c", "d"), new ArrayList<>(m.keySet()), "key order is kept");
        assertEquals(Arrays.asList(1L, -2L, 3.5, -25.0, 1000.0, true, false, null), m.get("a"));
        assertEquals(Map.of(), m.get("b"));
        assertEquals(List.of(), m.get("c"));
        assertEquals("x", m.get("d"));
    }

    @Test
    void integersKeepTheirPrecision() {
        assertEquals(1795123456789012L, Json.parse("1795123456789012"), "an event id (microseconds) is exact");
        assertEquals(Long.MAX_VALUE, Json.parse("9223372036854775807"));
        assertEquals(Long.MIN_VALUE, Json.parse("-9223372036854775808"));
        assertEquals(new BigInteger("9223372036854775808"), Json.parse("9223372036854775808"));
        assertInstanceOf(Long.class, Json.parse("0"));
        assertInstanceOf(Double.class, Json.parse("0.0"));
    }

    @Test
    void unicodeEscapesAreDecoded() {
        assertEquals("é", Json.parse("\"\\u00e9\""));
        assertEquals("é", Json.parse("\"\\u00E9\""));
        assertEquals("\uD83D\uDE00", Json.parse("\"\\ud83d\\ude00\""), "a surrogate pair gives one code point");
        assertEquals("a\"b\\c/d\b\f\n\r\t", Json.parse("\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\""));
        assertEquals("日本 😀", Json.parse("\"日本 😀\""), "raw UTF-16 text passes through");
    }

    @Test
    void writerEscapesWhatJsonRequires() {
        assertEquals("\"a\\\"b\\\\c\\n\\r\\t\\b\\f\\u0001\\u001f\"", Json.write("a\"b\\c\n\r\t\b\f\u0001\u001f"));
        assertEquals("\"é😀/\"", Json.write("é😀/"), "non-ASCII text is written as is (UTF-8 on the wire)");
        assertEquals("\"\\ud800x\"", Json.write("\uD800x"), "a lone surrogate is escaped, never written raw");
        assertEquals("\"\\udc00\"", Json.write("\uDC00"));
    }

    @Test
    void writesNumbersAndContainers() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("i", 42);
        m.put("l", -9007199254740993L);
        m.put("d", 0.5);
        m.put("whole", 3.0);
        m.put("big", 1e300);
        m.put("pos", new BlockPos(1, -2, 3));
        m.put("arr", new int[] {4, 5});
        m.put("list", Arrays.asList("x", null, true));
        assertEquals("{\"i\":42,\"l\":-9007199254740993,\"d\":0.5,\"whole\":3.0,\"big\":1.0E300,\"pos\":[1,-2,3],"
                + "\"arr\":[4,5],\"list\":[\"x\",null,true]}", Json.write(m));
        assertThrows(IllegalArgumentException.class, () -> Json.write(Double.NaN));
        assertThrows(IllegalArgumentException.class, () -> Json.write(Double.POSITIVE_INFINITY));
        assertThrows(IllegalArgumentException.class, () -> Json.write(new Object()));
    }

    @Test
    void roundTripsThroughTheWriter() {
        String[] texts = {"{\"a\":[1,2.5,\"\\u0000é\\ud83d\\ude00\",{\"b\":null}],\"c\":false}", "[]", "\"\"", "-1", "1.0E300", "[[[]]]"};
        for (String t : texts) assertEquals(Json.parse(t), Json.parse(Json.write(Json.parse(t))), t);
    }

    @Test
    void rejectsInvalidText() {
        String[] bad = {"", " ", "01", "1.", ".5", "-", "+1", "1e", "1e+", "[1,]", "[1 2]", "{\"a\":1,}", "{a:1}", "{\"a\" 1}",
                "\"abc", "\"\\x\"", "\"\\u12g4\"", "\"\\u12\"", "\"a\u0001\"", "tru", "nul", "NaN", "Infinity", "[1] x", "{}{}",
                "[", "{", "\"\\"};
        for (String t : bad) assertThrows(IllegalArgumentException.class, () -> Json.parse(t), () -> "accepted " + t);
    }

    @Test
    void deepNestingIsRefusedNotAStackOverflow() {
        String deep = "[".repeat(100_000) + "]".repeat(100_000);
        assertThrows(IllegalArgumentException.class, () -> Json.parse(deep));
        String ok = "[".repeat(500) + "]".repeat(500);
        assertInstanceOf(List.class, Json.parse(ok));
    }
}
