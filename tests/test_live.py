"""The live training view: what it draws, and that fit feeds it when it runs in Jupyter."""
import tiny
from ftlib import live, runtime
from ftlib.runtime import get_runtime
from ftlib.training import TrainConfig, fit


class Handle:
    def __init__(self):
        self.updates = []

    def update(self, obj):
        self.updates.append(obj)


def test_live_view_draws_steps_and_epochs_into_one_output():
    view = live.LiveView(total_epochs=3)
    view._handle = Handle()
    for step, loss in enumerate([0.9, 0.8, 0.7], 1):
        view.step(step, loss)
    view.epoch({"epoch": 1, "step": 3, "train_loss": 0.8, "eval_loss": 0.75, "eval_accuracy": 0.6})
    html = view._handle.updates[-1].data
    assert "ftlib-live" in html and "data:image/png;base64," in html
    fig = view.figure()
    loss_ax, metric_ax = fig.axes
    assert list(loss_ax.lines[0].get_ydata()) == [0.9, 0.8, 0.7]
    assert list(metric_ax.lines[0].get_ydata()) == [0.6]
    assert "epoch 1/3" in fig._suptitle.get_text()
    assert loss_ax.get_xlabel() and loss_ax.get_ylabel() and metric_ax.get_title()


def test_live_view_redraws_at_most_once_per_interval():
    view = live.LiveView(total_epochs=1, min_interval=3600)
    view._handle = Handle()
    view._last_draw = float("inf")  # as if it had just drawn
    for step in range(50):
        view.step(step, 1.0)
    assert view._handle.updates == []  # steps alone never flood the notebook
    view.epoch({"epoch": 1, "step": 50, "train_loss": 1.0})
    assert len(view._handle.updates) == 1  # an epoch's end always redraws


def test_fit_feeds_the_live_view_in_jupyter(monkeypatch):
    calls = []

    class Recorder:
        def __init__(self, **kwargs):
            calls.append(("init", kwargs))

        def step(self, step, loss):
            calls.append(("step", step))

        def epoch(self, record):
            calls.append(("epoch", record["epoch"]))

    monkeypatch.setattr(runtime, "interactive", lambda: True)  # as in a Jupyter kernel
    monkeypatch.setattr(live, "_has_ipython_display", lambda: True)
    monkeypatch.setattr(live, "LiveView", Recorder)
    tok = tiny.tokenizer()
    train, evaluation = tiny.loaders(tok, n_train=16, n_eval=8)
    fit(tiny.classifier(), train, evaluation, runtime=get_runtime("smoke"), config=TrainConfig(epochs=2, lr=1e-3))
    assert calls[0] == ("init", {"total_epochs": 2, "metric": "accuracy"})
    assert [c for c in calls if c[0] == "epoch"] == [("epoch", 1), ("epoch", 2)]
    assert [c[1] for c in calls if c[0] == "step"] == [1, 2, 3, 4]  # 16 examples, batch 8, 2 epochs


def test_fit_headless_has_no_live_view(monkeypatch):
    monkeypatch.setattr(live, "LiveView", lambda **k: (_ for _ in ()).throw(AssertionError("no view headless")))
    tok = tiny.tokenizer()
    train, _ = tiny.loaders(tok, n_train=8)
    fit(tiny.classifier(), train, runtime=get_runtime("smoke"), config=TrainConfig(epochs=1, lr=1e-3))
