"""What each control costs per request, side by side in one run: hardened /predict with every control
on against the same service with one control off, through the Flask test client (memory storage,
medians) and through gunicorn (2 workers, wrk, limits in Redis: the deployed path, where the limiter's
cost is a Redis round trip rather than a dictionary lookup)."""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from bench.common import TRANSACTION, fmt_us, median_seconds, trained_settings
from bench.serve import wrk
from fraudpipe import create_app
from fraudpipe.serving.app import CONTROL_NAMES
from security_tests.servers import free_port, gunicorn_direct, redis_server


def test_client_costs(settings, repeat: int) -> None:
    headers = {"X-API-Key": settings.api_keys[0]}
    payloads = [{**TRANSACTION, "amount": 100.0 + i % 500} for i in range(repeat)]

    def timing(profile: str = "hardened", off: tuple[str, ...] = ()) -> float:
        client = create_app(profile, settings=settings, controls_off=off).test_client()
        index = iter(range(10**9))
        return median_seconds(lambda: client.post("/predict", json=payloads[next(index) % len(payloads)],
                                                  headers=headers), repeat)

    all_on = timing()
    print(f"{'test client, memory storage':<34}{'median':>12}{'saved vs all on':>18}")
    print(f"{'hardened, every control on':<34}{fmt_us(all_on):>12}")
    for control in CONTROL_NAMES:
        off = timing(off=(control,))
        print(f"{'without ' + control:<34}{fmt_us(off):>12}{fmt_us(all_on - off):>18}")
    print(f"{'inherited (no controls)':<34}{fmt_us(timing('inherited')):>12}")


def gunicorn_costs(settings, seconds: int, connections: int) -> None:
    root = Path(tempfile.mkdtemp(prefix="fraudpipe-controls-bench-"))
    key = settings.api_keys[0]
    with redis_server() as redis:
        deployed = settings.with_overrides(rate_limit_storage=redis)

        def rps(app: str) -> float:
            with gunicorn_direct(deployed, free_port(), root / "server.log", 2, app=app) as server:
                return wrk(server.url, key, seconds, connections)["rps"]

        all_on = rps("fraudpipe:create_app('hardened')")
        print(f"{'gunicorn 2 workers, Redis limits':<34}{'req/s':>12}{'vs all on':>18}")
        print(f"{'hardened, every control on':<34}{all_on:>12.0f}")
        for control in CONTROL_NAMES:
            off = rps(f"fraudpipe:create_app('hardened', controls_off=({control!r},))")
            print(f"{'without ' + control:<34}{off:>12.0f}{off / all_on - 1:>+17.0%}")
        inherited = rps("fraudpipe:create_app('inherited')")
        print(f"{'inherited (no controls)':<34}{inherited:>12.0f}{inherited / all_on - 1:>+17.0%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=2000)
    parser.add_argument("--seconds", type=int, default=5, help="wrk duration per gunicorn variant")
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args()
    settings = trained_settings()
    test_client_costs(settings, args.repeat)
    if shutil.which("wrk") and shutil.which("redis-server"):
        gunicorn_costs(settings, args.seconds, args.connections)
    else:
        print("gunicorn costs skipped: needs wrk and redis-server (apt-get install wrk redis-server)")


if __name__ == "__main__":
    main()
