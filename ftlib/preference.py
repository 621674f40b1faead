"""Preference tuning with DPO: answer log-probabilities, the DPO loss, and its training loop.

Introduced in lesson 11. A preference pair is a prompt with two answers, one *chosen*
(better) and one *rejected*. Each answer is encoded as in lesson 09 (``ftlib.qa.encode_qa``:
labels -100 on the prompt), and the model scores it by the sum of the log-probabilities
of its answer tokens, prompt and padding left out:

    log pi(answer | prompt) = sum over answer tokens t of log p(token_t | tokens before t)

DPO (Rafailov et al. 2023, arXiv:2305.18290) compares those sums with the same sums
under a frozen *reference* model. With LoRA the reference is the very same model with
its adapter switched off (``model.disable_adapter()``), so no second copy is held:

    reward(answer)  = beta * (log pi_policy(answer) - log pi_ref(answer))      (the implicit reward)
    loss            = -log sigmoid(reward(chosen) - reward(rejected))

DPO's reference should be a model that already answers in the data's format: the paper's
reference is the supervised fine-tuned (SFT) model, and when none exists it first fine-tunes
on the chosen answers (its section 4). :func:`sft_reference` does that with lesson 09's loss and
merges the LoRA into the weights; DPO's fresh adapter then goes on top of it.

Only the answer positions need the output layer (a 262 k-way matrix for Gemma 3), so
:func:`sequence_logprobs` asks the model for those logits alone (``logits_to_keep``).
"""
from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from .data import DataError, LengthGroupedBatchSampler, load_table
from .optim import make_optimizer, make_scheduler
from .qa import IGNORE_INDEX, encode_qa, make_qa_loader, prompt_ids, qa_collate
from .runtime import Runtime, model_device, move_to
from .training import TrainConfig, check_loss, fit, scaled_step

__all__ = ["add_reference_logprobs", "answer_logprobs", "dpo_loss", "dpo_step", "encode_pair", "fit_dpo",
           "load_preferences", "make_preference_loader", "preference_collate", "preference_scores",
           "reference_logprobs", "sequence_logprobs", "sft_reference"]

FIELDS = ("prompt", "chosen", "rejected")


def load_preferences(source) -> list[dict]:
    """Preference records from a JSONL/CSV file (``prompt``, ``chosen``, ``rejected`` fields), checked."""
    table = load_table(source)
    missing = [f for f in FIELDS if f not in table.column_names]
    if missing:
        raise DataError(f"{source} has no {missing} field (it has {table.column_names}): each record needs "
                        "'prompt', 'chosen' and 'rejected'")
    records = table.to_list()
    for i, r in enumerate(records):
        if any(not str(r[f] or "").strip() for f in FIELDS):
            raise DataError(f"{source}: record {i + 1} has an empty prompt, chosen or rejected; fill it in or remove it")
        if str(r["chosen"]).strip() == str(r["rejected"]).strip():
            raise DataError(f"{source}: record {i + 1} has the same chosen and rejected answer: a pair needs two "
                            "different answers")
    return records


def encode_pair(tokenizer, prompt: str, chosen: str, rejected: str, *, max_length: int,
                max_answer_tokens: int | None = None) -> dict[str, dict]:
    """Both answers to `prompt`, each encoded as a lesson-09 example (labels -100 on the prompt).

    `max_answer_tokens` cuts a long answer (a rambling one) after that many tokens: the pair
    is decided in its first tokens, and the rest would only cost time.
    """
    if max_answer_tokens is not None:
        max_length = min(max_length, len(prompt_ids(tokenizer, prompt)) + max_answer_tokens)
    return {"chosen": encode_qa(tokenizer, prompt, chosen, max_length=max_length),
            "rejected": encode_qa(tokenizer, prompt, rejected, max_length=max_length)}


def preference_collate(pairs: list[dict], pad_token_id: int) -> dict[str, dict[str, torch.Tensor]]:
    """A batch of pairs: ``{'chosen': batch, 'rejected': batch, 'index': ...}``, each half padded on the right.

    The two halves are padded separately (pad id, attention 0, label -100): a short chosen
    answer does not pay for the padding of a long rejected one. 'index' is each pair's place
    in the loader's records; 'ref_chosen' and 'ref_rejected' come along once
    :func:`add_reference_logprobs` has computed them.
    """
    batch = {side: qa_collate([p[side] for p in pairs], pad_token_id) for side in ("chosen", "rejected")}
    batch["index"] = torch.tensor([p.get("index", -1) for p in pairs])  # each pair's place in the records
    if all("ref_chosen" in p for p in pairs):  # reference log-probabilities, once computed (add_reference_logprobs)
        batch["ref_chosen"] = torch.tensor([p["ref_chosen"] for p in pairs])
        batch["ref_rejected"] = torch.tensor([p["ref_rejected"] for p in pairs])
    return batch


def make_preference_loader(records, tokenizer, *, batch_size: int, shuffle: bool, seed: int = 0,
                           max_length: int = 256, max_answer_tokens: int | None = None) -> torch.utils.data.DataLoader:
    """Batches of preference pairs for :func:`fit_dpo` and :func:`preference_scores`.

    `records` are dicts with 'prompt', 'chosen' and 'rejected'. Similar lengths are grouped,
    and the order depends only on (seed, epoch), as in ``ftlib.qa.make_qa_loader``.
    """
    pairs = [{**encode_pair(tokenizer, r["prompt"], r["chosen"], r["rejected"], max_length=max_length,
                            max_answer_tokens=max_answer_tokens), "index": i}
             for i, r in enumerate(records)]
    if not pairs:
        raise ValueError("no preference pairs to batch: pass a non-empty list of {'prompt', 'chosen', 'rejected'} dicts")
    lengths = [len(p["chosen"]["input_ids"]) + len(p["rejected"]["input_ids"]) for p in pairs]
    sampler = LengthGroupedBatchSampler(lengths, batch_size, shuffle=shuffle, seed=seed)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    return torch.utils.data.DataLoader(pairs, batch_sampler=sampler,
                                       collate_fn=lambda batch: preference_collate(batch, pad_id),
                                       generator=torch.Generator().manual_seed(seed))


def sequence_logprobs(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """For each row, the sum of log p(token) over the tokens whose label is not -100: shape (rows,).

    Prompt and padding carry the label -100, so they add nothing. Position t predicts token
    t + 1, so the logits we need sit one position before each answer token; the model computes
    the output layer at those positions only (``logits_to_keep``, a boolean mask).
    """
    batch = move_to(batch, model_device(model))
    targets = batch["labels"][:, 1:]  # (B, T-1): the token each position predicts
    needed = targets != IGNORE_INDEX
    keep = torch.zeros_like(batch["labels"], dtype=torch.bool)
    keep[:, :-1] = needed  # (B, T): True one position before each answer token
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], logits_to_keep=keep).logits
    logits = logits.reshape(-1, logits.shape[-1]).float()  # (answer tokens in the batch, vocabulary), row by row
    token_logps = logits.gather(1, targets[needed].unsqueeze(1)).squeeze(1) - logits.logsumexp(dim=-1)
    rows = needed.nonzero()[:, 0]  # which row each answer token belongs to
    return torch.zeros(len(targets), device=logits.device).index_add(0, rows, token_logps)


def dpo_loss(policy_chosen: torch.Tensor, policy_rejected: torch.Tensor, ref_chosen: torch.Tensor,
             ref_rejected: torch.Tensor, beta: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The DPO loss (mean over pairs) and the implicit rewards of the chosen and rejected answers.

    Each argument holds one summed log-probability per pair (:func:`sequence_logprobs`).
    """
    chosen_rewards = beta * (policy_chosen - ref_chosen)
    rejected_rewards = beta * (policy_rejected - ref_rejected)
    loss = -F.logsigmoid(chosen_rewards - rejected_rewards).mean()
    return loss, chosen_rewards.detach(), rejected_rewards.detach()


def _reference(model):
    """A context in which `model` computes as the reference: its LoRA adapter switched off."""
    if not hasattr(model, "disable_adapter"):
        raise ValueError("DPO here needs a peft model (e.g. from get_peft_model): the reference is the same model "
                         "with its adapter switched off")
    return model.disable_adapter()


@torch.no_grad()
def reference_logprobs(model, batch: dict, runtime: Runtime) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed answer log-probabilities of chosen and rejected under the reference (adapter off).

    Computed once and kept in the batch if :func:`add_reference_logprobs` ran on its loader.
    """
    if "ref_chosen" in batch:
        device = model_device(model)
        return batch["ref_chosen"].to(device), batch["ref_rejected"].to(device)
    with _reference(model), runtime.autocast():
        return sequence_logprobs(model, batch["chosen"]), sequence_logprobs(model, batch["rejected"])


@torch.no_grad()
def answer_logprobs(model, loader, runtime: Runtime) -> tuple[list[float], list[float]]:
    """`model`'s own summed log-probabilities of every pair's chosen and rejected answer, in the records' order."""
    model.eval()
    n = len(loader.dataset)
    chosen, rejected = [0.0] * n, [0.0] * n
    for batch in loader:
        with runtime.autocast():
            c, r = sequence_logprobs(model, batch["chosen"]), sequence_logprobs(model, batch["rejected"])
        for i, ci, ri in zip(batch["index"].tolist(), c.tolist(), r.tolist()):
            chosen[i], rejected[i] = ci, ri
    return chosen, rejected


@torch.no_grad()
def add_reference_logprobs(model, loader, runtime: Runtime) -> None:
    """Compute the reference's log-probabilities of every pair of `loader` once, and keep them in its pairs.

    The reference never changes during training, so there is no need to ask it again at every
    step (TRL calls this ``precompute_ref_log_probs``). Later batches of `loader` carry them.
    """
    pairs = loader.dataset
    for p in pairs:  # a fresh computation, not values left by an earlier model
        p.pop("ref_chosen", None), p.pop("ref_rejected", None)
    with _reference(model):
        chosen, rejected = answer_logprobs(model, loader, runtime)
    for p, c, r in zip(pairs, chosen, rejected):
        p["ref_chosen"], p["ref_rejected"] = c, r


def sft_reference(model, records, tokenizer, lora_config, *, runtime: Runtime, epochs: int, lr: float,
                  batch_size: int, max_length: int, seed: int = 0, progress: bool = True, save_adapter=None):
    """DPO's reference when no SFT model exists: `model` fine-tuned on the chosen answers; returns (model, history).

    Rafailov et al. (2023, section 4) take the supervised fine-tuned model as the reference and,
    when there is none, first maximise the likelihood of the preferred answers. This is lesson
    09's training (a LoRA adapter, the loss on the answer tokens only), on each record's prompt
    and chosen answer; the adapter is then merged into the weights, so that DPO's own fresh
    adapter, switched off, is this model. `model` itself is changed: pass a copy to keep it.
    `save_adapter`: a folder where the SFT adapter is also saved, before the merge.
    """
    from peft import get_peft_model

    qa = [{"question": r["prompt"], "answer": r["chosen"]} for r in records]
    loader = make_qa_loader(qa, tokenizer, batch_size=batch_size, shuffle=True, seed=seed, max_length=max_length,
                            answer_logits_only=True)
    model = get_peft_model(model, lora_config)
    history = fit(model, loader, runtime=runtime, config=TrainConfig(epochs=epochs, lr=lr, progress=progress))
    if save_adapter is not None:
        model.save_pretrained(save_adapter)
    return model.merge_and_unload().eval(), history


def dpo_step(model, batch: dict, optimizer, scheduler, runtime: Runtime, *, beta: float, loss_fn=None,
             sft_weight: float = 0.0, scaler=None, max_grad_norm: float | None = 1.0) -> dict[str, float]:
    """One optimizer step of DPO on a batch of pairs; returns its loss, accuracy and reward margin.

    `loss_fn(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta)` returns the loss
    (lesson 11 passes the learner's own); the default is :func:`dpo_loss`. `sft_weight` adds
    that many times the chosen answers' mean negative log-likelihood per token (lesson 09's
    loss): DPO alone only widens the gap, and may lower both answers' likelihood to do it.
    """
    ref_chosen, ref_rejected = reference_logprobs(model, batch, runtime)  # adapter off, no gradient
    optimizer.zero_grad(set_to_none=True)
    with runtime.autocast():
        policy_chosen = sequence_logprobs(model, batch["chosen"])  # adapter on: these carry the gradient
        policy_rejected = sequence_logprobs(model, batch["rejected"])
    loss, chosen_rewards, rejected_rewards = dpo_loss(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta)
    if loss_fn is not None:
        loss = loss_fn(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta)
    if sft_weight:
        tokens = (batch["chosen"]["labels"][:, 1:] != IGNORE_INDEX).sum(dim=1).to(policy_chosen.device)
        loss = loss + sft_weight * (-policy_chosen / tokens.clamp(min=1)).mean()
    check_loss(loss, optimizer)
    (scaler.scale(loss) if scaler else loss).backward()
    if scaler is not None:
        scaler.unscale_(optimizer)
    if max_grad_norm is not None:
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], max_grad_norm)
    if scaler is None:
        optimizer.step()
        scheduler.step()
    elif scaled_step(optimizer, scaler):
        scheduler.step()
    margin = chosen_rewards - rejected_rewards
    return {"loss": loss.item(), "accuracy": (margin > 0).float().mean().item(), "margin": margin.mean().item()}


def fit_dpo(model, train_loader, *, runtime: Runtime, beta: float, epochs: int, lr: float, warmup_ratio: float = 0.1,
            loss_fn=None, sft_weight: float = 0.0, progress: bool = True) -> list[dict]:
    """Train `model`'s adapter with DPO; one record per epoch (loss, accuracy and margin on the training pairs).

    The loop in full: for each batch, the reference's log-probabilities (adapter off, or kept by
    :func:`add_reference_logprobs`), the policy's (adapter on), the loss, one optimizer step.
    """
    model.to(runtime.device)
    optimizer = make_optimizer(model, lr=lr, weight_decay=0.0)
    scheduler = make_scheduler(optimizer, total_steps=len(train_loader) * epochs, warmup_ratio=warmup_ratio)
    scaler = runtime.grad_scaler()  # fp16 only (a T4)
    history = []
    for epoch in range(1, epochs + 1):
        started, steps = time.perf_counter(), []
        model.train()
        for batch in train_loader:
            steps.append(dpo_step(model, batch, optimizer, scheduler, runtime, beta=beta, loss_fn=loss_fn,
                                  sft_weight=sft_weight, scaler=scaler))
        record = {"epoch": epoch, **{k: sum(s[k] for s in steps) / len(steps) for k in steps[0]},
                  "seconds": time.perf_counter() - started}
        history.append(record)
        if progress:
            print(f"  epoch {epoch}: DPO loss {record['loss']:.3f}, training pairs ordered right "
                  f"{record['accuracy']:.0%}, reward margin {record['margin']:+.2f} ({record['seconds']:.0f} s)")
    model.eval()
    return history


@torch.no_grad()
def preference_scores(model, loader, runtime: Runtime, *, beta: float) -> dict:
    """How `model` orders the pairs of `loader`, by its implicit reward and by the reference's own log-probability.

    Returns accuracy (share of pairs whose chosen answer gets the higher implicit reward),
    margin (mean reward of chosen minus rejected), loss (mean DPO loss), reference_accuracy (share
    of pairs where the reference alone gives chosen the higher log-probability), and the
    per-pair values in the order of the loader's records (lists: ``chosen_reward``,
    ``rejected_reward``, ``ref_chosen``, ``ref_rejected``).
    """
    model.eval()
    model.to(runtime.device)
    cols = {k: [] for k in ("chosen_reward", "rejected_reward", "ref_chosen", "ref_rejected")}
    losses, order = [], []
    for batch in loader:
        ref_chosen, ref_rejected = reference_logprobs(model, batch, runtime)
        with runtime.autocast():
            policy_chosen = sequence_logprobs(model, batch["chosen"])
            policy_rejected = sequence_logprobs(model, batch["rejected"])
        loss, chosen_rewards, rejected_rewards = dpo_loss(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta)
        losses.append((loss.item(), len(chosen_rewards)))
        order += batch["index"].tolist()
        for k, v in zip(cols, (chosen_rewards, rejected_rewards, ref_chosen, ref_rejected)):
            cols[k] += v.float().cpu().tolist()
    n = len(cols["chosen_reward"])
    if n == 0:
        raise ValueError("no preference pairs to score: the loader is empty")
    rank = sorted(range(n), key=lambda i: order[i])  # back to the records' order
    cols = {k: [v[i] for i in rank] for k, v in cols.items()}
    margins = [c - r for c, r in zip(cols["chosen_reward"], cols["rejected_reward"])]
    return {"accuracy": sum(m > 0 for m in margins) / n, "margin": sum(margins) / n,
            "loss": sum(l * k for l, k in losses) / n,
            "reference_accuracy": sum(c > r for c, r in zip(cols["ref_chosen"], cols["ref_rejected"])) / n, **cols}

