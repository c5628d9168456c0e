"""`PUT /v1/worlds/{world}/sites` against a real `cairn serve`: new hunts use the new sites, live hunts
keep their treasures, bad bodies are refused with stable codes, and a restart serves the last upload."""

from __future__ import annotations

import msgspec
import numpy as np

from cairn.core.sites import SiteSet
from cairn.worlds.pack import pack_bytes
from tests.e2e.conftest import ADMIN, GAME, CairnServer, hunt_spec

NDJSON = {"Content-Type": "application/x-ndjson"}
PACK = {"Content-Type": "application/vnd.cairn.site-pack"}


def crystal_rows(n: int = 40, y: int = 200) -> list[dict[str, object]]:
    return [{"x": -300 + 15 * i, "y": y, "z": 7 * (i % 5), "tags": ["surface", "crystal"]} for i in range(n)]


def positions(cairn: CairnServer, hunt: str) -> list[list[int]]:
    status, body, _ = cairn.request("GET", f"/v1/hunts/{hunt}?reveal=true", key=ADMIN)
    assert status == 200, body
    return [t["pos"] for t in body["treasures"]]


def put(
    cairn: CairnServer, raw: bytes, headers: dict[str, str], key: str = ADMIN, world: str = "overworld"
) -> tuple[int, object]:
    status, body, _ = cairn.request("PUT", f"/v1/worlds/{world}/sites", raw=raw, key=key, headers=headers)
    return status, body


def test_upload_replaces_sites_for_new_hunts_only(cairn: CairnServer) -> None:
    assert cairn.request("POST", "/v1/hunts", hunt_spec("before"), key=ADMIN)[0] == 201
    before = positions(cairn, "before")

    rows = crystal_rows()
    status, body = put(cairn, b"\n".join(msgspec.json.encode(r) for r in rows), NDJSON)
    assert status == 200, body
    assert body["sites"] == 40 and body["tags"] == ["surface", "crystal"]  # type: ignore[index]

    spec = hunt_spec("after", treasures=6, spawn={"tags_any": ["crystal"], "min_spacing": 8})
    status, created, _ = cairn.request("POST", "/v1/hunts", spec, key=ADMIN)
    assert status == 201, created
    uploaded = {(r["x"], r["y"], r["z"]) for r in rows}
    assert {tuple(p) for p in positions(cairn, "after")} <= uploaded
    assert positions(cairn, "before") == before  # the live hunt keeps its placement

    # Bad bodies: stable codes, and the world is left as it was, on disk too.
    kept = cairn.data_dir / "worlds" / "overworld.pack"
    before_bytes = kept.read_bytes()
    bad = [
        (b'{"x": 1, "y": 2, "z": 3}\n{"x": 1}\n', NDJSON, 422, "invalid_sites"),
        (pack_bytes(SiteSet.from_arrays(np.array([[1, 2, 3]]), np.array([1], np.uint32), ["surface"]))[:-9], PACK,
         422, "invalid_pack"),
        (b"hello", {"Content-Type": "text/plain"}, 415, "unsupported_media_type"),
        (b"", NDJSON, 422, "invalid_sites"),
    ]  # fmt: skip
    for raw, headers, code, err in bad:
        status, body = put(cairn, raw, headers)
        assert status == code and body["error"]["code"] == err, body  # type: ignore[index]
    assert put(cairn, b'{"x":1,"y":2,"z":3}', NDJSON, key=GAME)[0] == 403
    status, body = put(cairn, b'{"x":1,"y":2,"z":3}', NDJSON, world="nether")
    assert status == 422 and body["error"]["code"] == "unknown_world"  # type: ignore[index]
    assert kept.read_bytes() == before_bytes
    # No temp file left; beside the upload only the procedural world's own cache (docs/configuration.md).
    names = sorted(p.name for p in kept.parent.iterdir())
    assert [n for n in names if not n.startswith("overworld.procedural-")] == ["overworld.pack"], names
    spec = hunt_spec("still", treasures=3, spawn={"tags_any": ["crystal"], "min_spacing": 8})
    assert cairn.request("POST", "/v1/hunts", spec, key=ADMIN)[0] == 201

    # A pack body, then a restart: the last upload is what the world holds.
    xyz = np.array([[100 + 20 * i, 90, -100] for i in range(20)])
    tags = np.full(20, 0b11, np.uint32)
    status, body = put(cairn, pack_bytes(SiteSet.from_arrays(xyz, tags, ["surface", "gem"])), PACK)
    assert status == 200 and body["sites"] == 20, body  # type: ignore[index]
    cairn.stop()
    cairn.start()
    spec = hunt_spec("reborn", treasures=4, spawn={"tags_any": ["gem"], "min_spacing": 8})
    status, created, _ = cairn.request("POST", "/v1/hunts", spec, key=ADMIN)
    assert status == 201, created
    assert {tuple(p) for p in positions(cairn, "reborn")} <= {tuple(p) for p in xyz.tolist()}
    assert positions(cairn, "before") == before
    spec = hunt_spec("gone", treasures=1, spawn={"tags_any": ["crystal"]})
    status, body, _ = cairn.request("POST", "/v1/hunts", spec, key=ADMIN)
    assert status == 422 and body["error"]["code"] == "validation_error", body
