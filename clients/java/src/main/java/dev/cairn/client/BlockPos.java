package dev.cairn.client;

import java.util.List;

/** A block position {@code [x, y, z]} (y up, north is -z). */
public record BlockPos(int x, int y, int z) {
    static BlockPos of(List<?> xyz) {
        if (xyz.size() != 3) throw new IllegalArgumentException("a position has 3 coordinates: " + xyz);
        return new BlockPos(((Number) xyz.get(0)).intValue(), ((Number) xyz.get(1)).intValue(), ((Number) xyz.get(2)).intValue());
    }
}
