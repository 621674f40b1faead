"""Drawing what happened in training, from the history that ``fit`` returns.

Introduced in lesson 00. The library returns data; these helpers only draw it. Colours
are from the Okabe-Ito palette, which stays distinguishable for colour-blind readers,
and each line also has its own marker and style.
"""
from __future__ import annotations

__all__ = ["OKABE_ITO", "plot_history"]

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
