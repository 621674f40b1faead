"""The course's small CNN: the lite profile's image backbone, pre-trained once and cached.

Introduced in lesson 03 (replacing the head); lessons 04 and 08 train it too, through
:mod:`ftlib.vision`; its data is in :mod:`ftlib.images`. The backbone is pre-trained on the
source task (the digits 0-4, with strong random distortions) with the recipe in the
catalog's ``ModelSource.config``, and saved once under ``cache_dir()`` with a manifest
holding its sha256, written under a temporary name and renamed (as the GGUF cache in
:mod:`ftlib.models`).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from transformers.modeling_outputs import ImageClassifierOutput

from .catalog import ModelSource
from .models import IntegrityError, cache_dir, publish_cache, sha256_file

__all__ = ["SmallCNN", "SmallCNNConfig", "load_pretrained_cnn", "pretrained_cnn_config", "pretrained_cnn_dir"]


@dataclass
class SmallCNNConfig:
    """What builds a :class:`SmallCNN`, with Hugging Face names for the label fields."""

    num_labels: int = 5
    id2label: dict = field(default_factory=dict)
    label2id: dict = field(default_factory=dict)
    channels: tuple[int, ...] = (16, 32, 64)
    in_channels: int = 1
    image_size: int = 16
    image_mean: tuple[float, ...] = (0.5,)
    image_std: tuple[float, ...] = (0.5,)

    def with_labels(self, labels: list[str]) -> "SmallCNNConfig":
        return SmallCNNConfig(**{**asdict(self), "num_labels": len(labels), "id2label": dict(enumerate(labels)),
                                 "label2id": {name: i for i, name in enumerate(labels)}})


class SmallCNN(nn.Module):
    """Conv blocks (conv 3x3, BatchNorm, ReLU, 2x2 max-pool), global average pooling, a linear head.

    ``blocks`` is the backbone; ``classifier`` is the head that lesson 03 replaces.
    """

    def __init__(self, config: SmallCNNConfig):
        super().__init__()
        self.config = config
        widths = (config.in_channels, *config.channels)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out),
                          nn.ReLU(), nn.MaxPool2d(2))
            for c_in, c_out in zip(widths[:-1], widths[1:]))
        self.classifier = nn.Linear(config.channels[-1], config.num_labels)

    @classmethod
    def from_scratch(cls, labels: list[str], config: SmallCNNConfig | None = None) -> "SmallCNN":
        """The same architecture with random weights (seed with torch.manual_seed first)."""
        return cls((config or SmallCNNConfig()).with_labels(labels))

    def forward(self, pixel_values: torch.Tensor, labels: torch.Tensor | None = None) -> ImageClassifierOutput:
        x = pixel_values  # (B, C, H, W)
        for block in self.blocks:
            x = block(x)  # each block halves H and W
        logits = self.classifier(x.mean(dim=(2, 3)))  # (B, channels[-1]) -> (B, num_labels)
        loss = F.cross_entropy(logits, labels) if labels is not None else None
        return ImageClassifierOutput(loss=loss, logits=logits)


# ---------------------------------------------------------------- pre-training once, cached
def _cnn_cache(source: ModelSource) -> Path:
    key = hashlib.sha256(json.dumps(source.config, sort_keys=True).encode()).hexdigest()[:12]
    return cache_dir() / f"course-cnn-{key}"


def _pretrain(source: ModelSource) -> tuple[SmallCNN, dict]:
    """Train a SmallCNN on the source task (digits 0-4) with the recipe in ``source.config``."""
    from .runtime import Runtime
    from .training import TrainConfig, fit
    from .images import SCAN, SOURCE_LABELS, ImageProcessor, image_dataset, make_image_loader

    recipe = source.config
    data = image_dataset("train", task="source")
    raw = ImageProcessor(size=recipe["image_size"], mean=(0.0,), std=(1.0,))(list(data["image"]))["pixel_values"]
    mean, std = round(raw.mean().item(), 4), round(raw.std().item(), 4)  # the source images' statistics
    torch.manual_seed(recipe["seed"])
    config = SmallCNNConfig(channels=tuple(recipe["channels"]), image_size=recipe["image_size"],
                            image_mean=(mean,), image_std=(std,))
    model = SmallCNN.from_scratch(SOURCE_LABELS, config)
    processor = ImageProcessor(size=config.image_size, mean=config.image_mean, std=config.image_std)
    loader = make_image_loader(data["image"], data["label"], processor, batch_size=recipe["batch_size"],
                               shuffle=True, seed=recipe["seed"], augment=SCAN)  # as distorted as the target
    history = fit(model, loader, runtime=Runtime(profile="pretrain", device="cpu", precision="fp32"),
                  config=TrainConfig(epochs=recipe["epochs"], lr=recipe["lr"], progress=False))
    return model, {"source_train_loss": history[-1]["train_loss"]}


def pretrained_cnn_dir(source: ModelSource) -> Path:
    """The cached pre-trained SmallCNN for `source` (kind 'course-cnn'); pre-trains it the first time."""
    from safetensors.torch import save_file

    target = _cnn_cache(source)
    manifest = target / "ftlib-manifest.json"
    if manifest.exists():
        expected = json.loads(manifest.read_text())["model.safetensors"]
        if sha256_file(target / "model.safetensors") != expected:
            raise IntegrityError(f"{target / 'model.safetensors'} does not match its manifest: the cached file was "
                                 f"modified or is incomplete; delete the folder {target} and it will be rebuilt")
        return target
    print(f"Pre-training the course CNN on the source task (digits 0-4, {source.config['epochs']} epochs) once; "
          f"cached in {target}")
    with torch.random.fork_rng():  # the caller's random stream is the same whether the cache existed or not
        model, stats = _pretrain(source)

    def write(tmp: Path) -> None:
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp / "model.safetensors"))
        (tmp / "config.json").write_text(json.dumps(asdict(model.config), indent=1))

    return publish_cache(target, write, {"recipe": source.config, **stats})


def pretrained_cnn_config(source: ModelSource) -> tuple[Path, SmallCNNConfig]:
    """The cache folder of `source` and the config saved there (the source task's labels and image statistics)."""
    folder = pretrained_cnn_dir(source)
    saved = json.loads((folder / "config.json").read_text())
    saved["id2label"] = {int(k): v for k, v in saved["id2label"].items()}
    return folder, SmallCNNConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in saved.items()})


def load_pretrained_cnn(source: ModelSource, labels: list[str]) -> SmallCNN:
    """The cached pre-trained SmallCNN with a new, randomly initialised head for `labels`."""
    from safetensors.torch import load_file

    folder, config = pretrained_cnn_config(source)
    model = SmallCNN(config)
    model.load_state_dict(load_file(str(folder / "model.safetensors")))
    old = model.classifier
    model.config = config.with_labels(labels)
    model.classifier = nn.Linear(old.in_features, len(labels))  # the new head: PyTorch's default init
    print(f"SmallCNN: backbone loaded from {folder.name}; classifier.weight {tuple(old.weight.shape)} -> "
          f"{tuple(model.classifier.weight.shape)} and classifier.bias newly initialised for {len(labels)} labels")
    return model
