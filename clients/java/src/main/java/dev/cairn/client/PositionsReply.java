package dev.cairn.client;

import java.util.List;
import java.util.Map;

/**
 * The reply to a positions call: the proximity events the updates caused and, from servers that
 * check each update alone, the refused updates (by index in the request).
 */
public record PositionsReply(List<Event> events, List<UpdateError> errors) {
    /** A refused update: its index in the request and the error. */
    public record UpdateError(int index, CairnException error) {
        static UpdateError from(Map<String, Object> m) {
            Map<String, Object> e = Wire.obj(m, "error");
            return new UpdateError((int) Wire.lng(m, "index", -1), CairnException.of(422, e == null ? m : e, null));
        }
    }

    static PositionsReply from(Map<String, Object> m) {
        return new PositionsReply(Wire.list(m, "events", Event::from), Wire.list(m, "errors", UpdateError::from));
    }
}
