"""What you see while ``fit`` runs: curves that redraw in place, a progress bar, a line per epoch.

Introduced in lesson 00. In JupyterLab and Colab, ``fit`` shows one figure under the
cell and replaces it as training goes: the training loss every few optimizer steps, and
the validation loss and metric at the end of each epoch. Headless (tests, scripts, the
course's notebook runner) there is no figure; ``fit`` prints one line per epoch instead.

The figure is drawn by matplotlib into a PNG and sent through one IPython display
handle, so the same output is updated instead of a new one being added each time; that
works the same in JupyterLab, Colab and VS Code.
"""
from __future__ import annotations

import base64
import io
import time

from .plots import OKABE_ITO

__all__ = ["LiveView", "TrainingReport"]


class LiveView:
    """Curves that update in place. ``fit`` calls :meth:`step` and :meth:`epoch`; nothing else needed."""

    def __init__(self, *, total_epochs: int, metric: str = "accuracy", min_interval: float = 1.0):
        self.total_epochs, self.metric, self.min_interval = total_epochs, metric, min_interval
        self.steps, self.losses, self.records = [], [], []
        self._last_draw = 0.0
        self._handle = None  # the output under the cell, created at the first draw

    def step(self, step: int, loss: float) -> None:
        """Record the training loss after optimizer step `step`; redraw at most once per `min_interval` s."""
        self.steps.append(step)
        self.losses.append(loss)
        if time.monotonic() - self._last_draw >= self.min_interval:
            self.draw()

    def epoch(self, record: dict) -> None:
        """Record an epoch's summary (the dict ``fit`` appends to its history) and redraw."""
        self.records.append(record)
        self.draw()

    def figure(self):
        """The current figure: training loss per step with validation loss per epoch, and the metric."""
        import matplotlib.pyplot as plt

        fig, (ax_loss, ax_metric) = plt.subplots(1, 2, figsize=(10, 3.4))
        ax_loss.plot(self.steps, self.losses, color=OKABE_ITO[0], alpha=0.8, label="training (per step)")
        evals = [r for r in self.records if "eval_loss" in r]
        if evals:
            ax_loss.plot([r["step"] for r in evals], [r["eval_loss"] for r in evals], "s--",
                         color=OKABE_ITO[1], label="validation (per epoch)")
        ax_loss.set(xlabel="optimizer step", ylabel="loss", title="Loss")
        key = f"eval_{self.metric}"
        points = [r for r in self.records if key in r]
        if points:
            ax_metric.plot([r["epoch"] for r in points], [r[key] for r in points], "s--", color=OKABE_ITO[1],
                           label="validation")
            ax_metric.set_xticks(range(1, self.total_epochs + 1))
        ax_metric.set(xlim=(0.5, self.total_epochs + 0.5), xlabel="epoch", ylabel=self.metric,
                      title=self.metric.replace("_", " ").capitalize())
        for ax in (ax_loss, ax_metric):
            ax.grid(alpha=0.3)
            if ax.get_legend_handles_labels()[0]:
                ax.legend()
        done = self.records[-1]["epoch"] if self.records else 0
        fig.suptitle(f"Live: epoch {done}/{self.total_epochs} finished, step {self.steps[-1] if self.steps else 0}")
        fig.tight_layout()
        return fig

    def draw(self) -> None:
        import matplotlib.pyplot as plt
        from IPython.display import HTML, display

        fig = self.figure()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=80)
        plt.close(fig)  # never shown by the inline backend as a second copy
        png = base64.b64encode(buffer.getvalue()).decode()
        html = HTML(f"<div class='ftlib-live'><img alt='live training curves' src='data:image/png;base64,{png}'/></div>")
        if self._handle is None:
            self._handle = display(html, display_id=True)
        else:
            self._handle.update(html)
        self._last_draw = time.monotonic()


class TrainingReport:
    """What a person sees while ``fit`` runs: the GPU pre-flight, a progress bar, the live view, a line per epoch.

    Headless (tests, scripts, the course's notebook runner) there is no bar and no figure; under
    torchrun only the main process reports.
    """

    def __init__(self, model, loader, runtime, config):
        from .distributed import is_main
        from .runtime import interactive

        self.verbose = config.progress and is_main()
        self.epochs, self.monitor, self.n_batches = config.epochs, config.monitor, len(loader)
        self.show_bar = self.verbose and interactive()
        self.live, self.bar = None, None
        if self.verbose and runtime.device == "cuda":
            from .oom import preflight

            print(preflight(model, loader, runtime))
        if self.show_bar and _has_ipython_display():  # curves in place in Jupyter and Colab
            metric = self.monitor.removeprefix("eval_") if self.monitor != "eval_loss" else "accuracy"
            self.live = LiveView(total_epochs=self.epochs, metric=metric)

    def step(self, at, loss: float) -> None:
        """After each optimizer step: the bar moves, the live view gets the loss."""
        if self.bar is None and self.show_bar:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=self.n_batches, leave=False,
                            desc=f"epoch {at.epoch + 1}/{self.epochs}")
        if self.bar is not None:
            self.bar.update(at.batch - self.bar.n)
            self.bar.set_postfix(loss=f"{loss:.4f}")
        if self.live is not None:
            self.live.step(at.step, loss)

    def epoch(self, record: dict) -> None:
        """After each epoch: the bar closes, the live view redraws, one line is printed."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        if self.live is not None:
            self.live.epoch(record)
        if self.verbose:
            shown = ["train_loss", "eval_loss", "eval_accuracy", "eval_f1_macro"]
            parts = [f"{k} {record[k]:.4f}" for k in shown if k in record]
            print(f"epoch {record['epoch']}/{self.epochs}: " + "  ".join(parts) + f"  ({record['seconds']:.0f} s)")

    def restored(self, best_epoch: int | None, epochs_run: int) -> None:
        if self.verbose and best_epoch is not None and best_epoch != epochs_run:
            print(f"Restored the weights of epoch {best_epoch} (best {self.monitor}).")


def _has_ipython_display() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    return get_ipython() is not None
