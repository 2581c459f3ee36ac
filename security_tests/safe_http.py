"""The assessor's HTTP session: everything a target sends is hostile until measured.

Every request to a target (the attacks, the OpenAPI document, schemathesis' own calls) goes through
``safe_session``. What a target cannot do to the assessor through it:

- **take the key elsewhere**: a redirect is an answer, never followed (requests forwards custom headers
  such as ``X-API-Key`` to whatever origin a 307 names);
- **exhaust its memory**: a body is read in chunks up to a cap, decompression included (a 3 MB gzip answer
  that inflates to 3 GiB stops at the cap plus one chunk), and only gzip/deflate are decoded;
- **hold it**: connect and read timeouts, and a deadline per exchange enforced by shutting the socket down
  (a target that trickles its headers a byte at a time never resets it); after ``SILENT_AFTER`` exchanges
  in a row without an answer the target is taken as silent and the rest of the run is refused at once;
- **crash it**: JSON nested deeper than ``MAX_JSON_DEPTH`` is refused before ``json.loads`` recurses;
- **steer it**: no cookie a target sets is ever sent back (a planted session could answer keyless requests
  and make an open front door read as held), and no proxy or ``.netrc`` from the environment is used.

A target that breaks one of these rules gets no verdict from that exchange: ``TargetMisbehaved`` (a
``NotAssessed`` of kind ``target``) says which rule, and the findings that needed the answer read
"not assessed" with that reason.
"""

from __future__ import annotations

import json
import socket
import threading
import zlib
from http.cookiejar import DefaultCookiePolicy
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from security_tests.contract import TargetMisbehaved

ANSWER_CAP = 1 << 20
"""Bytes of one answer the assessor keeps (decoded): 1 MiB."""
DOCUMENT_CAP = 16 << 20
"""Bytes of an OpenAPI document: 16 MiB, larger than any real service's description."""
MAX_JSON_DEPTH = 64
SILENT_AFTER = 3
DEFAULT_TIMEOUT = 10.0
CHUNK = 64 << 10


_current = threading.local()
"""The exchange this thread is waiting on: its connection registers the socket there for the deadline."""


class _Exchange:
    """One request's deadline: when it passes, the socket is shut down, which wakes a blocked read."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.sock = None
        self.fired = threading.Event()
        self._timer = threading.Timer(seconds, self._stop)
        self._timer.daemon = True

    def __enter__(self) -> _Exchange:
        _current.exchange = self
        self._timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self._timer.cancel()
        _current.exchange = None

    def _stop(self) -> None:
        self.fired.set()
        if self.sock is not None:
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def _register(sock) -> None:
    exchange = getattr(_current, "exchange", None)
    if exchange is not None:
        exchange.sock = sock
        if exchange.fired.is_set():
            exchange._stop()


class _WatchedConnection(HTTPConnection):
    def request(self, *args, **kwargs):
        super().request(*args, **kwargs)
        _register(self.sock)


class _WatchedHTTPSConnection(HTTPSConnection):
    def request(self, *args, **kwargs):
        super().request(*args, **kwargs)
        _register(self.sock)


class _WatchedPool(HTTPConnectionPool):
    ConnectionCls = _WatchedConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


_silent: dict[str, int] = {}
_silent_lock = threading.Lock()


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class BoundedAdapter(HTTPAdapter):
    """Reads every answer under the cap, the deadline and the decoder rules; the body it hands requests is
    already decoded and bounded, so ``response.content`` and ``response.json()`` cannot grow past it."""

    def __init__(self, cap: int = ANSWER_CAP, timeout: float = DEFAULT_TIMEOUT,
                 source_address: str | None = None) -> None:
        self.cap, self.timeout, self.source_address = cap, timeout, source_address
        super().__init__(max_retries=0)

    def init_poolmanager(self, *args, **kwargs):
        if self.source_address:
            kwargs["source_address"] = (self.source_address, 0)
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _WatchedPool, "https": _WatchedHTTPSPool}

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
        origin = _origin(request.url)
        if _silent.get(origin, 0) >= SILENT_AFTER:
            raise TargetMisbehaved(f"the target stopped answering ({SILENT_AFTER} requests in a row with no "
                                   f"answer in {self.timeout:g} s); nothing more was sent to it")
        request.headers["Accept-Encoding"] = "gzip, deflate"
        with _Exchange(self.timeout) as exchange:
            try:
                response = super().send(request, stream=True, timeout=(self.timeout, self.timeout), verify=verify,
                                        cert=cert, proxies=proxies)
                body = _read(response, self.cap, exchange)
            except TargetMisbehaved:
                raise
            except (requests.exceptions.Timeout, requests.exceptions.ConnectionError, OSError) as exc:
                if exchange.fired.is_set() or isinstance(exc, requests.exceptions.Timeout):
                    self._count_silence(origin)
                    raise TargetMisbehaved(f"no answer in {self.timeout:g} s") from None
                raise TargetMisbehaved(f"the connection failed ({type(exc).__name__})") from None
            except requests.exceptions.RequestException as exc:
                raise TargetMisbehaved(f"the answer could not be read ({type(exc).__name__})") from None
        if exchange.fired.is_set():
            self._count_silence(origin)
            raise TargetMisbehaved(f"no complete answer in {self.timeout:g} s")
        with _silent_lock:
            _silent.pop(origin, None)
        if body.lstrip()[:1] in (b"[", b"{") and json_depth(body) > MAX_JSON_DEPTH:  # before any caller's json()
            raise TargetMisbehaved(f"the answer's JSON nests deeper than {MAX_JSON_DEPTH} levels")
        response._content = body
        response._content_consumed = True
        response.headers.pop("Content-Encoding", None)
        return response

    @staticmethod
    def _count_silence(origin: str) -> None:
        with _silent_lock:
            _silent[origin] = _silent.get(origin, 0) + 1


def _read(response, cap: int, exchange: _Exchange) -> bytes:
    encoding = response.headers.get("Content-Encoding", "").strip().lower()
    if encoding not in ("", "identity", "gzip", "x-gzip", "deflate"):
        response.close()
        raise TargetMisbehaved(f"the answer came in an encoding the assessor did not accept ({encoding[:40]!r})")
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > cap and encoding in ("", "identity"):
        response.close()
        raise TargetMisbehaved(f"answer over {_size(cap)} (Content-Length {int(declared):,})")
    inflate = _Inflater(encoding) if encoding not in ("", "identity") else None
    out = bytearray()
    received = 0
    while True:
        if exchange.fired.is_set():
            response.close()
            raise TargetMisbehaved(f"no complete answer in {exchange.seconds:g} s")
        chunk = response.raw.read(CHUNK, decode_content=False)
        if not chunk:
            break
        received += len(chunk)
        if received > cap:
            response.close()
            raise TargetMisbehaved(f"answer over {_size(cap)}")
        out += inflate.feed(chunk, cap + 1 - len(out)) if inflate else chunk
        if len(out) > cap:
            response.close()
            raise TargetMisbehaved(f"answer over {_size(cap)} once decompressed")
    return bytes(out)


class _Inflater:
    """gzip or zlib (or raw deflate, which some servers send as "deflate"), never more than asked for."""

    def __init__(self, encoding: str) -> None:
        self._decoder = zlib.decompressobj(47)
        self._raw = encoding == "deflate"
        self._started = False

    def feed(self, data: bytes, room: int) -> bytes:
        """Up to ``room`` bytes from ``data``; input left over stays only while the output is full (the caller
        then stops at the cap), so nothing is pending once the body has been read."""
        try:
            out = self._decoder.decompress(data, max(room, 1))
            while self._decoder.unconsumed_tail and len(out) < room:
                out += self._decoder.decompress(self._decoder.unconsumed_tail, room - len(out))
        except zlib.error:
            if self._raw and not self._started:
                self._decoder = zlib.decompressobj(-15)
                self._raw = False
                return self.feed(data, room)
            raise TargetMisbehaved("the answer's compressed body is corrupt") from None
        self._started = True
        return out


def _size(cap: int) -> str:
    return f"{cap >> 20} MiB" if cap >= 1 << 20 else f"{cap:,} bytes"


class _NoRedirectSession(requests.Session):
    """A 3xx is the target's answer; its Location is never visited."""

    def get_redirect_target(self, resp):
        return None


def safe_session(cap: int = ANSWER_CAP, timeout: float = DEFAULT_TIMEOUT,
                 source_address: str | None = None) -> requests.Session:
    """A session every request to a target goes through (see the module docstring for its rules)."""
    session = _NoRedirectSession()
    session.trust_env = False  # no proxy or .netrc from the environment may see the assessor's keys
    session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))  # a target cannot plant a session
    session.max_redirects = 0
    adapter = BoundedAdapter(cap, timeout, source_address)
    for scheme in ("http://", "https://"):
        session.mount(scheme, adapter)
    return session


def json_depth(data: bytes | str, limit: int = MAX_JSON_DEPTH) -> int:
    """How deep the brackets of a JSON text nest (strings skipped), counting no further than ``limit + 1``."""
    text = data if isinstance(data, bytes) else data.encode("utf-8", "surrogatepass")
    if text.count(b"[") + text.count(b"{") <= limit:
        return min(text.count(b"[") + text.count(b"{"), limit)
    depth = deepest = 0
    in_string = escaped = False
    for byte in text:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    return deepest
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest


def parse_answer(data: bytes):
    """An answer's body: JSON when it is JSON (nested at most ``MAX_JSON_DEPTH``), else its text."""
    if json_depth(data) > MAX_JSON_DEPTH:
        raise TargetMisbehaved(f"the answer's JSON nests deeper than {MAX_JSON_DEPTH} levels")
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        return data.decode("utf-8", "replace")
