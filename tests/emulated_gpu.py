"""An emulated CUDA device on a CPU-only machine: catches device mistakes without a GPU.

CI has no GPU, yet the course's first platform is Colab's T4, where a tensor on the CPU
meeting one on the GPU stops a lesson with "Expected all tensors to be on the same
device". This module makes that error happen on the CPU too.

Inside ``emulate_gpu()``:

- ``torch.cuda.is_available()`` is True; the device reports compute capability 7.5 and
  16 GB, like a T4, so ``ftlib`` picks device "cuda" with fp16 and a GradScaler;
- every request for a CUDA tensor (``.to("cuda")``, ``.cuda()``, ``device="cuda"`` in a
  factory, ``model.to(...)``) returns an :class:`OnGPU` tensor: its numbers live on the
  CPU, but ``.device`` says ``cuda:0`` and ``.cpu()`` copies it back, as on a GPU;
- every operation that mixes an ``OnGPU`` tensor with a CPU tensor of one or more
  dimensions raises the same ``RuntimeError`` CUDA raises (0-dim CPU tensors, indexing
  with CPU indices and cross-device copies are allowed, as CUDA allows them), and
  ``.numpy()`` on an ``OnGPU`` tensor raises CUDA's ``TypeError``.

What it cannot catch: anything about real GPU memory or kernels (out-of-memory, fp16
overflow: autocast to "cuda" does not change CPU arithmetic, so computations stay fp32),
speed, and C++ code that moves tensors to CUDA by itself. A move between the devices is
not differentiable here (on a GPU it is): code that backpropagates through ``.cpu()`` or
``.cuda()`` would need the real device. Those need a GPU run
(``../shared/gpu``). See docs/ARCHITECTURE.md, "Devices: the rule, and how CI checks it without a GPU".

Used by ``tests/test_device_emulation.py`` (helpers, one by one) and by the notebook tests,
which run every solution notebook with ``FTLIB_EMULATE_GPU=1``: ``emulated_gpu_site/
sitecustomize.py`` switches the emulation on in the notebook's kernel.
"""
from __future__ import annotations

import contextlib
import types
from unittest import mock

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_map

__all__ = ["OnGPU", "emulate_gpu", "start", "stop"]

CUDA = torch.device("cuda", 0)
CPU = torch.device("cpu")
T4_MEMORY = 16 * 1024**3
# Operations that a real CUDA device accepts with CPU tensors among their arguments.
_CROSS_DEVICE_OK = {"copy_", "_to_copy", "index", "index_put_", "index_put", "_index_put_impl_", "set_", "detach",
                    "alias", "lift_fresh", "_has_compatible_shallow_copy_type"}


class OnGPU(torch.Tensor):
    """A CPU tensor that says it is on ``cuda:0``; mixing it with CPU tensors raises, as on a GPU."""

    @staticmethod
    def __new__(cls, elem: torch.Tensor):
        r = torch.Tensor._make_wrapper_subclass(cls, elem.size(), strides=elem.stride(),
                                                storage_offset=elem.storage_offset(), dtype=elem.dtype,
                                                layout=elem.layout, device=elem.device,
                                                requires_grad=elem.requires_grad)
        r.elem = elem
        return r

    @property
    def device(self):  # Python code (transformers, peft, ftlib) sees a GPU; C++ sees the CPU it computes on
        return CUDA

    @property
    def is_cuda(self):
        return True

    def __repr__(self):
        return f"{self.elem!r} (on the emulated cuda:0)"

    def __reduce_ex__(self, protocol):  # torch.save: stored as a CPU tensor, as torch.load(map_location="cpu") gives
        return self.elem.__reduce_ex__(protocol)

    @classmethod
    def __torch_dispatch__(cls, func, types_, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = func.overloadpacket.__name__
        if name not in _CROSS_DEVICE_OK and _has_cpu_tensor(args, kwargs):  # CUDA allows 0-dim CPU tensors
            raise RuntimeError("Expected all tensors to be on the same device, but found at least two devices, "
                               f"cuda:0 and cpu! (emulated GPU, in {func})")
        out = func(*_unwrap_all(args), **{k: _unwrap_all(v) if isinstance(v, (list, tuple)) else _unwrap(v)
                                         for k, v in kwargs.items()})
        if name.endswith("_") and isinstance(args[0], OnGPU) and out is args[0].elem:
            return args[0]  # in place: the same (wrapped) tensor
        return tree_map(_wrap, out)


def _unwrap(t):
    return t.elem if isinstance(t, OnGPU) else t


def _unwrap_all(items):
    """Unwrap the tensors of an argument list, and of the lists in it (aten nests one level at most)."""
    return [[_unwrap(x) for x in a] if isinstance(a, (list, tuple)) else _unwrap(a) for a in items]


def _has_cpu_tensor(args, kwargs) -> bool:
    """Whether an argument (or an element of a list argument) is a CPU tensor of one or more dimensions."""
    for a in (*args, *kwargs.values()):
        for t in (a if isinstance(a, (list, tuple)) else (a,)):
            if type(t) is torch.Tensor and t.dim() > 0:
                return True
    return False


def _wrap(t):
    return OnGPU(t) if type(t) is torch.Tensor else t


def _asks_for_cuda(device) -> bool:
    if isinstance(device, (str, torch.device)):
        return torch.device(device).type == "cuda"
    return isinstance(device, int) and not isinstance(device, bool)


class _EmulatedGPU(TorchFunctionMode):
    """Turns every request for a CUDA tensor into an :class:`OnGPU` tensor computed on the CPU."""

    def __torch_function__(self, func, types_, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        name = getattr(func, "__name__", "")
        first = args[0] if args else None
        if name in ("numpy", "__array__") and isinstance(first, OnGPU):
            raise TypeError("can't convert cuda:0 device type tensor to numpy. Use Tensor.cpu() to copy the "
                            "tensor to host memory first. (emulated GPU)")
        if name in ("tolist", "untyped_storage", "storage", "_typed_storage", "data_ptr") and isinstance(first, OnGPU):
            return getattr(first.elem, name)()  # a GPU tensor has storage too; this one's is on the CPU
        if name == "cuda" and isinstance(first, torch.Tensor):
            return first if isinstance(first, OnGPU) else OnGPU(first.detach().clone())
        if name == "cpu" and isinstance(first, OnGPU):
            return first.elem.clone()
        if name == "to" and isinstance(first, torch.Tensor):
            return self._to(func, first, args[1:], kwargs)
        if _asks_for_cuda(kwargs.get("device")):  # a factory: torch.zeros(..., device="cuda")
            kwargs["device"] = CPU
            return tree_map(_wrap, func(*args, **kwargs))
        return func(*args, **kwargs)

    @staticmethod
    def _to(func, x, args, kwargs):
        copy = bool(kwargs.pop("copy", False))
        if len(args) >= 3 and isinstance(args[-1], bool) and isinstance(args[-2], bool):
            copy, args = args[-1], args[:-1]  # .to(device, dtype, non_blocking, copy)
        device, dtype, non_blocking, memory_format = torch._C._nn._parse_to(*args, **kwargs)
        options = {"non_blocking": non_blocking}
        if dtype is not None:
            options["dtype"] = dtype
        if memory_format is not None:
            options["memory_format"] = memory_format
        inner = _unwrap(x)
        if device is None:  # a change of dtype only: stays where it is
            return func(x, copy=copy, **options)
        if device.type == "cuda":
            y = func(inner, copy=copy, **options)
            if isinstance(x, OnGPU):
                return x if y is inner else OnGPU(y)
            return OnGPU(y.detach().clone() if y is x else y)  # a real move copies
        if isinstance(x, OnGPU):  # back to the CPU: a copy, as from a real GPU
            y = func(inner, device, copy=copy, **options)
            return y.clone() if y is inner else y
        return func(x, device, copy=copy, **options)


class _Properties(types.SimpleNamespace):
    pass


def _returns(value):
    return lambda *args, **kwargs: value  # a new function each time: torch._dynamo maps functions one to one


def _cuda_patches() -> dict:
    """What ``torch.cuda`` answers on the emulated T4."""
    props = _Properties(name="emulated T4 (CPU)", total_memory=T4_MEMORY, major=7, minor=5, multi_processor_count=40)
    answers = {"is_available": True, "device_count": 1, "current_device": 0, "get_device_capability": (7, 5),
               "get_device_name": props.name, "get_device_properties": props, "is_bf16_supported": False,
               "mem_get_info": (T4_MEMORY, T4_MEMORY)}
    answers.update(dict.fromkeys(["memory_allocated", "max_memory_allocated", "memory_reserved",
                                  "max_memory_reserved"], 0))
    answers.update(dict.fromkeys(["_lazy_init", "init", "set_device", "synchronize", "empty_cache",
                                  "reset_peak_memory_stats", "reset_max_memory_allocated",
                                  "set_per_process_memory_fraction", "set_rng_state", "set_rng_state_all",
                                  "manual_seed", "manual_seed_all", "seed_all"], None))
    patches = {name: _returns(value) for name, value in answers.items()}
    patches["get_rng_state"] = lambda device="cuda": torch.get_rng_state()
    patches["get_rng_state_all"] = lambda: [torch.get_rng_state()]
    return patches


class _SafeOpenOnCPU:
    """safetensors' ``safe_open`` asked for a CUDA device: read on the CPU, hand out OnGPU tensors.

    (safetensors moves tensors to a GPU in its own compiled code, which the emulation cannot see.)
    """

    real = None

    def __init__(self, filename, framework="pt", device="cpu", **kwargs):
        self.on_gpu = _asks_for_cuda(device)
        self.inner = self.real(filename, framework=framework, device="cpu", **kwargs)

    def __enter__(self):
        self.file = self.inner.__enter__()
        return self

    def __exit__(self, *exc):
        return self.inner.__exit__(*exc)

    def get_tensor(self, name):
        tensor = self.file.get_tensor(name)
        return OnGPU(tensor) if self.on_gpu else tensor

    def get_tensors(self):
        return {name: self.get_tensor(name) for name in self.file.keys()}

    def __getattr__(self, name):
        return getattr(self.file, name)


_active: list = []


def start() -> None:
    """Switch the emulation on for this thread (the notebook kernel's set-up calls this)."""
    if _active:
        return
    stack = contextlib.ExitStack()
    for name, value in _cuda_patches().items():
        stack.enter_context(mock.patch.object(torch.cuda, name, value))
    stack.enter_context(mock.patch("torch.cuda.amp.common.amp_definitely_not_available", lambda: False))
    import safetensors.torch

    _SafeOpenOnCPU.real = _SafeOpenOnCPU.real or safetensors.torch.safe_open
    stack.enter_context(mock.patch.object(safetensors.torch, "safe_open", _SafeOpenOnCPU))
    previous = torch.__future__.get_swap_module_params_on_conversion()
    torch.__future__.set_swap_module_params_on_conversion(True)  # model.to() keeps its Parameter objects
    stack.callback(torch.__future__.set_swap_module_params_on_conversion, previous)
    stack.enter_context(_EmulatedGPU())
    _active.append(stack)


def stop() -> None:
    """Switch the emulation off again."""
    if _active:
        _active.pop().close()


@contextlib.contextmanager
def emulate_gpu():
    """``with emulate_gpu(): ...`` runs the block as on a T4 whose numbers live on the CPU."""
    start()
    try:
        yield
    finally:
        stop()
