"""Image data: the source and target tasks, preprocessing and augmentation, and loaders.

Introduced in lessons 02 (preprocessing, augmentation) and 03 (the tasks); the image models
are in :mod:`ftlib.vision`. No torchvision: PIL, NumPy and torch only.

The images are scikit-learn's handwritten digits (1,797 real 8x8 scans, 0-16 grey levels).
The *source* task is the digits 0-4: the lite/smoke backbone, ``SmallCNN``, is
pre-trained on them once (with strong random distortions) and cached. The *target* task
is "noisy scans" of the digits 5-9, classes the backbone has never seen: each real 8x8
scan is enlarged to 16x16 and distorted once by a documented procedure (``SCAN``: a
rotation of up to 30 degrees, a shift of up to 15 % of the width, Gaussian noise of 30 %
of the grey range), the same for every run. A new head must learn them from few labels.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from datasets import ClassLabel, Dataset, Features
from datasets import Image as ImageFeature
from PIL import Image

__all__ = ["ImageProcessor", "SCAN", "SOURCE_LABELS", "TARGET_LABELS", "augment", "image_dataset", "make_image_loader"]

SOURCE_LABELS = ["0", "1", "2", "3", "4"]  # the task the lite backbone is pre-trained on
TARGET_LABELS = ["5", "6", "7", "8", "9"]  # lesson 03's task: digits the backbone never saw
POOL_PER_CLASS, VAL_PER_CLASS = 50, 30  # target task: labelled pool and validation, per class
SCAN_SIZE = 16  # target images are the 8x8 scans enlarged to 16x16 ...
SCAN = dict(max_degrees=30.0, max_shift=0.15, noise=0.3)  # ... then distorted once, with these settings


@functools.lru_cache(maxsize=1)
def _load_digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits  # ships with scikit-learn: no download

    digits = load_digits()
    return digits.images, digits.target


def _digits(labels: list[str]) -> tuple[list[Image.Image], list[int]]:
    """Every scikit-learn digit whose class is in `labels`, as 8x8 greyscale PIL images."""
    wanted = {int(name): i for i, name in enumerate(labels)}
    images, ids = [], []
    for pixels, target in zip(*_load_digits()):
        if int(target) in wanted:
            images.append(Image.fromarray(np.round(pixels * 255 / 16).astype(np.uint8), mode="L"))
            ids.append(wanted[int(target)])
    return images, ids


def _split_indices(ids: list[int], split: str, per_class: int | None, seed: int) -> list[int]:
    """Fixed per-class split (seed 0): pool | validation | test; `seed` picks which pool images train."""
    fixed, pick = np.random.default_rng(0), np.random.default_rng(seed)
    chosen = []
    for c in sorted(set(ids)):
        rows = fixed.permutation([i for i, y in enumerate(ids) if y == c])
        parts = {"train": rows[:POOL_PER_CLASS], "validation": rows[POOL_PER_CLASS:POOL_PER_CLASS + VAL_PER_CLASS],
                 "test": rows[POOL_PER_CLASS + VAL_PER_CLASS:]}
        rows = parts[split]
        if split == "train":
            rows = pick.permutation(rows)[:per_class]
        chosen += rows.tolist()
    return sorted(chosen)


def _scan(image: Image.Image, index: int) -> Image.Image:
    """The target task's fixed distortion of one scan (the same image every run: seeded by its index)."""
    big = image.resize((SCAN_SIZE, SCAN_SIZE), Image.BILINEAR)
    return augment(big, torch.Generator().manual_seed(10_000 + index), **SCAN)


def image_dataset(split: str, *, task: str = "target", per_class: int | None = None, seed: int = 0) -> Dataset:
    """A split of the digits as a ``datasets.Dataset`` with columns ``image`` (PIL) and ``label``.

    task 'target' (noisy 16x16 scans of the digits 5-9, lesson 03): 'train' holds `per_class` images per class
    (at most 50, chosen by `seed`), 'validation' 30 per class, 'test' the rest (about 100
    per class). task 'source' (clean 8x8 digits 0-4): 'train' is every image, for pre-training.
    """
    if task not in ("source", "target"):
        raise ValueError(f"task must be 'source' or 'target', got {task!r}")
    if split not in ("train", "validation", "test"):
        raise ValueError(f"split must be 'train', 'validation' or 'test', got {split!r}")
    if per_class is not None and not 1 <= per_class <= POOL_PER_CLASS:
        raise ValueError(f"per_class must be between 1 and {POOL_PER_CLASS}, got {per_class}")
    labels = SOURCE_LABELS if task == "source" else TARGET_LABELS
    images, ids = _digits(labels)
    if task == "source":
        rows = range(len(ids))
    else:
        rows = _split_indices(ids, split, per_class, seed)
        images = {i: _scan(images[i], i) for i in rows}
    features = Features({"image": ImageFeature(), "label": ClassLabel(names=labels)})
    return Dataset.from_dict({"image": [images[i] for i in rows], "label": [ids[i] for i in rows]},
                             features=features)


@dataclass(frozen=True)
class ImageProcessor:
    """PIL images -> ``{"pixel_values": (N, C, H, W) float tensor}``: resize, scale to [0, 1], normalise.

    `mean` and `std` are the backbone's: those of the images it was pre-trained on.
    """

    size: int = 16
    mean: tuple[float, ...] = (0.5,)
    std: tuple[float, ...] = (0.5,)
    mode: str = "L"  # 'L': one grey channel; 'RGB': three (ImageNet models)

    def __call__(self, images) -> dict[str, torch.Tensor]:
        if isinstance(images, Image.Image):
            images = [images]
        arrays = [np.asarray(img.convert(self.mode).resize((self.size, self.size), Image.BILINEAR),
                             dtype=np.float32) / 255.0 for img in images]
        x = torch.from_numpy(np.stack(arrays))  # (N, H, W) or (N, H, W, C)
        x = x.unsqueeze(1) if x.dim() == 3 else x.permute(0, 3, 1, 2)  # (N, C, H, W)
        mean = torch.tensor(self.mean).view(1, -1, 1, 1)
        std = torch.tensor(self.std).view(1, -1, 1, 1)
        return {"pixel_values": (x - mean) / std}


def augment(image_or_batch, generator: torch.Generator, *, max_shift: float = 0.1,
            max_degrees: float = 12.0, noise: float = 0.05):
    """A random small rotation and shift, plus Gaussian noise (lessons 02 and 08).

    Takes a PIL image (returns one), or a (C, H, W) / (N, C, H, W) tensor (returns the same
    shape; each image gets its own draw). No flips: a mirrored 2 or 5 is not a digit.
    `max_shift` is a fraction of the image width; `noise` a fraction of the value range.
    """
    if isinstance(image_or_batch, Image.Image):
        mode = image_or_batch.mode
        x = torch.from_numpy(np.asarray(image_or_batch, dtype=np.float32) / 255.0)
        x = x[None] if x.dim() == 2 else x.permute(2, 0, 1)
        y = augment(x, generator, max_shift=max_shift, max_degrees=max_degrees, noise=noise).clamp(0, 1)
        y = (y * 255).round().to(torch.uint8)
        return Image.fromarray((y[0] if y.shape[0] == 1 else y.permute(1, 2, 0)).numpy(), mode=mode)
    x = image_or_batch
    single = x.dim() == 3
    x = x[None] if single else x
    n = x.shape[0]
    angle = (torch.rand(n, generator=generator) * 2 - 1) * math.radians(max_degrees)
    shift = (torch.rand(n, 2, generator=generator) * 2 - 1) * max_shift * 2  # grid coordinates span 2
    cos, sin = angle.cos(), angle.sin()
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    out = F.grid_sample(x, grid, padding_mode="border", align_corners=False)  # border: background fills in
    spread = (x.amax(dim=(1, 2, 3), keepdim=True) - x.amin(dim=(1, 2, 3), keepdim=True))
    out = out + noise * spread * torch.randn(out.shape, generator=generator)
    return out[0] if single else out


_augment = augment  # make_image_loader's `augment` argument is a flag with the same name


def make_image_loader(images, labels, processor, *, batch_size: int, shuffle: bool, seed: int = 0,
                      augment: bool | dict = False) -> torch.utils.data.DataLoader:
    """Batches ``{"pixel_values", "labels"}`` for ``fit`` and ``evaluate``.

    With `augment` (True, or a dict of :func:`augment` settings) each batch is freshly
    distorted, drawn from a generator seeded by `seed`: every epoch sees new variants.
    """
    images, labels = list(images), torch.as_tensor(list(labels), dtype=torch.long)
    if len(labels) != len(images) or not images:
        raise ValueError(f"{len(images)} images and {len(labels)} labels: pass one label per image, "
                         "and at least one image")
    pixel_values = processor(images)["pixel_values"]  # small datasets: preprocess once
    draw = torch.Generator().manual_seed(seed + 1)
    settings = augment if isinstance(augment, dict) else {}

    def collate(rows):
        x = pixel_values[rows]
        return {"pixel_values": _augment(x, draw, **settings) if augment else x, "labels": labels[rows]}

    order = torch.Generator().manual_seed(seed)
    return torch.utils.data.DataLoader(list(range(len(labels))), batch_size=batch_size, shuffle=shuffle,
                                       generator=order, collate_fn=collate)
