"""Interactive explorers: move a slider, see what it costs.

Introduced in lessons 04 and 06 (and 01 for memory). Each explorer is a pure function
that computes the numbers (tested) and a small ipywidgets panel that calls it whenever a
control changes. Headless (tests, scripts, the course runner) the panel is replaced by a
printed table for a few settings, so a notebook runs the same everywhere.
"""
from __future__ import annotations

from torch import nn

from .freezing import HEADS, transformer_blocks
from .lora import DEFAULT_TARGETS, _matches
from .runtime import interactive

__all__ = ["fit_report", "freeze_explorer", "freeze_plan", "lora_explorer", "lora_footprint", "memory_calculator"]


def lora_footprint(model: nn.Module, r: int, alpha: float = 16, targets=None, bytes_per_param: int = 4) -> dict:
    """What LoRA of rank `r` on `targets` adds to `model`, computed from the layer shapes (nothing is changed).

    Each targeted ``nn.Linear(d_in, d_out)`` gets A (r x d_in) and B (d_out x r): r * (d_in + d_out)
    trainable numbers. The update is scaled by alpha / r.
    """
    if r < 1:
        raise ValueError(f"the rank r must be at least 1, got {r}")
    if targets is None:
        targets = DEFAULT_TARGETS[model.config.model_type]
    layers = [m for name, m in model.named_modules() if isinstance(m, nn.Linear) and _matches(name, targets)]
    if not layers:
        raise ValueError(f"no linear layer matches {list(targets)}")
    added = sum(r * (m.in_features + m.out_features) for m in layers)
    total = sum(p.numel() for p in model.parameters())
    return {"r": r, "alpha": alpha, "scaling": alpha / r, "layers": len(layers), "trainable": added,
            "percent_of_model": 100 * added / total, "adapter_bytes": added * bytes_per_param}


def freeze_plan(model: nn.Module, k: int, heads=HEADS) -> list[dict]:
    """Which groups train under ``freeze_bottom(model, k)``, one row per group; the model is not changed.

    Groups: the embeddings (frozen), each block (frozen below `k`), what sits between the
    blocks and the head (BERT's pooler; trains) and the head (trains).
    """
    blocks = list(transformer_blocks(model))
    if not 0 <= k <= len(blocks):
        raise ValueError(f"this model has {len(blocks)} blocks: k must be between 0 and {len(blocks)}, got {k}")
    block_of = {id(p): i for i, b in enumerate(blocks) for p in b.parameters()}
    head = {id(p) for n, m in model.named_modules() if n.rsplit(".", 1)[-1] in heads for p in m.parameters()}
    embeddings = {id(p) for n, m in model.named_modules() if n.rsplit(".", 1)[-1] == "embeddings"
                  for p in m.parameters()}
    sizes: dict[str, int] = {}
    for p in model.parameters():
        group = ("embeddings" if id(p) in embeddings else f"block {block_of[id(p)]}" if id(p) in block_of
                 else "head" if id(p) in head else "other (pooler)")
        sizes[group] = sizes.get(group, 0) + p.numel()
    order = ["embeddings"] + [f"block {i}" for i in range(len(blocks))] + ["other (pooler)", "head"]
    return [{"group": g, "params": sizes[g], "trains": g != "embeddings" and not (g.startswith("block ")
             and int(g.split()[1]) < k)} for g in order if g in sizes]


def _plan_text(rows: list[dict]) -> str:
    trainable = sum(r["params"] for r in rows if r["trains"])
    total = sum(r["params"] for r in rows)
    lines = [f"{'✓ trains' if r['trains'] else '✗ frozen'}  {r['group']:<11} {r['params']:>12,}" for r in rows]
    return "\n".join(lines + [f"trainable: {trainable:,} of {total:,} ({100 * trainable / total:.1f} %)"])


def _footprint_text(f: dict) -> str:
    return (f"rank {f['r']}, alpha {f['alpha']:g} (scaling alpha/r = {f['scaling']:.2f}): {f['layers']} layers, "
            f"{f['trainable']:,} trainable ({f['percent_of_model']:.2f} % of the model), "
            f"adapter file about {f['adapter_bytes'] / 1024:.0f} KiB")


def lora_explorer(model: nn.Module, targets=None, ranks=(1, 2, 4, 8, 16, 32, 64)) -> None:
    """A rank slider and an alpha slider; shows trainable parameters and the adapter's size."""
    if not interactive():
        for r in ranks:
            print(_footprint_text(lora_footprint(model, r, 2 * r, targets)))
        return
    import ipywidgets as w

    rank = w.SelectionSlider(options=list(ranks), value=8, description="rank r")
    alpha = w.FloatSlider(value=16, min=1, max=128, step=1, description="alpha")
    out = w.HTML()

    def show(_=None):
        out.value = f"<pre>{_footprint_text(lora_footprint(model, rank.value, alpha.value, targets))}</pre>"

    rank.observe(show, names="value")
    alpha.observe(show, names="value")
    show()
    from IPython.display import display

    display(w.VBox([w.HTML("<b>LoRA explorer</b>"), rank, alpha, out], layout=w.Layout(border="1px solid #ccc")))


def freeze_explorer(model: nn.Module) -> None:
    """A slider for how many bottom blocks to freeze; shows which groups train and the trainable count."""
    n = len(transformer_blocks(model))
    if not interactive():
        for k in (0, n // 2, n):
            print(f"-- first {k} blocks frozen --\n{_plan_text(freeze_plan(model, k))}")
        return
    import ipywidgets as w

    depth = w.IntSlider(value=n // 2, min=0, max=n, description="frozen blocks")
    out = w.HTML()

    def show(_=None):
        out.value = f"<pre>{_plan_text(freeze_plan(model, depth.value))}</pre>"

    depth.observe(show, names="value")
    show()
    from IPython.display import display

    display(w.VBox([w.HTML("<b>Freeze-depth explorer</b>"), depth, out], layout=w.Layout(border="1px solid #ccc")))


def _calculator_models() -> dict:
    """The catalog's transformer models whose shapes are written down, built on 'meta' (no memory, offline)."""
    from transformers import AutoConfig

    from . import catalog
    from .memory import model_on_meta

    sources = (catalog.DISTILBERT, catalog.SMOLLM2_GGUF, catalog.GEMMA3_GGUF, catalog.QWEN25_05B)
    return {s.name.split(" (")[0]: model_on_meta(AutoConfig.for_model(**s.config)) for s in sources if s.config}


def fit_report(model, *, method: str, precision: str, batch_size: int, seq_len: int, budget: int,
               logit_positions: int | None = None) -> str:
    """The memory estimate of one training step, and whether it fits in `budget` bytes.

    `logit_positions`: a causal LM's output layer at that many positions per sequence (None: all).
    """
    from .memory import estimate_training_memory

    estimate = estimate_training_memory(model, batch_size=batch_size, seq_len=seq_len, precision=precision,
                                        method=method, flash_attention=precision != "fp32",
                                        logit_positions=logit_positions)
    verdict = "fits" if estimate.fits(budget) else "does NOT fit"
    return f"{estimate}\n=> {verdict} in {budget / 1e9:.1f} GB"


def memory_calculator(budget: int | None = None) -> None:
    """'Will it fit on a T4?': model, method, precision, batch and length in; the estimate out (lesson 01).

    `budget` defaults to a T4's usable memory; fp16/bf16 assume a GPU's attention kernels
    (no stored attention matrix), fp32 a CPU's. "scores at" sets where a causal LM's output layer
    runs: every token, or only 16 answer tokens per sequence, as lesson 09 trains (encoders: no effect).
    """
    from .memory import T4_BYTES

    budget = budget or T4_BYTES
    models = _calculator_models()
    if not interactive():
        for name, model in models.items():
            print(f"-- {name} --\n" + fit_report(model, method="full", precision="fp16", batch_size=16,
                                                 seq_len=256, budget=budget))
        return
    import ipywidgets as w
    from IPython.display import display

    pick = w.Dropdown(options=list(models), description="model")
    method = w.ToggleButtons(options=["full", "head", "lora"], value="full", description="method")
    precision = w.ToggleButtons(options=["fp16", "bf16", "fp32"], value="fp16", description="precision")
    batch = w.SelectionSlider(options=[1, 2, 4, 8, 16, 32, 64, 128], value=16, description="batch")
    length = w.SelectionSlider(options=[64, 128, 256, 512, 1024, 2048], value=256, description="tokens")
    scored = w.ToggleButtons(options=[("every token", 0), ("16 answer tokens", 16)], value=0, description="scores at")
    out = w.HTML()

    def show(_=None):
        try:
            text = fit_report(models[pick.value], method=method.value, precision=precision.value,
                              batch_size=batch.value, seq_len=length.value, budget=budget,
                              logit_positions=scored.value or None)  # 0: every token
        except ValueError as err:  # e.g. 'head' for a causal LM, which has no classification head
            text = f"no estimate: {err}"
        out.value = f"<pre>{text}</pre>"

    for control in (pick, method, precision, batch, length, scored):
        control.observe(show, names="value")
    show()
    display(w.VBox([w.HTML("<b>Will it fit? (budget: a T4)</b>"), pick, method, precision, batch, length, scored, out],
                   layout=w.Layout(border="1px solid #ccc")))
