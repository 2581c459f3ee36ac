"""Evidence chart specs (plain data, JSON-safe) rendered to PNG with matplotlib: one renderer for HTML and PDF."""

from __future__ import annotations

from fraudpipe import charts


def render_chart(spec: dict) -> bytes:
    if spec["kind"] == "confusion":
        return charts.confusion_matrix_png(**spec["cells"], title=spec["title"])
    series = {name: (xs, [float("nan") if y is None else y for y in ys])
              for name, (xs, ys) in spec["series"].items()}
    return charts.line_png(series, spec["title"], spec["xlabel"], spec["ylabel"], logx=spec.get("logx", False))


def render_charts(specs: list[dict]) -> list[tuple[str, bytes]]:
    return [(spec["title"], render_chart(spec)) for spec in specs]
