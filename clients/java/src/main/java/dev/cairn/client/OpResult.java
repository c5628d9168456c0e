package dev.cairn.client;

import java.util.Map;

/**
 * One slot of a batch reply, in the order of the ops: the op's reply, or its error (a failed op
 * does not affect the others). Read it with the accessor of the op's kind.
 */
public record OpResult(Op op, Object value, CairnException error) {
    /** True when the op succeeded. */
    public boolean ok() {
        return error == null;
    }

    /** The reply of a dig op; throws its error if it failed. */
    public DigResult dig() {
        return as(DigResult.class);
    }

    /** The reply of a hint op; throws its error if it failed. */
    public HintReply hint() {
        return as(HintReply.class);
    }

    /** The reply of a positions op; throws its error if it failed. */
    public PositionsReply positions() {
        return as(PositionsReply.class);
    }

    private <T> T as(Class<T> kind) {
        if (error != null) throw error;
        return kind.cast(value);
    }

    static OpResult from(Op op, Map<String, Object> m) {
        Map<String, Object> e = Wire.obj(m, "error");
        if (e != null && m.size() == 1) return new OpResult(op, null, CairnException.of(0, e, null));
        Object v;
        if (op instanceof DigRequest) v = DigResult.from(m);
        else if (op instanceof HintRequest) v = HintReply.from(m);
        else v = PositionsReply.from(m);
        return new OpResult(op, v, null);
    }
}
