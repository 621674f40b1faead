"""Drawing what happened in training, from the history that ``fit`` returns.

Introduced in lesson 00. The library returns data; these helpers only draw it. Colours
are from the Okabe-Ito palette, which stays distinguishable for colour-blind readers,
and each line also has its own marker and style.
"""
from __future__ import annotations

__all__ = ["OKABE_ITO", "plot_comparison", "plot_confusion_matrix", "plot_history", "plot_learning_gap",
           "plot_reliability"]

OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]


def plot_history(history, *, metric: str = "accuracy", title: str = "Learning curves"):
    """Training and validation loss (left) and a validation metric (right), per epoch."""
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] for r in history]
    fig, (ax_loss, ax_metric) = plt.subplots(1, 2, figsize=(10, 3.6))
    ax_loss.plot(epochs, [r["train_loss"] for r in history], "o-", color=OKABE_ITO[0], label="training")
    if "eval_loss" in history[0]:
        ax_loss.plot(epochs, [r["eval_loss"] for r in history], "s--", color=OKABE_ITO[1], label="validation")
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy loss", title="Loss")
    key = f"eval_{metric}"
    if key in history[0]:
        ax_metric.plot(epochs, [r[key] for r in history], "s--", color=OKABE_ITO[1], label="validation")
        best = getattr(history, "best_epoch", None)
        if best is not None:
            ax_metric.axvline(best, color=OKABE_ITO[7], linestyle=":", label=f"best epoch ({best})")
    ax_metric.set(xlabel="epoch", ylabel=metric, title=metric.replace("_", " ").capitalize())
    for ax in (ax_loss, ax_metric):
        ax.set_xticks(epochs)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_confusion_matrix(counts, label_names, *, title: str = "Confusion matrix", ax=None):
    """Counts of (true class, predicted class) as a grid with the numbers written in. Lesson 07."""
    import matplotlib.pyplot as plt

    counts = [[int(c) for c in row] for row in counts]
    if ax is None:
        _, ax = plt.subplots(figsize=(2.8 + 1.1 * len(label_names), 1.4 + 1.1 * len(label_names)))
    image = ax.imshow(counts, cmap="Blues")
    top = max(max(row) for row in counts) or 1
    for i, row in enumerate(counts):
        for j, c in enumerate(row):
            ax.text(j, i, str(c), ha="center", va="center", color="white" if c > top / 2 else "black")
    ticks = range(len(label_names))
    ax.set_xticks(ticks, label_names)
    ax.set_yticks(ticks, label_names)
    ax.set(xlabel="predicted class", ylabel="true class", title=title)
    ax.figure.colorbar(image, ax=ax, label="examples")
    ax.figure.tight_layout()
    return ax.figure


def plot_reliability(bins, *, title: str = "Reliability diagram", ax=None, label: str = "model", color=None):
    """Accuracy against confidence per bin (a ReliabilityBins), with the diagonal of perfect calibration. Lesson 07.

    Call it again with the same `ax` to draw a second model on the same axes.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(4.6, 4.2))
        ax.plot([0, 1], [0, 1], ":", color=OKABE_ITO[7], label="perfect calibration")
    shown = [(c, a, n) for c, a, n in zip(bins.confidence, bins.accuracy, bins.counts) if n > 0]
    ax.plot([c for c, _, _ in shown], [a for _, a, _ in shown], "o-", color=color or OKABE_ITO[0],
            label=f"{label} (ECE {bins.ece:.3f})")
    total = sum(bins.counts)
    for c, a, n in shown:  # marker labels: how many predictions each point averages
        ax.annotate(f"{n}", (c, a), textcoords="offset points", xytext=(4, -10), fontsize=7,
                    color=color or OKABE_ITO[0], alpha=0.5 + 0.5 * n / total)
    ax.set(xlabel="confidence (mean, per bin)", ylabel="accuracy (per bin)", xlim=(0, 1.02), ylim=(0, 1.02),
           title=title)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    return ax.figure


def plot_learning_gap(history, *, title: str = "Training and validation loss", max_epochs: int | None = None):
    """Training and validation loss with the gap between them shaded, the best epoch and any early stop. Lesson 08."""
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] for r in history]
    train, val = [r["train_loss"] for r in history], [r["eval_loss"] for r in history]
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    ax.plot(epochs, train, "o-", color=OKABE_ITO[0], label="training loss")
    ax.plot(epochs, val, "s--", color=OKABE_ITO[1], label="validation loss")
    ax.fill_between(epochs, train, val, color=OKABE_ITO[3], alpha=0.15, label="gap (validation - training)")
    best = getattr(history, "best_epoch", None)
    if best is not None:
        ax.axvline(best, color=OKABE_ITO[2], linestyle=":", label=f"best epoch ({best})")
    if getattr(history, "stopped_early", False) and max_epochs:
        ax.axvspan(epochs[-1], max_epochs, color=OKABE_ITO[7], alpha=0.08,
                   label=f"epochs not run ({max_epochs - epochs[-1]})")
        ax.set_xlim(right=max_epochs + 0.3)
    ax.set(xlabel="epoch", ylabel="cross-entropy loss", title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_comparison(rows, *, title: str = "Which method, when"):
    """Accuracy against trainable parameters (log scale), then training time, peak memory and checkpoint size.

    Lesson 10. `rows` is what ``ftlib.compare.compare_methods`` returns; each method keeps its
    colour and marker in every panel.
    """
    import matplotlib.pyplot as plt

    names = [r["method"] for r in rows]
    colours = [OKABE_ITO[i % len(OKABE_ITO)] for i in range(len(rows))]
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.8), gridspec_kw={"width_ratios": [1.6, 1, 1, 1]})
    ax = axes[0]
    for i, r in enumerate(rows):
        ax.scatter(r["trainable"], r["accuracy"], s=70, color=colours[i], marker="osD^vP*X"[i % 8],
                   edgecolor="black", linewidth=0.5, label=r["method"], zorder=3)
    ax.set(xscale="log", xlabel="trainable parameters (log scale)", ylabel="test accuracy",
           title="Accuracy for what trains")
    ax.margins(x=0.25, y=0.25)
    ax.legend(fontsize=8)
    panels = [("train_seconds", 1, "seconds", "Training time", "linear"),
              ("peak_memory_bytes", 1e-6, "MB above the loaded model", "Peak memory in training", "linear"),
              ("checkpoint_bytes", 1e-6, "MB (log scale)", "Saved fine-tune", "log")]
    for ax, (key, scale, ylabel, panel_title, yscale) in zip(axes[1:], panels):
        values = [max(r.get(key) or 0, 0) * scale for r in rows]  # None (not measured) draws no bar
        bars = ax.bar(range(len(rows)), values, color=colours, edgecolor="black", linewidth=0.5)
        ax.bar_label(bars, fmt="%.3g", fontsize=7)
        ax.set_xticks(range(len(rows)), names, rotation=30, ha="right")
        ax.set(xlabel="method", ylabel=ylabel, title=panel_title, yscale=yscale)
        ax.margins(y=0.15)
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    return fig
