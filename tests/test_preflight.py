"""The GPU pre-flight memory estimate: a line before training, a warning when it will not fit."""
import dataclasses

import tiny
from ftlib import memory
from ftlib.oom import preflight
from ftlib.runtime import get_runtime


def gpu_runtime():
    return dataclasses.replace(get_runtime("smoke"), device="cuda", precision="fp16")


def test_preflight_says_how_much_memory_the_step_needs(monkeypatch):
    monkeypatch.setattr(memory, "device_budget", lambda device: 15 * 1024**3)
    train, _ = tiny.loaders(tiny.tokenizer())
    line = preflight(tiny.classifier(), train, gpu_runtime())
    assert line.startswith("Pre-flight: about") and "of 16.1 GB" in line


def test_preflight_warns_when_the_step_will_not_fit(monkeypatch):
    monkeypatch.setattr(memory, "device_budget", lambda device: 1024)  # a 1 kB "GPU"
    train, _ = tiny.loaders(tiny.tokenizer())
    line = preflight(tiny.classifier(), train, gpu_runtime())
    assert line.startswith("Pre-flight warning") and "split batches" in line and "LoRA" in line


def test_preflight_for_a_model_it_cannot_estimate_does_not_stop_training(monkeypatch):
    monkeypatch.setattr(memory, "device_budget", lambda device: 1024)

    class NoConfig(tiny.BertForSequenceClassification.__mro__[-3]):  # a plain torch.nn.Module
        def __init__(self):
            super().__init__()
            self.layer = __import__("torch").nn.Linear(2, 2)

    train, _ = tiny.loaders(tiny.tokenizer())
    assert "no memory estimate" in preflight(NoConfig(), train, gpu_runtime())
