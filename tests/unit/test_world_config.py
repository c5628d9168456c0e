"""`[worlds.<id>]` says where a world's sites come from: an empty section is refused, not
silently generated; `generator = "upload"` makes an empty, upload-only world."""

from __future__ import annotations

from pathlib import Path

import pytest

from cairn import config
from cairn.app import build_world, world_source


def load(tmp_path: Path, text: str) -> config.Config:
    path = tmp_path / "cairn.toml"
    path.write_text(text)
    return config.load(path, env={})


@pytest.mark.parametrize("section", ["", "cache = false\n", "verify_pack = true\n"])
def test_a_world_section_that_names_no_source_is_refused(tmp_path: Path, section: str) -> None:
    with pytest.raises(config.ConfigError) as e:
        load(tmp_path, "[worlds.arena]\n" + section)
    assert e.value.code == "config_error" and e.value.field == "worlds.arena"
    assert 'generator = "procedural"' in e.value.message and 'generator = "upload"' in e.value.message


def test_world_sources_are_explicit(tmp_path: Path) -> None:
    text = '[worlds.world]\nseed = 3\nsize = 256\n[worlds."minecraft:the_nether"]\ngenerator = "upload"\n'
    cfg = load(tmp_path, text + '[worlds.world_nether]\ngenerator = "procedural"\nsize = 128\n')
    assert {k: w.generator for k, w in cfg.worlds.items()} == {
        "world": "procedural", "minecraft:the_nether": "upload", "world_nether": "procedural",
    }  # fmt: skip
    nether = cfg.worlds["minecraft:the_nether"]
    assert len(build_world("minecraft:the_nether", nether, tmp_path)) == 0  # nothing generated
    assert world_source("minecraft:the_nether", nether, tmp_path) == "upload"
    assert world_source("world", cfg.worlds["world"], tmp_path) == "procedural"
    assert config.load(None, env={}).worlds["overworld"].generator == "procedural"  # the documented default


@pytest.mark.parametrize("name", ["bad world", "x" * 65, "é"])
def test_world_ids_follow_the_documented_pattern(tmp_path: Path, name: str) -> None:
    with pytest.raises(config.ConfigError) as e:
        load(tmp_path, f'[worlds."{name}"]\ngenerator = "upload"\n')
    assert e.value.field == f"worlds.{name}"
