"""Where the code runs: profile name, device, precision, seeding, environment stamp.

Introduced in lesson 00. Everything hardware-dependent is decided here, once, and
passed down as a :class:`Runtime`; no other module looks at the hardware.
"""
from __future__ import annotations

import contextlib
import itertools
import os
import platform
import random
import sys
from dataclasses import dataclass

import numpy as np
import torch

__all__ = [
    "PROFILE_NAMES",
    "Runtime",
    "choose_precision",
    "detect_device",
    "env_stamp",
    "get_runtime",
    "interactive",
    "model_device",
    "move_to",
    "profile_name",
    "seed_everything",
]

PROFILE_NAMES = ("full", "lite", "smoke")


def profile_name(requested: str | None = None) -> str:
    """The profile to use: `requested`, else ``$FTLIB_PROFILE``, else full on CUDA, lite otherwise."""
    name = requested or os.environ.get("FTLIB_PROFILE") or ""
    name = name.strip().lower()
    if not name:
        return "full" if torch.cuda.is_available() else "lite"
    if name not in PROFILE_NAMES:
        raise ValueError(
            f"unknown profile {name!r}: choose one of {', '.join(PROFILE_NAMES)} "
            "(set FTLIB_PROFILE or pass profile=...)"
        )
    return name


def detect_device() -> str:
    """'cuda' if an NVIDIA GPU is visible, else 'mps' on Apple silicon, else 'cpu'."""
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def choose_precision(device: str) -> str:
    """'fp16', 'bf16' or 'fp32' for training on `device`.

    bf16 only where the tensor cores have it (compute capability 8.0 and up: A100, L4,
    H100). A T4 (7.5) gets fp16 with a GradScaler: bf16 runs there, but emulated and
    several times slower. CPU and MPS train in fp32.
    """
    if device != "cuda":
        return "fp32"
    major, _minor = torch.cuda.get_device_capability()
    return "bf16" if major >= 8 else "fp16"


@dataclass(frozen=True)
class Runtime:
    """Decided once per lesson and handed to everything that touches tensors."""

    profile: str
    device: str
    precision: str  # 'fp32', 'fp16' or 'bf16'
    seed: int = 0

    @property
    def amp_dtype(self) -> torch.dtype | None:
        return {"fp16": torch.float16, "bf16": torch.bfloat16}.get(self.precision)

    def autocast(self):
        """A context manager: mixed precision on the GPU, nothing at all in fp32."""
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device, dtype=self.amp_dtype)

    def grad_scaler(self) -> torch.amp.GradScaler | None:
        """fp16 gradients underflow without loss scaling; bf16 and fp32 need none."""
        if self.precision == "fp16":
            return torch.amp.GradScaler(self.device)
        return None

    def stamp(self) -> str:
        return env_stamp(self)


def model_device(model: torch.nn.Module) -> torch.device:
    """The device `model` computes on (that of its first parameter or buffer): where its inputs must be.

    The course's rule, from lesson 00 on: inputs follow the model. Every ``ftlib`` helper that
    takes a model moves the tensors it builds there, so that a lesson works the same on a CPU
    and on a GPU.
    """
    for tensor in itertools.chain(model.parameters(), model.buffers()):
        return tensor.device
    return torch.device("cpu")


def move_to(batch, device):
    """`batch` (a dict of tensors, a tokenizer's ``BatchEncoding`` or a tensor) with every tensor on `device`."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def interactive() -> bool:
    """True in a live Jupyter kernel (widgets, progress bars) or at a terminal; False when headless.

    ``FTLIB_HEADLESS=1`` (set by the course's notebook runner) forces False.
    """
    if os.environ.get("FTLIB_HEADLESS"):
        return False
    try:
        from IPython import get_ipython

        shell = get_ipython()
    except ImportError:
        shell = None
    if shell is not None:
        return shell.__class__.__name__ in ("ZMQInteractiveShell", "Shell")  # Jupyter, Colab
    return sys.stderr.isatty()


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices) so that a run can be repeated."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def get_runtime(profile: str | None = None, *, seed: int = 0, device: str | None = None) -> Runtime:
    """Decide profile, device and precision once, and return them; `seed` is recorded, not applied.

    Lessons call ``ftlib.setup()``, which also seeds the random generators; ``seed_everything``
    does that on its own.
    """
    device = device or detect_device()
    return Runtime(profile=profile_name(profile), device=device, precision=choose_precision(device), seed=seed)


def _version(package: str) -> str:
    try:
        from importlib.metadata import version

        return version(package)
    except Exception:  # not installed
        return "-"


def env_stamp(runtime: Runtime) -> str:
    """One line that says where a result came from, e.g. for a bug report or a timing table."""
    device = runtime.device
    if device == "cuda":
        device = f"cuda ({torch.cuda.get_device_name(0)})"
    elif device == "cpu":
        device = f"cpu ({torch.get_num_threads()} threads)"
    return (
        f"ftlib profile={runtime.profile} device={device} precision={runtime.precision} "
        f"seed={runtime.seed} | python {platform.python_version()} torch {torch.__version__} "
        f"transformers {_version('transformers')} peft {_version('peft')} "
        f"datasets {_version('datasets')}"
    )
