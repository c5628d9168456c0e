"""`store.kind = "redis"`: the config accepts a Redis URL or cluster seeds and refuses bad ones clearly."""

from __future__ import annotations

from pathlib import Path

import pytest

from cairn import config
from cairn.bootstrap import make_runtime
from cairn.distributed import RedisRuntime


def load(tmp_path: Path, store: str) -> config.Config:
    path = tmp_path / "cairn.toml"
    path.write_text(f'[server]\ndata_dir = "{tmp_path / "data"}"\n[store]\n' + store)
    return config.load(path, env={})


def test_redis_store_is_accepted_and_chooses_the_distributed_runtime(tmp_path: Path) -> None:
    cfg = load(tmp_path, 'kind = "redis"\nredis_url = "redis://127.0.0.1:7777/0"\n')
    assert cfg.store.kind == "redis" and cfg.store.redis_timeout == 0.08
    assert isinstance(make_runtime(cfg), RedisRuntime)
    cluster = load(tmp_path, 'kind = "redis"\nredis_cluster = ["10.0.0.1:7000", "redis-b:7001"]\n')
    assert cluster.store.redis_cluster == ["10.0.0.1:7000", "redis-b:7001"]
    embedded = config.load(None, env={"CAIRN_SERVER_DATA_DIR": str(tmp_path / "data")})
    assert not isinstance(make_runtime(embedded), RedisRuntime)


@pytest.mark.parametrize(
    ("store", "field"),
    [
        ('kind = "redis"\nredis_url = "http://x"\n', "store.redis_url"),
        ('kind = "redis"\nredis_cluster = ["nohost"]\n', "store.redis_cluster"),
        ('kind = "redis"\nredis_cluster = ["h:99999"]\n', "store.redis_cluster"),
        ('kind = "redis"\nredis_timeout = 0\n', "store.redis_timeout"),
    ],
)
def test_bad_redis_settings_are_refused_with_the_key(tmp_path: Path, store: str, field: str) -> None:
    with pytest.raises(config.ConfigError) as e:
        load(tmp_path, store)
    assert field in e.value.message


def test_env_overrides_select_redis(tmp_path: Path) -> None:
    cfg = config.load(None, env={"CAIRN_STORE_KIND": "redis", "CAIRN_STORE_REDIS_URL": "redis://h:1/0"})
    assert cfg.store.kind == "redis" and cfg.store.redis_url == "redis://h:1/0"


def test_missing_redis_server_skips_with_the_install_hint_and_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests import redis_helpers

    monkeypatch.setattr(redis_helpers.shutil, "which", lambda _name: None)
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception, match="apt-get install redis-server"):
        redis_helpers.require_redis()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="must not skip"):
        redis_helpers.require_redis()


@pytest.mark.parametrize(
    "exc",
    [
        RuntimeError("unable to perform operation on <TCPTransport closed=True>"),  # uvloop, transport torn down
        AttributeError("'NoneType' object has no attribute 'writelines'"),  # redis-py cluster, connection gone
        ConnectionResetError(104, "Connection reset by peer"),
        TimeoutError(),
    ],
)
def test_a_call_on_a_lost_connection_is_store_unavailable(exc: BaseException) -> None:
    import asyncio

    from cairn.core.errors import StoreUnavailable
    from cairn.store.redis import RedisStore

    store = RedisStore("redis://127.0.0.1:1/0", [])  # never connects: the call below raises by itself
    store.up = True

    async def lost() -> None:
        raise exc

    with pytest.raises(StoreUnavailable):
        asyncio.run(store.call(lost))
    assert store.up is False and store.failures == 1
