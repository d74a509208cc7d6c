"""Scripts that make the shipped samples in tasks/samples/, deterministically, in each hub
dataset's schema; and the few pieces they share."""
from __future__ import annotations

import io
from pathlib import Path


def write_parquet(columns: dict, features, path: Path) -> Path:
    """Write one split's columns with the hub's features, as the hub names its files."""
    import datasets

    path.parent.mkdir(parents=True, exist_ok=True)
    datasets.Dataset.from_dict(columns, features=features).to_parquet(str(path))
    return path


def subplots(w: float, h: float):
    """A matplotlib figure and axes on the Agg backend, at the samples' 80 dpi."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(w, h), dpi=80)


def png(fig) -> bytes:
    """The figure as PNG bytes, without the software tag (so the bytes depend on the drawing alone)."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()
