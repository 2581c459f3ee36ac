"""PNG charts drawn with matplotlib's Agg backend, as bytes, with no timestamps so output is repeatable."""

from __future__ import annotations

import io
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return buffer.getvalue()


def confusion_matrix_png(tn: int, fp: int, fn: int, tp: int, title: str = "Confusion matrix") -> bytes:
    fig, ax = plt.subplots(figsize=(3.6, 3.2))
    cells = [[tn, fp], [fn, tp]]
    ax.imshow(cells, cmap="Blues")
    for i in range(2):
        for j in range(2):
            ax.text(j, i, str(cells[i][j]), ha="center", va="center", fontsize=12,
                    color="white" if cells[i][j] > (tn + tp) / 4 else "black")
    ax.set_xticks([0, 1], ["legitimate", "fraud"])
    ax.set_yticks([0, 1], ["legitimate", "fraud"])
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    ax.set_title(title)
    return _png(fig)


def line_png(series: dict[str, tuple[Sequence[float], Sequence[float]]], title: str, xlabel: str,
             ylabel: str, logx: bool = False, step: bool = False) -> bytes:
    """One line per named series of (x, y); used for ROC, probing curves and fidelity curves."""
    fig, ax = plt.subplots(figsize=(5.6, 3.2))
    for name, (xs, ys) in series.items():
        if step:
            ax.step(xs, ys, where="mid", marker="o", markersize=3, label=name)
        else:
            ax.plot(xs, ys, marker="o", markersize=3, label=name)
    if logx:
        ax.set_xscale("log")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _png(fig)
