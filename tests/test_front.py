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
