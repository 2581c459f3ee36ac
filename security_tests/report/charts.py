"""Evidence chart specs (plain data, JSON-safe) rendered to PNG with matplotlib: one renderer for HTML and PDF.

Axes are honest: a series that lives in [0, 1] (a rate, a label, a probability) is drawn on [0, 1], so a
flat line at 1.0 reads as 100 %, not as noise on a 0.96-1.04 axis.
"""

from __future__ import annotations

import io

from fraudpipe import charts as _backend  # noqa: F401  (selects the Agg backend before pyplot is imported)
import matplotlib.pyplot as plt  # noqa: E402


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight", pad_inches=0.15, metadata={"Software": None})
    plt.close(fig)
    return buffer.getvalue()


def _confusion(cells: dict, title: str) -> bytes:
    tn, fp, fn, tp = cells["tn"], cells["fp"], cells["fn"], cells["tp"]
    grid = [[tn, fp], [fn, tp]]
    fig, ax = plt.subplots(figsize=(4.2, 3.6), layout="constrained")
    ax.imshow(grid, cmap="Blues")
    for i in range(2):
        for j in range(2):
            ax.text(j, i, f"{grid[i][j]:,}", ha="center", va="center", fontsize=12,
                    color="white" if grid[i][j] > (tn + tp) / 4 else "black")
    ax.set_xticks([0, 1], ["legitimate", "fraud"])
    ax.set_yticks([0, 1], ["legitimate", "fraud"])
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    ax.set_title(title, fontsize=10)
    return _png(fig)


def _line(spec: dict) -> bytes:
    fig, ax = plt.subplots(figsize=(5.6, 3.2), layout="constrained")
    values = []
    for name, (xs, ys) in spec["series"].items():
        ys = [float("nan") if y is None else y for y in ys]
        values += [y for y in ys if y == y]
        ax.plot(xs, ys, marker="o", markersize=3, label=name)
    if spec.get("logx"):
        ax.set_xscale("log")
    low_high = spec.get("ylim") or ([0, 1] if values and min(values) >= 0 and max(values) <= 1 else None)
    if low_high:
        ax.set_ylim(low_high[0] - 0.03, low_high[1] + 0.03)
    ax.set_title(spec["title"], fontsize=10)
    ax.set_xlabel(spec["xlabel"])
    ax.set_ylabel(spec["ylabel"])
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _png(fig)


def render_chart(spec: dict) -> bytes:
    if spec["kind"] == "confusion":
        return _confusion(spec["cells"], spec["title"])
    return _line(spec)
