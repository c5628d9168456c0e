"""Durability: the embedded journal and the Redis store."""
