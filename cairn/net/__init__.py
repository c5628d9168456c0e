"""Transport: HTTP, WebSocket, server-sent events."""
