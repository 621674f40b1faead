"""Shared test set-up: offline, CPU, deterministic, quiet."""
import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(2)


@pytest.fixture(autouse=True)
def _no_profile_leak(monkeypatch):
    # A developer's FTLIB_PROFILE must not change what the tests see.
    monkeypatch.delenv("FTLIB_PROFILE", raising=False)
    monkeypatch.delenv("FTLIB_STRICT", raising=False)
    monkeypatch.setenv("FTLIB_HEADLESS", "1")


if os.environ.get("FTLIB_EMULATE_GPU"):  # the whole suite as on a T4 (tests/emulated_gpu.py)
    @pytest.fixture(autouse=True)
    def _emulated_gpu():
        import emulated_gpu

        with emulated_gpu.emulate_gpu():
            yield
