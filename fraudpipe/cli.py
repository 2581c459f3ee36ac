"""``python -m fraudpipe``: train, sign, verify, serve and keys. Errors are one line and exit status 2."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fraudpipe.errors import ConfigError, FraudpipeError
from fraudpipe.settings import Settings


def _cmd_train(args, settings: Settings) -> int:
    from fraudpipe.data import Recipe
    from fraudpipe.pipeline import train

    metrics = train(settings, args.out, Recipe(args.rows, args.fraud_rate, args.seed))
    cm = metrics["confusion_matrix"]
    print(f"precision {metrics['precision']:.4f}  recall {metrics['recall']:.4f}  "
          f"ROC-AUC {metrics['roc_auc']:.4f}  PR-AUC {metrics['pr_auc']:.4f}  "
          f"TN {cm['tn']} FP {cm['fp']} FN {cm['fn']} TP {cm['tp']}")
    print(f"wrote signed artifacts to {metrics['out']} in {metrics['seconds']} s")
    if metrics.get("previous"):
        print(f"kept the previous release in {metrics['previous']} (remove it when no longer needed)")
    return 0


def _cmd_sign(args, settings: Settings) -> int:
    from fraudpipe import signing
    from fraudpipe.artifacts import resign

    trusted = None if args.reattest_provenance else signing.load_public_key(settings.trusted_key)
    hashes = resign(Path(args.dir), signing.load_private_key(settings.signing_key), trusted,
                    reattest_provenance=args.reattest_provenance)
    print(f"signed {len(hashes)} files in {args.dir} with {settings.signing_key}")
    return 0


def _cmd_verify(args, settings: Settings) -> int:
    from fraudpipe.artifacts import SERVING_FILE, load_artifacts

    folder = Path(args.dir or settings.artifacts_dir)
    loaded = load_artifacts(folder, settings.trusted_key)
    print(f"OK {folder}: {len(loaded.hashes)} files match the manifest signed by "
          f"{loaded.manifest.get('signer_key_id')}; pickles use only allowlisted globals; "
          f"serving model {loaded.hashes[SERVING_FILE][:12]}")
    return 0


def _cmd_serve(args, settings: Settings) -> int:
    from fraudpipe.serving.server import serve

    return serve(settings, profile=args.profile, host=args.host, port=args.port, workers=args.workers)


def _cmd_keys_new(args, settings: Settings) -> int:
    from fraudpipe.serving.auth import add_key

    key = add_key(settings.api_keys_file, args.name)
    print(key)
    print(f"stored only its SHA-256 under key id {args.name!r} in {settings.api_keys_file}; "
          "this key is not shown again", file=sys.stderr)
    return 0


def _cmd_monitor(args, settings: Settings) -> int:
    import json
    import time

    from fraudpipe.serving.monitor import QueryMonitor

    if args.stream:
        return _follow_stream(args, settings)
    path = Path(args.log or settings.audit_log or "")
    if not path.is_file():
        raise ConfigError(f"{path}: no audit log to read")
    monitor, alerts = QueryMonitor(), 0
    with open(path, encoding="utf-8") as handle:
        while True:
            line = handle.readline()
            if not line:
                if not args.follow:
                    break
                time.sleep(0.5)
                continue
            try:
                record = json.loads(line)
            except ValueError:
                continue
            for alert in monitor.observe(record):
                alerts += 1
                print(json.dumps({"ts": record.get("ts"), "request_id": record.get("request_id"), **alert}),
                      flush=True)
    print(f"{alerts} alert(s) from {path}", file=sys.stderr)
    return 0


def _follow_stream(args, settings: Settings) -> int:
    """The deployment's one alert stream (every worker and host), from FRAUDPIPE_RATE_LIMIT_STORAGE."""
    import json

    from fraudpipe.serving.monitor_store import read_alerts

    if settings.rate_limit_storage.startswith("memory://"):
        raise ConfigError("--stream reads the alerts shared in Redis: set FRAUDPIPE_RATE_LIMIT_STORAGE=redis://...")
    if args.log:
        raise ConfigError("--stream reads Redis, not a log file: give one or the other")
    alerts = 0
    try:
        for alert in read_alerts(settings.rate_limit_storage, args.follow):
            alerts += 1
            print(json.dumps(alert), flush=True)
    except Exception as exc:  # redis-py's errors (refused, timeout, wrong type) share no base with OSError
        raise ConfigError(f"the alert stream cannot be read: {type(exc).__name__}") from None
    print(f"{alerts} alert(s) from the shared stream", file=sys.stderr)
    return 0


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _reads(*names: str) -> str:
    """A subcommand's epilog: the FRAUDPIPE_* variables it reads, with their defaults."""
    from dataclasses import fields

    defaults = {f.name: f.default for f in fields(Settings)}
    lines = ["environment (see the README's Settings table):"]
    for name in names:
        default = defaults[name]
        shown = "unset" if default in (None, ()) else str(default).replace(str(Path.home()), "~")
        lines.append(f"  FRAUDPIPE_{name.upper():<20} default: {shown}")
    return "\n".join(lines)


SERVICE_SETTINGS = ("artifacts_dir", "trusted_key", "api_keys", "api_keys_file", "rate_limit", "rate_limit_storage",
                    "audit_log", "trusted_proxies", "max_body_bytes", "monitor_block", "client_timeout")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m fraudpipe",
                                     description="Fraud-detection pipeline and its inference service.")
    commands = parser.add_subparsers(dest="command", required=True)

    def command(name: str, help_text: str, *reads: str) -> argparse.ArgumentParser:
        return commands.add_parser(name, help=help_text, description=help_text[:1].upper() + help_text[1:] + ".",
                                   epilog=_reads(*reads) if reads else None,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)

    train = command("train", "generate data, fit, evaluate, write and sign artifacts",
                    "artifacts_dir", "signing_key", "trusted_key")
    train.add_argument("--out", type=Path, help="artifact folder (default FRAUDPIPE_ARTIFACTS_DIR): new, empty "
                       "or a fraudpipe release, which is kept as DIR.previous-<UTC time>; serve reads the folder "
                       "named by FRAUDPIPE_ARTIFACTS_DIR")
    train.add_argument("--rows", type=int, default=10_000, help="transactions to generate (default 10000)")
    train.add_argument("--fraud-rate", type=float, default=0.05, help="share of fraud rows (default 0.05)")
    train.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    train.set_defaults(handler=_cmd_train)

    sign = command("sign", "re-hash and re-sign a folder with the configured private key", "signing_key",
                   "trusted_key")
    sign.add_argument("dir", help="artifact folder: plain files only; its manifest must verify with the "
                                  "trusted key (FRAUDPIPE_TRUSTED_KEY)")
    sign.add_argument("--reattest-provenance", action="store_true",
                      help="sign even though the current manifest does not verify, vouching anew for the "
                           "versions and provenance it states (printed to stderr)")
    sign.set_defaults(handler=_cmd_sign)

    verify = command("verify", "run every load-time check without running the files", "artifacts_dir",
                     "trusted_key")
    verify.add_argument("dir", nargs="?", help="artifact folder (default FRAUDPIPE_ARTIFACTS_DIR)")
    verify.set_defaults(handler=_cmd_verify)

    serve = command("serve", "serve the API under granian (HTTP/1.1, keep-alive, timed clients); says on the console why it is not ready, if it is not",
                    *SERVICE_SETTINGS)
    serve.add_argument("--profile", choices=("hardened", "inherited"), default="hardened",
                       help="hardened: every control on (default); inherited: the service as acquired, no auth "
                            "or limits, loopback only")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port to bind (default 8000)")
    serve.add_argument("--workers", type=_positive_int, default=1,
                       help="worker processes (default 1); more than one needs FRAUDPIPE_RATE_LIMIT_STORAGE=redis://")
    serve.set_defaults(handler=_cmd_serve)

    monitor = command("monitor", "replay or follow the shared audit log through the probing monitor (sees every "
                      "worker); prints alert lines", "audit_log")
    monitor.add_argument("log", nargs="?", help="audit log (default FRAUDPIPE_AUDIT_LOG)")
    monitor.add_argument("--follow", action="store_true", help="keep reading new records, like tail -f")
    monitor.add_argument("--stream", action="store_true",
                         help="read the alerts every worker and host wrote to the shared Redis stream "
                              "(FRAUDPIPE_RATE_LIMIT_STORAGE) instead of one host's audit log")
    monitor.set_defaults(handler=_cmd_monitor)

    keys = command("keys", "manage API keys")
    keys_commands = keys.add_subparsers(dest="keys_command", required=True)
    new = keys_commands.add_parser("new", help="print a new API key once; store only its hash",
                                   description="Print a new API key once and append only its SHA-256 to the keys "
                                               "file, which serve reads.",
                                   epilog=_reads("api_keys_file"), formatter_class=argparse.RawDescriptionHelpFormatter)
    new.add_argument("--name", required=True, help="key id, written to the audit log instead of the key")
    new.set_defaults(handler=_cmd_keys_new)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        return args.handler(args, settings)
    except FraudpipeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
