package dev.cairn.client;

import java.util.Map;

/**
 * A hint; each part is null unless the hunt enables its kind. {@code temperature} is
 * {@code burning|hot|warm|cool|cold}, {@code vertical} {@code above|level|below}, {@code bearing}
 * one of 8 compass points, {@code region} a box of columns known to hold a treasure.
 */
public record Hint(String temperature, String vertical, String bearing, Region region, String riddle) {
    /** A box of columns, {@code [minX, minZ]} to {@code [maxX, maxZ]} inclusive. */
    public record Region(int minX, int minZ, int maxX, int maxZ) {}

    static Hint from(Map<String, Object> m) {
        Map<String, Object> r = Wire.obj(m, "region");
        Region region = null;
        if (r != null) {
            var min = (java.util.List<?>) r.get("min");
            var max = (java.util.List<?>) r.get("max");
            region = new Region(((Number) min.get(0)).intValue(), ((Number) min.get(1)).intValue(),
                    ((Number) max.get(0)).intValue(), ((Number) max.get(1)).intValue());
        }
        return new Hint(Wire.str(m, "temperature"), Wire.str(m, "vertical"), Wire.str(m, "bearing"), region, Wire.str(m, "riddle"));
    }
}
