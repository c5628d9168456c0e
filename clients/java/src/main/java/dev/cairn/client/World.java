package dev.cairn.client;

import java.util.List;
import java.util.Map;

/**
 * A world as the admin routes show it: where its sites come from ({@code procedural}, {@code pack}
 * or {@code upload}), whether it was registered at runtime, its site and chunk counts, its tag
 * vocabulary and the hunts placed in it. The reply to a site upload fills the counts and tags only.
 */
public record World(String world, String source, boolean runtime, long sites, long chunks, List<String> tags, List<String> hunts) {
    static World from(Map<String, Object> m) {
        return new World(Wire.str(m, "world"), Wire.str(m, "source"), Wire.bool(m, "runtime"), Wire.lng(m, "sites", 0),
                Wire.lng(m, "chunks", 0), Wire.strings(m, "tags"), Wire.strings(m, "hunts"));
    }
}
