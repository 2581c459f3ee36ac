"""The one interface every attack talks to: in-process (Flask test client) or over HTTP.

``predict`` attaches the client's own API key unless ``headers`` says otherwise, so an attack that
assumes a legitimate account and one that tests the front door use the same call.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from security_tests.safe_http import parse_answer
from security_tests.redaction import register_secret

if TYPE_CHECKING:
    from security_tests.targets.profile import TargetProfile


NOT_SENT = 0  # the status of a request the HTTP client refused to put on the wire


class Fields(dict):
    """Response header fields, looked up case-insensitively (RFC 9110): granian, HTTP/2 gateways and many
    proxies send every name in lower case, and ``Retry-After`` must still be found. Still a plain dict for
    the report."""

    def _name(self, name: str) -> str:
        if dict.__contains__(self, name) or not isinstance(name, str):
            return name
        lowered = name.lower()
        return next((key for key in self if key.lower() == lowered), name)

    def __getitem__(self, name: str) -> str:
        return dict.__getitem__(self, self._name(name))

    def __contains__(self, name: object) -> bool:
        return dict.__contains__(self, self._name(name))

    def get(self, name: str, default=None):
        return dict.get(self, self._name(name), default)


class Answer(NamedTuple):
    """One response. With a ``profile`` (a live target) the label is read where the profile says; without
    one it is fraudpipe's in-process ``prediction`` (0/1)."""

    status: int
    body: dict | list | str | None
    headers: dict[str, str]
    profile: TargetProfile | None = None
    sent: dict[str, str] = {}
    """The headers the request carried (the client's own key included), for the report's samples."""

    @property
    def ok(self) -> bool:
        if self.profile is not None:
            return 200 <= self.status < 300 and self.profile.label_of(self.body) is not None
        return self.status == 200 and isinstance(self.body, dict) and "prediction" in self.body

    @property
    def label(self) -> Any:
        if self.profile is not None:
            return self.profile.label_of(self.body) if self.ok else None
        return self.body.get("prediction") if self.ok else None

    @property
    def positive(self) -> bool | None:
        """Whether the answer is the class the attacker wants to avoid (None when there is no label)."""
        if not self.ok:
            return None
        return self.profile.is_positive(self.label) if self.profile is not None else self.label == 1


class Client(Protocol):
    target: str

    def predict(self, payload: object = None, headers: dict | None = None, *, raw_body: bytes | None = None,
                content_type: str = "application/json", query: str = "") -> Answer: ...

    def get(self, path: str, headers: dict | None = None) -> Answer: ...

    def request(self, method: str, path: str, headers: dict | list | None = None, body: bytes = b"") -> Answer: ...


def _body(payload, raw_body, profile=None):
    """The bytes sent: ``raw_body`` as it is, else the payload placed in the profile's request shape."""
    if raw_body is not None:
        return raw_body
    return json.dumps(profile.body(payload) if profile is not None else payload).encode()


class _KeyedClient:
    """The caller's own key goes on every request unless the attack sets the headers itself."""

    _api_key: str | None = None
    profile: TargetProfile | None = None

    @property
    def api_key(self) -> str | None:
        """The key this client sends; against a live target it is the target's, not the assessor's."""
        return self._api_key

    def credentials(self) -> dict[str, str]:
        """The headers that carry this client's own key."""
        return self._headers(None)

    def _headers(self, headers):
        if headers is not None:
            return headers
        if self.profile is not None:
            return self.profile.auth_headers(self._api_key)
        return {"X-API-Key": self._api_key} if self._api_key else {}


class FlaskClient(_KeyedClient):
    """Drives an app in-process through Werkzeug's test client: the same WSGI stack, no socket."""

    wire_strips_whitespace = False  # the WSGI environ carries a header value verbatim

    def __init__(self, app, api_key: str | None = None, remote_addr: str = "198.51.100.7",
                 forwarded_for: str | None = None, profile: TargetProfile | None = None) -> None:
        self.app = app
        self.profile = profile
        self.target = f"in-process:{app.extensions['fraudpipe'].profile}"
        self._client = app.test_client(use_cookies=False)  # a Cookie header an attack sets goes out as is
        self._api_key = api_key
        register_secret(api_key)
        self.remote_addr = remote_addr
        self._environ = {"REMOTE_ADDR": remote_addr}
        if forwarded_for is not None:  # what a proxy in front of the service would add
            self._environ["HTTP_X_FORWARDED_FOR"] = forwarded_for

    def predict(self, payload=None, headers=None, *, raw_body=None, content_type="application/json", query=""):
        sent = self._headers(headers)
        response = self._client.post(f"/predict{query}", data=_body(payload, raw_body), headers=sent,
                                     content_type=content_type, environ_base=self._environ)
        return Answer(response.status_code, parse_answer(response.get_data()), Fields(response.headers), self.profile, sent)

    def get(self, path, headers=None):
        response = self._client.get(path, headers=headers or {}, environ_base=self._environ)
        return Answer(response.status_code, parse_answer(response.get_data()), Fields(response.headers), self.profile)

    def request(self, method, path, headers=None, body=b""):
        """Any method, any path, headers exactly as given (a list of pairs may repeat a name)."""
        response = self._client.open(path, method=method, data=body, headers=headers or {},
                                     environ_base=self._environ)
        return Answer(response.status_code, parse_answer(response.get_data()), Fields(response.headers), self.profile)


class HttpClient(_KeyedClient):
    """Drives a running service over real HTTP through the assessor's ``safe_session``: a redirect is an
    answer, never followed (it would carry the key to whatever origin the target names); answers are capped
    at 1 MiB decoded, bounded in time and depth; a target breaking those rules raises ``TargetMisbehaved``."""

    wire_strips_whitespace = True  # RFC 9110: edge whitespace of a field value is not part of it

    def __init__(self, base_url: str, api_key: str | None = None, timeout: float | None = None,
                 source_address: str | None = None, profile: TargetProfile | None = None) -> None:
        from security_tests.safe_http import safe_session

        self.target = base_url.rstrip("/")
        self._timeout = timeout or (profile.timeout if profile is not None else 10.0)
        self._session = safe_session(timeout=self._timeout, source_address=source_address)
        self._api_key = api_key
        register_secret(api_key)
        self.profile = profile
        self.predict_path = profile.predict_path if profile is not None else "/predict"
        self.source_address = source_address

    @property
    def session(self):
        """The HTTP session (bound to this client's source address), for tools that send their own requests."""
        return self._session

    def local_port(self) -> int | None:
        """The local port of the connection this client keeps alive (None before the first request)."""
        manager = self._session.get_adapter(self.target).poolmanager
        for key in manager.pools.keys():
            for connection in manager.pools[key].pool.queue:
                if connection is not None and connection.sock is not None:
                    return connection.sock.getsockname()[1]
        return None

    def predict(self, payload=None, headers=None, *, raw_body=None, content_type="application/json", query=""):
        sent = self._headers(headers)
        method = self.profile.method if self.profile is not None else "POST"
        response = self._session.request(method, f"{self.target}{self.predict_path}{query}",
                                         data=_body(payload, raw_body, self.profile),
                                         headers={"Content-Type": content_type, **sent}, allow_redirects=False)
        return Answer(response.status_code, parse_answer(response.content), Fields(response.headers), self.profile, sent)

    def get(self, path, headers=None):
        response = self._session.get(f"{self.target}{path}", headers=headers or {}, allow_redirects=False)
        return Answer(response.status_code, parse_answer(response.content), Fields(response.headers), self.profile)

    def request(self, method, path, headers=None, body=b""):
        """A repeated header name (a list of pairs) is sent as one comma-joined field, as proxies do."""
        if isinstance(headers, list):
            joined: dict[str, str] = {}
            for name, value in headers:
                joined[name] = f"{joined[name]}, {value}" if name in joined else value
            headers = joined
        import requests

        try:
            response = self._session.request(method, f"{self.target}{path}", headers=headers or {}, data=body,
                                             allow_redirects=False)
        except requests.exceptions.InvalidHeader as exc:  # HTTP itself cannot carry it (e.g. edge whitespace)
            return Answer(NOT_SENT, {"error": "not_sendable", "reason": str(exc)}, {}, self.profile)
        return Answer(response.status_code, parse_answer(response.content), Fields(response.headers), self.profile)


def require_answer(answer: Answer, what: str) -> Answer:
    """The precondition of every black-box measurement: the target answers a valid request with a label."""
    if not answer.ok:
        from security_tests.contract import NotAssessed, TargetMisbehaved

        if 300 <= answer.status < 400:
            location = {k.lower(): v for k, v in answer.headers.items()}.get("location", "nowhere")
            raise TargetMisbehaved(f"the target redirected {what} to {location[:120]} (status {answer.status}); "
                                   "the assessor never follows a redirect")
        raise NotAssessed(f"not assessed: the target did not answer {what} with a label "
                          f"(status {answer.status}: {str(answer.body)[:120]})")
    return answer


SECRET_HEADERS = ("x-api-key", "authorization")


def exchange(label: str, payload, answer: Answer, headers: dict | None = None) -> dict:
    """A named request and its response as they go in the report (an ``Evidence`` sample): the headers the
    request carried (the client's own key unless the attack set them); an API key or bearer token is shown
    only as present and its length."""
    carried = answer.sent if headers is None else headers
    secret = SECRET_HEADERS + ((answer.profile.auth_header.lower(),) if answer.profile is not None else ())
    shown = {k: (f"<present, {len(v)} chars>" if k.lower() in secret else v) for k, v in carried.items()}
    return {"label": label, "request": {"headers": shown, "body": payload},
            "response": {"status": answer.status, "body": answer.body}}
