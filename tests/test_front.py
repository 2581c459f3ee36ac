"""The front reads at most the body cap plus one byte, whatever a client streams, and gives up on a body
that does not arrive in time (the live slow-client case measures the same through a real server)."""

import asyncio
from types import SimpleNamespace

from fraudpipe.serving.front import Front, front_for


class _Endless:
    """A chunked body that never ends, counting what was pulled from it."""

    def __init__(self, chunk: bytes = b"x" * 1024, delay: float = 0.0) -> None:
        self.chunk, self.delay, self.pulled = chunk, delay, 0

    def __aiter__(self):
        return self

    async def __anext__(self) -> bytes:
        if self.delay:
            await asyncio.sleep(self.delay)
        self.pulled += 1
        return self.chunk


def _scope():
    return SimpleNamespace(method="POST", headers={"transfer-encoding": "chunked"})


def _read(front: Front, protocol) -> tuple[bytes, bool]:
    async def run():
        front.__rsgi_init__(asyncio.get_running_loop())
        return await front._read_body(_scope(), protocol)

    return asyncio.run(run())


def test_an_endless_body_is_read_to_the_cap_plus_one_and_no_further():
    protocol = _Endless()
    body, timed_out = _read(Front(None, 4096, 5), protocol)
    assert len(body) == 4097 and not timed_out and protocol.pulled == 5


def test_a_body_that_trickles_past_the_deadline_times_out():
    body, timed_out = _read(Front(None, 4096, 1), _Endless(b"x", delay=0.2))
    assert timed_out and body == b""


def test_a_validating_app_is_fronted_with_its_own_cap(trained):
    from fraudpipe.serving.app import create_app

    settings = trained.with_overrides(max_body_bytes=1000)
    front = front_for(create_app("hardened", settings=settings), settings, validated=True)
    assert front.body_bytes == 1000 and front.body_seconds == settings.client_timeout


class _Headers:
    """RSGI's header map as granian hands it over: repeated headers stay repeated."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self.pairs = pairs

    def items(self):
        return list(self.pairs)

    def get(self, name, default=None):
        return next((value for key, value in self.pairs if key == name), default)

    def __contains__(self, name) -> bool:
        return any(key == name for key, _ in self.pairs)


def test_a_repeated_content_type_is_joined_so_a_later_one_cannot_win(trained, assessor_key):
    """``text/plain`` then ``application/json``: a proxy reading the first and the app the last would disagree
    on what the body is; joined, the header names no media type and the answer is 415, on both routes."""
    from fraudpipe import create_app

    scope = SimpleNamespace(method="POST", path="/predict", query_string="", client="127.0.0.1:5", server="127.0.0.1:80",
                            scheme="http", http_version="1.1",
                            headers=_Headers([("content-type", "text/plain"), ("content-type", "application/json"),
                                              ("content-length", "2"), ("x-api-key", assessor_key)]))
    environ = Front.environ(scope, b"{}", False)
    assert environ["CONTENT_TYPE"] == "text/plain, application/json"
    for profile in ("hardened", "inherited"):
        status, _, body = Front(create_app(profile, settings=trained), 4096, 5)._call(Front.environ(scope, b"{}", False))
        assert status == 415, (profile, body)
