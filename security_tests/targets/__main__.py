"""``python -m security_tests.targets draft --from-openapi URL``: a first target profile from a service's
OpenAPI document. It lives with the assessment, not in the service under test: describing a target is the
assessor's job."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from urllib.parse import urlparse

from fraudpipe.errors import ConfigError
from fraudpipe.serving.server import is_loopback
from security_tests.redaction import inert
from security_tests.targets.profile import BadInput, draft_from_openapi


def draft(args: argparse.Namespace) -> int:
    """Loopback only unless allowed; a draft never overwrites a file."""
    import requests

    parsed = urlparse(args.from_openapi)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ConfigError(f"--from-openapi must be an http(s) URL, got {args.from_openapi!r}")
    if not is_loopback(parsed.hostname) and not args.allow_remote_target:
        raise ConfigError(f"{args.from_openapi} is not a loopback address; pass --allow-remote-target only for "
                          "a service you are authorised to assess")
    from security_tests.safe_http import DOCUMENT_CAP, parse_answer, safe_session
    from security_tests.contract import TargetMisbehaved

    try:
        response = safe_session(cap=DOCUMENT_CAP, timeout=args.timeout).get(args.from_openapi, allow_redirects=False)
        response.raise_for_status()
        document = parse_answer(response.content)
    except TargetMisbehaved as exc:
        raise BadInput(f"cannot fetch {args.from_openapi}: {exc}") from None
    except requests.RequestException as exc:
        raise ConfigError(f"cannot fetch {args.from_openapi}: {type(exc).__name__}: {str(exc)[:200]}") from None
    if not isinstance(document, dict):
        raise BadInput(f"{args.from_openapi} did not return an OpenAPI object")
    try:
        text = draft_from_openapi(document, f"{parsed.scheme}://{parsed.netloc}", document_path=parsed.path or None)
    except BadInput as exc:
        raise BadInput(f"{args.from_openapi}: {exc}") from None
    if args.out is None:
        print(text, end="")
        return 0
    if args.out.exists():
        raise ConfigError(f"{args.out} exists; choose another --out (a draft never overwrites a file)")
    args.out.write_text(text)
    print(f"wrote a draft profile to {args.out}; fill in every TODO before using it", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m security_tests.targets",
                                     description="Target profiles for the live assessment.")
    commands = parser.add_subparsers(dest="command", required=True)
    sub = commands.add_parser("draft", help="write a draft target profile from the target's OpenAPI document")
    sub.add_argument("--from-openapi", required=True, metavar="URL",
                     help="the target's OpenAPI document, e.g. http://127.0.0.1:8000/openapi.json")
    sub.add_argument("--out", type=Path, help="write the draft here (default: print it)")
    sub.add_argument("--allow-remote-target", action="store_true", help="permit a non-loopback URL")
    sub.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the document (default 10); "
                     "the document is read up to 16 MiB, never through a redirect")
    sub.set_defaults(handler=draft)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except BadInput as exc:
        print(f"error: {inert(str(exc))}", file=sys.stderr)
        return 4
    except ConfigError as exc:
        print(f"error: {inert(str(exc))}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
