"""Cairn: a treasure hunt engine for game servers."""

__version__ = "0.1.0"
