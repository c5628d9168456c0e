package dev.cairn.client;

import java.util.Map;

/**
 * Every failure of a Cairn call: an error reply of the API, or the server not being reachable.
 *
 * <p>For an error reply, {@link #code()} is the API's stable code ({@code out_of_reach},
 * {@code hint_cooldown}, {@code hunt_not_active}, ...), {@link #field()} the request field it is
 * about (or null) and {@link #status()} the HTTP status. When the server could not be reached
 * (after the retries the call allows), the status is 0 and the code is {@link #UNREACHABLE}; a
 * call that timed out has code {@link #TIMEOUT}; a closed session {@link #CLOSED}.
 */
public final class CairnException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    /** Code of a call that never got a reply: connection refused, reset, or lost. */
    public static final String UNREACHABLE = "unreachable";
    /** Code of a call whose reply did not arrive within the request timeout. */
    public static final String TIMEOUT = "timeout";
    /** Code of a session call on a closed WebSocket session. */
    public static final String CLOSED = "closed";

    private final int status;
    private final String code;
    private final String field;
    private final Double retryAfter;

    public CairnException(int status, String code, String message, String field, Double retryAfter, Throwable cause) {
        super(message, cause);
        this.status = status;
        this.code = code;
        this.field = field;
        this.retryAfter = retryAfter;
    }

    /** The HTTP status of the error reply; 0 when it has none (no reply, or one slot of a batch). */
    public int status() {
        return status;
    }

    /** The API's stable error code, or one of this class's constants. */
    public String code() {
        return code;
    }

    /** The request field the error is about (for example {@code "at"} or {@code "updates[3].pos"}), or null. */
    public String field() {
        return field;
    }

    /** Seconds to wait before asking again (hint cooldown, rate limit, 503), or null. */
    public Double retryAfter() {
        return retryAfter;
    }

    /** True when the call got no reply: retrying it (with the same request id) may succeed. */
    public boolean transport() {
        return UNREACHABLE.equals(code) || TIMEOUT.equals(code);
    }

    @Override
    public String toString() {
        return "CairnException(" + status + " " + code + (field != null ? " at " + field : "") + ": " + getMessage() + ")";
    }

    /** The exception for an error object {@code {"code", "message", "field"?, "retry_after"?}}. */
    static CairnException of(int status, Map<String, Object> error, Double retryAfterHeader) {
        Double retry = Wire.dbl(error, "retry_after");
        return new CairnException(status, String.valueOf(error.getOrDefault("code", "http_" + status)),
                String.valueOf(error.getOrDefault("message", "HTTP " + status)), Wire.str(error, "field"),
                retry != null ? retry : retryAfterHeader, null);
    }
}
