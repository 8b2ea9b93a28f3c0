"""The burst's plot: Connectors Running over time against the floor's Deployments Available."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


def burst_plot(path: Path, floor: Sequence[float], burst: Sequence[float], count: int) -> None:
    import matplotlib  # noqa: PLC0415 -- only the report needs it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    figure, axes = plt.subplots(figsize=(8, 4.5), dpi=100)
    for times, label in ((floor, "floor: Deployments created directly (Available)"),
                         (burst, "connector-operator: Connectors (Running)")):  # fmt: skip
        ordered = sorted(times)
        axes.step([0.0, *ordered], range(len(ordered) + 1), where="post", label=label)
    axes.set_xlabel("seconds since the apply")
    axes.set_ylabel("objects ready")
    axes.set_title(f"{count} applied at once")
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
