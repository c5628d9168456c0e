"""The domain: pure, deterministic, no I/O."""
