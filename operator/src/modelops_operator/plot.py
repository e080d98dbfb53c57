"""The training curve of a version: loss and metric per epoch, training vs validation, as a PNG."""
from __future__ import annotations

import json
from pathlib import Path


def training_curve(version_dir: Path, metric: str) -> Path | None:
    """Write <version>-training-curve.png beside the version directory; None when there is no history."""
    history_file = version_dir / "history.json"
    if not history_file.is_file():
        return None
    history = json.loads(history_file.read_text())
    series = history.get("epochs", history) if isinstance(history, dict) else history
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    names = {k for row in series for k in row} if isinstance(series, list) else set(series)
    # Keras names the compiled metrics itself; fall back to the first one it recorded.
    second = metric if metric in names else next((k for k in sorted(names) if k not in ("epoch", "loss")
                                                  and not k.startswith("val_")), "loss")
    for ax, key in zip(axes, ("loss", second)):
        for prefix, style in (("", "-"), ("val_", "--")):
            values = _column(series, prefix + key)
            if values:
                ax.plot(range(1, len(values) + 1), values, style, label=("validation " if prefix else "training ") + key)
        ax.set_xlabel("epoch")
        ax.set_title(key)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(f"{version_dir.parent.name} {version_dir.name}")
    fig.tight_layout()
    out = version_dir.parent / f"{version_dir.name}-training-curve.png"
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def _column(series, key: str) -> list[float]:
    if isinstance(series, dict):
        return [float(v) for v in series.get(key) or []]
    return [float(row[key]) for row in series if isinstance(row, dict) and key in row]
