"""What each control costs per request: hardened /predict through the Flask test client with every
control on, against the same service with one control off, side by side in one run (medians)."""

from __future__ import annotations

import argparse

from bench.common import TRANSACTION, fmt_us, median_seconds, trained_settings
from fraudpipe import create_app
from fraudpipe.serving.app import CONTROL_NAMES


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=2000)
    args = parser.parse_args()
    settings = trained_settings()
    headers = {"X-API-Key": settings.api_keys[0]}
    payloads = [{**TRANSACTION, "amount": 100.0 + i % 500} for i in range(args.repeat)]

    def timing(profile: str = "hardened", off: tuple[str, ...] = ()) -> float:
        client = create_app(profile, settings=settings, controls_off=off).test_client()
        index = iter(range(10**9))
        return median_seconds(lambda: client.post("/predict", json=payloads[next(index) % len(payloads)],
                                                  headers=headers), args.repeat)

    all_on = timing()
    print(f"{'variant':<34}{'median':>12}{'saved vs all on':>18}")
    print(f"{'hardened, every control on':<34}{fmt_us(all_on):>12}")
    for control in CONTROL_NAMES:
        off = timing(off=(control,))
        print(f"{'without ' + control:<34}{fmt_us(off):>12}{fmt_us(all_on - off):>18}")
    print(f"{'inherited (no controls)':<34}{fmt_us(timing('inherited')):>12}")


if __name__ == "__main__":
    main()
