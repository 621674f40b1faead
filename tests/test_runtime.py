"""ftlib.runtime: profile name, device, precision, seeding, environment stamp.

No test needs a GPU: CUDA is faked with monkeypatch where a test needs it.
"""
import contextlib
import random
import warnings
from importlib.metadata import version

import numpy as np
import pytest
import torch

from ftlib import runtime
from ftlib.runtime import Runtime, choose_precision, env_stamp, get_runtime, profile_name, seed_everything


@pytest.fixture
def no_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.fixture
def fake_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)


# --- profile_name ---------------------------------------------------------------------------

@pytest.mark.parametrize("value, expected", [("smoke", "smoke"), ("LITE", "lite"), ("  Full ", "full")])
def test_profile_name_from_environment(monkeypatch, no_cuda, value, expected):
    monkeypatch.setenv("FTLIB_PROFILE", value)
    assert profile_name() == expected


def test_profile_name_argument_beats_environment(monkeypatch, no_cuda):
    monkeypatch.setenv("FTLIB_PROFILE", "smoke")
    assert profile_name("Full") == "full"


def test_profile_name_unset_is_lite_without_cuda(monkeypatch, no_cuda):
    monkeypatch.delenv("FTLIB_PROFILE", raising=False)
    assert profile_name() == "lite"


def test_profile_name_unset_is_full_with_cuda(monkeypatch, fake_cuda):
    monkeypatch.delenv("FTLIB_PROFILE", raising=False)
    assert profile_name() == "full"


def test_profile_name_empty_environment_is_automatic(monkeypatch, no_cuda):
    monkeypatch.setenv("FTLIB_PROFILE", "   ")
    assert profile_name() == "lite"


def test_unknown_profile_names_the_choices_and_the_fix(monkeypatch):
    monkeypatch.setenv("FTLIB_PROFILE", "Medium")
    with pytest.raises(ValueError, match=r"unknown profile 'medium': choose one of full, lite, smoke.*FTLIB_PROFILE"):
        profile_name()
    with pytest.raises(ValueError, match=r"choose one of full, lite, smoke"):
        profile_name("gpu")


# --- device and precision -------------------------------------------------------------------

def test_detect_device_cuda_when_available(fake_cuda):
    assert runtime.detect_device() == "cuda"


def test_detect_device_cpu_without_cuda_or_mps(monkeypatch, no_cuda):
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert runtime.detect_device() == "cpu"


@pytest.mark.parametrize("capability, expected", [
    ((7, 5), "fp16"),  # T4: bf16 would be emulated, never choose it
    ((7, 0), "fp16"),  # V100
    ((8, 0), "bf16"),  # A100
    ((8, 9), "bf16"),  # L4
    ((9, 0), "bf16"),  # H100
])
def test_choose_precision_on_cuda(monkeypatch, capability, expected):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a, **k: capability)
    assert choose_precision("cuda") == expected


@pytest.mark.parametrize("device", ["cpu", "mps"])
def test_choose_precision_off_cuda_is_fp32(monkeypatch, device):
    def boom(*a, **k):
        raise AssertionError("the capability of a CUDA device must not be asked for on " + device)

    monkeypatch.setattr(torch.cuda, "get_device_capability", boom)
    assert choose_precision(device) == "fp32"


def test_get_runtime_on_cpu(monkeypatch, no_cuda):
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    rt = get_runtime(seed=3)
    assert rt == Runtime(profile="lite", device="cpu", precision="fp32", seed=3)


def test_get_runtime_on_a_faked_t4(monkeypatch, fake_cuda):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a, **k: (7, 5))
    rt = get_runtime()
    assert (rt.profile, rt.device, rt.precision) == ("full", "cuda", "fp16")
    assert rt.amp_dtype is torch.float16


def test_get_runtime_explicit_device_and_profile(monkeypatch, fake_cuda):
    rt = get_runtime("smoke", device="cpu")
    assert (rt.profile, rt.device, rt.precision) == ("smoke", "cpu", "fp32")


# --- Runtime --------------------------------------------------------------------------------

def test_amp_dtype():
    assert Runtime("full", "cuda", "bf16").amp_dtype is torch.bfloat16
    assert Runtime("full", "cuda", "fp16").amp_dtype is torch.float16
    assert Runtime("lite", "cpu", "fp32").amp_dtype is None


def test_grad_scaler_only_for_fp16():
    with warnings.catch_warnings():
        # On CPU-only torch, GradScaler('cuda') warns that it disables itself: expected here.
        warnings.simplefilter("ignore", UserWarning)
        scaler = Runtime(profile="full", device="cuda", precision="fp16").grad_scaler()
    assert isinstance(scaler, torch.amp.GradScaler)
    assert Runtime(profile="full", device="cuda", precision="bf16").grad_scaler() is None
    assert Runtime(profile="lite", device="cpu", precision="fp32").grad_scaler() is None


def test_autocast_is_a_no_op_in_fp32():
    rt = Runtime(profile="lite", device="cpu", precision="fp32")
    ctx = rt.autocast()
    assert isinstance(ctx, contextlib.nullcontext)
    a = torch.ones(2, 2)
    with ctx:
        assert (a @ a).dtype == torch.float32
        assert not torch.is_autocast_enabled("cpu")


def test_autocast_is_real_mixed_precision_otherwise():
    # The contrast to the test above: a bf16 runtime (on the CPU, where autocast supports it)
    # really lowers the precision of a matmul.
    rt = Runtime(profile="lite", device="cpu", precision="bf16")
    a = torch.ones(2, 2)
    with rt.autocast():
        assert (a @ a).dtype == torch.bfloat16
    assert (a @ a).dtype == torch.float32


def test_runtime_is_frozen():
    rt = Runtime("lite", "cpu", "fp32")
    with pytest.raises(Exception):
        rt.precision = "fp16"


# --- seeding and stamp ----------------------------------------------------------------------

def test_seed_everything_repeats_torch_numpy_and_python():
    seed_everything(123)
    first = (torch.rand(4), np.random.rand(3), random.random())
    seed_everything(123)
    second = (torch.rand(4), np.random.rand(3), random.random())
    torch.testing.assert_close(first[0], second[0], rtol=0, atol=0)
    np.testing.assert_array_equal(first[1], second[1])
    assert first[2] == second[2]
    seed_everything(124)
    assert not torch.equal(torch.rand(4), first[0])


def test_seed_everything_accepts_a_seed_beyond_numpy_range():
    seed_everything(2**40 + 5)  # numpy only takes 32-bit seeds; must not raise
    a = np.random.rand()
    seed_everything(2**40 + 5)
    assert np.random.rand() == a


def test_env_stamp_on_cpu():
    rt = Runtime(profile="smoke", device="cpu", precision="fp32", seed=7)
    stamp = env_stamp(rt)
    assert stamp == rt.stamp()
    assert "\n" not in stamp
    for part in ["profile=smoke", f"device=cpu ({torch.get_num_threads()} threads)", "precision=fp32",
                 "seed=7", f"torch {torch.__version__}", f"transformers {version('transformers')}",
                 f"peft {version('peft')}", f"datasets {version('datasets')}"]:
        assert part in stamp, part


def test_env_stamp_names_the_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a, **k: "Tesla T4")
    stamp = env_stamp(Runtime(profile="full", device="cuda", precision="fp16"))
    assert "device=cuda (Tesla T4)" in stamp
    assert "precision=fp16" in stamp and "profile=full" in stamp and "seed=0" in stamp


def test_env_stamp_marks_a_missing_package(monkeypatch):
    real = runtime._version
    monkeypatch.setattr(runtime, "_version", lambda p: "-" if p == "peft" else real(p))
    assert "peft -" in env_stamp(Runtime("lite", "cpu", "fp32"))
    assert runtime._version("no-such-package-ftlib-test") == "-"


def test_get_runtime_only_decides_and_setup_also_seeds(no_cuda):
    import ftlib

    torch.manual_seed(123)
    state = torch.get_rng_state()
    get_runtime("smoke", seed=7)
    assert torch.equal(torch.get_rng_state(), state)  # asking for a stamp leaves the generators alone
    runtime, profile = ftlib.setup("smoke", seed=7)
    assert (runtime.profile, runtime.seed, profile.name) == ("smoke", 7, "smoke")
    first = torch.rand(3)
    ftlib.setup("smoke", seed=7)
    assert torch.equal(torch.rand(3), first)  # seeded: the same draws every time
