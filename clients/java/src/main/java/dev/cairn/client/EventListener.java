package dev.cairn.client;

/**
 * Receives events from an {@link EventStream} or a {@link CairnSession}. Calls come one at a time,
 * in event id order, on one of the client's threads (never the game's main thread): keep them short
 * and hand work to the game's scheduler.
 */
@FunctionalInterface
public interface EventListener {
    /** One event; each id is delivered once per stream, in rising order. */
    void onEvent(Event event);

    /**
     * The server no longer had some events after {@code after} (they aged out of its memory): what
     * follows skips them. Read the state you need (hunts, grants) again.
     */
    default void onGap(long after) {}

    /** The stream is connected (again). */
    default void onConnected() {}

    /** The stream lost its connection; an {@link EventStream} reconnects by itself, a session does not. */
    default void onDisconnected(Throwable cause) {}
}
