package dev.cairn.client;

import java.util.Map;

/** One op of a batch ({@link CairnClient#batch}, {@link CairnSession#batch}): a dig, a hint or a positions update. */
public sealed interface Op permits DigRequest, HintRequest, PositionsRequest {
    /** The op's JSON object, with its {@code op} tag and, for hint and dig, its {@code hunt}. */
    Map<String, Object> toOpJson();
}
