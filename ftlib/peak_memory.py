"""Memory: how much a run really took, measured (the estimate is :mod:`ftlib.memory`).

Introduced in lesson 01 (the estimate checked against a measured training step) and used in
lessons 04 and 10 to measure the peak of real runs with :class:`PeakMemory`: the GPU
allocator's peak on a GPU, the process's resident memory on a CPU.
"""
from __future__ import annotations

import ctypes
import gc
import json
import os
import pickle
import subprocess
import sys
import threading
import time
from pathlib import Path

import torch

from .memory import model_on_meta
from .freezing import count_parameters

__all__ = ["PeakMemory", "measure_training_peak", "release_freed_memory"]


def release_freed_memory() -> None:
    """Return freed memory to the system, so that on a CPU the next peak RSS starts from a clean heap."""
    gc.collect()
    if sys.platform.startswith("linux"):
        try:  # glibc keeps freed blocks for reuse; a later run reusing them would look smaller than it is
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):  # another C library (musl): nothing to trim
            pass


def _max_rss() -> int:
    """The process's lifetime peak resident memory, in bytes (the kernel's own record)."""
    try:
        import resource  # Unix only
    except ImportError:
        return 0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # macOS reports bytes, Linux kB


class PeakMemory:
    """``with PeakMemory(runtime.device) as peak: ...``, then ``peak.bytes``: the peak above entry.

    CUDA: ``torch.cuda.max_memory_allocated`` after a reset (tensors only). CPU: the process's
    resident memory (RSS, psutil), sampled by a background thread every `interval` seconds, and
    the kernel's lifetime peak when the block set a new one, so short spikes are not missed.
    """

    def __init__(self, device="cpu", interval: float = 0.002):
        self.device = torch.device(device)
        self.interval = interval
        self.baseline = self.peak = 0
        self._stop = threading.Event()
        self._thread = None

    @property
    def bytes(self) -> int:
        return max(0, self.peak - self.baseline)

    def _now(self) -> int:
        if self.device.type == "cuda":
            return torch.cuda.memory_allocated(self.device)
        if self.device.type == "mps":
            return torch.mps.current_allocated_memory()
        import psutil

        return psutil.Process(os.getpid()).memory_info().rss

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, self._now())

    def __enter__(self) -> "PeakMemory":
        if self.device.type != "cuda":
            release_freed_memory()  # otherwise a run reusing memory an earlier run freed looks smaller
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        self.baseline = self.peak = self._now()
        self._max_rss_at_entry = _max_rss()
        if self.device.type != "cuda":
            self._stop.clear()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak = max(self.peak, torch.cuda.max_memory_allocated(self.device))
            return
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._now())
        if self.device.type == "cpu" and _max_rss() > self._max_rss_at_entry:
            self.peak = max(self.peak, _max_rss())  # a new lifetime high was set inside the block


def measure_training_peak(source, *, batch_size: int, seq_len: int, steps: int = 2, timeout: float = 900) -> dict:
    """Measure full fine-tuning of the text classifier `source` in a fresh process (CPU, fp32).

    The baseline is the new process's resident memory once the libraries and the model's code are
    imported and a random batch of `batch_size` x `seq_len` tokens exists; the peak covers loading the model, building AdamW
    and `steps` training steps (from the second on, the optimizer state is in memory). A fresh
    process, because memory that earlier cells freed stays with the allocator and hides the cost.
    Returns ``peak_bytes`` (above the baseline), ``seconds`` and the model's ``params``.
    """
    payload = pickle.dumps((source, batch_size, seq_len, steps)).hex()
    code = f"import ftlib.peak_memory as m; m._measure_in_this_process(bytes.fromhex('{payload}'))"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parent.parent),
                                                        os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"the measuring process failed (exit {done.returncode}): {done.stderr.strip()[-800:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _measure_in_this_process(payload: bytes) -> None:
    from transformers import AutoConfig

    from .models import load_text_classifier, resolve

    source, batch_size, seq_len, steps = pickle.loads(payload)
    model_on_meta(AutoConfig.from_pretrained(resolve(source)))  # imports the model's code before the baseline
    torch.manual_seed(0)
    batch = {"input_ids": torch.randint(1000, 20000, (batch_size, seq_len)),
             "attention_mask": torch.ones(batch_size, seq_len, dtype=torch.long),
             "labels": torch.randint(0, 2, (batch_size,))}
    start = time.perf_counter()
    with PeakMemory("cpu") as peak:
        model, _ = load_text_classifier(source, ["negative", "positive"])
        model.train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
        for _ in range(steps):
            optimizer.zero_grad(set_to_none=True)
            model(**batch).loss.backward()
            optimizer.step()
    print(json.dumps({"peak_bytes": peak.bytes, "seconds": round(time.perf_counter() - start, 1),
                      "params": count_parameters(model)[1], "threads": torch.get_num_threads()}))
