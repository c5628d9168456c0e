"""Site sources: procedural worlds, world-save importers, site packs."""
