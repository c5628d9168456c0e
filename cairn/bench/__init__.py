"""`cairn bench`: an open-loop load generator that behaves like a game server, and its reports."""
