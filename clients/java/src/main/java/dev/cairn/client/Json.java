package dev.cairn.client;

import java.math.BigDecimal;
import java.math.BigInteger;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A small, strict JSON (RFC 8259) reader and writer, so the library needs nothing beyond the JDK.
 *
 * <p>{@link #parse} gives {@code Map<String, Object>} (insertion-ordered), {@code List<Object>},
 * {@code String}, {@code Long} (integers that fit), {@code BigInteger} (larger integers),
 * {@code Double} (numbers with a fraction or exponent), {@code Boolean} or {@code null}.
 * {@link #write} takes those, any {@code Number}, {@code Collection}, {@code int[]} and
 * {@link BlockPos}. Both are thread-safe (no shared state).
 */
public final class Json {
    private static final int MAX_DEPTH = 512;

    private Json() {}

    /** Parses one JSON text; throws IllegalArgumentException (with the offset) on anything invalid. */
    public static Object parse(String text) {
        Parser p = new Parser(text);
        p.ws();
        Object v = p.value(0);
        p.ws();
        if (p.i != text.length()) throw p.fail("trailing characters");
        return v;
    }

    /** Writes a value as compact JSON text. */
    public static String write(Object v) {
        StringBuilder sb = new StringBuilder();
        write(sb, v);
        return sb.toString();
    }

    private static void write(StringBuilder sb, Object v) {
        if (v == null) sb.append("null");
        else if (v instanceof String s) quote(sb, s);
        else if (v instanceof Boolean b) sb.append(b.booleanValue());
        else if (v instanceof Double || v instanceof Float) {
            double d = ((Number) v).doubleValue();
            if (Double.isNaN(d) || Double.isInfinite(d)) throw new IllegalArgumentException("JSON has no " + d);
            if (d == Math.rint(d) && Math.abs(d) < 1e15) sb.append((long) d).append(".0");
            else sb.append(d);
        } else if (v instanceof BigDecimal b) sb.append(b.toString());
        else if (v instanceof Number n) sb.append(n.toString());
        else if (v instanceof BlockPos p) sb.append('[').append(p.x()).append(',').append(p.y()).append(',').append(p.z()).append(']');
        else if (v instanceof int[] a) {
            sb.append('[');
            for (int i = 0; i < a.length; i++) {
                if (i > 0) sb.append(',');
                sb.append(a[i]);
            }
            sb.append(']');
        } else if (v instanceof Map<?, ?> m) {
            sb.append('{');
            boolean first = true;
            for (Map.Entry<?, ?> e : m.entrySet()) {
                if (!(e.getKey() instanceof String k)) throw new IllegalArgumentException("JSON object keys are strings");
                if (!first) sb.append(',');
                first = false;
                quote(sb, k);
                sb.append(':');
                write(sb, e.getValue());
            }
            sb.append('}');
        } else if (v instanceof Collection<?> c) {
            sb.append('[');
            boolean first = true;
            for (Object o : c) {
                if (!first) sb.append(',');
                first = false;
                write(sb, o);
            }
            sb.append(']');
        } else throw new IllegalArgumentException("cannot write " + v.getClass().getName() + " as JSON");
    }

    private static final char[] HEX = "0123456789abcdef".toCharArray();

    private static void quote(StringBuilder sb, String s) {
        sb.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"' -> sb.append("\\\"");
                case '\\' -> sb.append("\\\\");
                case '\n' -> sb.append("\\n");
                case '\r' -> sb.append("\\r");
                case '\t' -> sb.append("\\t");
                case '\b' -> sb.append("\\b");
                case '\f' -> sb.append("\\f");
                default -> {
                    if (Character.isHighSurrogate(c) && i + 1 < s.length() && Character.isLowSurrogate(s.charAt(i + 1))) {
                        sb.append(c).append(s.charAt(++i));
                    } else if (c < 0x20 || Character.isSurrogate(c)) {
                        // A lone surrogate cannot be carried by UTF-8, so it goes as an escape.
                        sb.append("\\u").append(HEX[c >> 12 & 15]).append(HEX[c >> 8 & 15]).append(HEX[c >> 4 & 15]).append(HEX[c & 15]);
                    } else sb.append(c);
                }
            }
        }
        sb.append('"');
    }

    private static final class Parser {
        final String s;
        int i;

        Parser(String s) {
            this.s = s;
        }

        IllegalArgumentException fail(String why) {
            return new IllegalArgumentException("bad JSON: " + why + " at offset " + i);
        }

        void ws() {
            while (i < s.length()) {
                char c = s.charAt(i);
                if (c != ' ' && c != '\t' && c != '\n' && c != '\r') return;
                i++;
            }
        }

        char peek() {
            if (i >= s.length()) throw fail("unexpected end");
            return s.charAt(i);
        }

        Object value(int depth) {
            if (depth > MAX_DEPTH) throw fail("nested too deeply");
            char c = peek();
            switch (c) {
                case '{':
                    return object(depth);
                case '[':
                    return array(depth);
                case '"':
                    return string();
                case 't':
                    return literal("true", Boolean.TRUE);
                case 'f':
                    return literal("false", Boolean.FALSE);
                case 'n':
                    return literal("null", null);
                default:
                    if (c == '-' || (c >= '0' && c <= '9')) return number();
                    throw fail("unexpected character '" + c + "'");
            }
        }

        Object literal(String word, Object v) {
            if (!s.startsWith(word, i)) throw fail("expected " + word);
            i += word.length();
            return v;
        }

        Map<String, Object> object(int depth) {
            Map<String, Object> m = new LinkedHashMap<>();
            i++;
            ws();
            if (peek() == '}') {
                i++;
                return m;
            }
            while (true) {
                ws();
                if (peek() != '"') throw fail("expected a string key");
                String k = string();
                ws();
                expect(':');
                ws();
                m.put(k, value(depth + 1));
                ws();
                if (peek() == ',') {
                    i++;
                    continue;
                }
                expect('}');
                return m;
            }
        }

        List<Object> array(int depth) {
            List<Object> l = new ArrayList<>();
            i++;
            ws();
            if (peek() == ']') {
                i++;
                return l;
            }
            while (true) {
                ws();
                l.add(value(depth + 1));
                ws();
                if (peek() == ',') {
                    i++;
                    continue;
                }
                expect(']');
                return l;
            }
        }

        String string() {
            expect('"');
            StringBuilder sb = new StringBuilder();
            while (true) {
                char c = peek();
                i++;
                if (c == '"') return sb.toString();
                if (c < 0x20) throw fail("control character in string");
                if (c != '\\') {
                    sb.append(c);
                    continue;
                }
                char e = peek();
                i++;
                switch (e) {
                    case '"' -> sb.append('"');
                    case '\\' -> sb.append('\\');
                    case '/' -> sb.append('/');
                    case 'b' -> sb.append('\b');
                    case 'f' -> sb.append('\f');
                    case 'n' -> sb.append('\n');
                    case 'r' -> sb.append('\r');
                    case 't' -> sb.append('\t');
                    case 'u' -> sb.append(hex4()); // a surrogate pair arrives as two escapes, two chars
                    default -> {
                        i--;
                        throw fail("bad escape \\" + e);
                    }
                }
            }
        }

        char hex4() {
            if (i + 4 > s.length()) throw fail("short \\u escape");
            int v = 0;
            for (int k = 0; k < 4; k++) {
                int d = Character.digit(s.charAt(i + k), 16);
                if (d < 0) throw fail("bad \\u escape");
                v = v * 16 + d;
            }
            i += 4;
            return (char) v;
        }

        Object number() {
            int start = i;
            if (s.charAt(i) == '-') i++;
            if (peek() == '0') i++;
            else if (!digits()) throw fail("expected a digit");
            boolean integral = true;
            if (i < s.length() && s.charAt(i) == '.') {
                i++;
                integral = false;
                if (!digits()) throw fail("expected a digit after '.'");
            }
            if (i < s.length() && (s.charAt(i) == 'e' || s.charAt(i) == 'E')) {
                i++;
                integral = false;
                if (i < s.length() && (s.charAt(i) == '+' || s.charAt(i) == '-')) i++;
                if (!digits()) throw fail("expected a digit in the exponent");
            }
            String t = s.substring(start, i);
            if (!integral) return Double.parseDouble(t);
            if (t.length() < 19) return Long.parseLong(t);
            BigInteger big = new BigInteger(t);
            return big.bitLength() < 64 ? (Object) big.longValue() : big;
        }

        boolean digits() {
            int start = i;
            while (i < s.length() && s.charAt(i) >= '0' && s.charAt(i) <= '9') i++;
            return i > start;
        }

        void expect(char c) {
            if (i >= s.length() || s.charAt(i) != c) throw fail("expected '" + c + "'");
            i++;
        }
    }
}
