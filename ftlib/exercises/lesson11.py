"""Checks and knowledge test for lesson 11 (Preference tuning: from RLHF to DPO).

Each check raises :class:`~ftlib.exercises.Hint` with a pointer, never the answer.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from . import Hint, Question, Quiz

__all__ = ["check_my_dpo_loss", "QUIZ"]


def _inputs(seed: int, n: int = 6, scale: float = 8.0):
    g = torch.Generator().manual_seed(seed)
    ref = -scale * torch.rand(4, n, generator=g) - 1.0  # summed log-probabilities are negative
    moves = torch.randn(4, n, generator=g)
    return tuple(ref[i] + moves[i] * (i < 2) for i in range(4))  # policy = reference moved a little


def _value(fn, args, beta):
    try:
        got = fn(*args, beta)
    except Hint:
        raise
    except Exception as error:  # noqa: BLE001 - the learner's own error becomes a hint
        raise Hint(f"`my_dpo_loss` raised {type(error).__name__}: {str(error)[:120]}; it receives four tensors of "
                   "the same shape (one value per pair) and a float beta") from error
    if got is Ellipsis:
        raise Hint("`my_dpo_loss` still returns `...`: compute `loss` in the exercise cell")
    if isinstance(got, tuple):
        raise Hint("`my_dpo_loss` should return the loss alone, one number for the batch, not a tuple")
    if not isinstance(got, torch.Tensor):
        raise Hint(f"`my_dpo_loss` should return a torch tensor (so that backward() can run), got "
                   f"{type(got).__name__}: build it from the input tensors with torch operations")
    if got.numel() != 1:
        raise Hint(f"`my_dpo_loss` returns {got.numel()} values for {len(args[0])} pairs: the loss of the batch is "
                   "one number, the mean over its pairs")
    return float(got)


def check_my_dpo_loss(my_loss, my_dpo_loss) -> None:
    """Exercise: the learner's DPO loss against the course's on random batches (and the lesson's value `my_loss`)."""
    from ..preference import dpo_loss

    if not isinstance(my_loss, torch.Tensor):
        raise Hint(f"`my_dpo_loss` returned {type(my_loss).__name__} on the lesson's batch: it should return a "
                   "torch tensor")
    for seed, beta in ((0, 0.1), (1, 0.5), (2, 2.0)):
        args = _inputs(seed)
        want = dpo_loss(*args, beta)[0].item()
        got = _value(my_dpo_loss, args, beta)
        if math.isclose(got, want, rel_tol=1e-4, abs_tol=1e-6):
            continue
        pc, pr, rc, rr = args
        margin = beta * ((pc - rc) - (pr - rr))
        near = lambda x: math.isclose(got, float(x), rel_tol=1e-4, abs_tol=1e-6)  # noqa: E731
        if near(F.logsigmoid(margin).mean()):
            raise Hint("your loss is negative: the log-sigmoid of the margin is what we want to be *large*, so the "
                       "loss to minimise is its opposite")
        if near(-F.logsigmoid(-margin).mean()):
            raise Hint("your loss rewards the rejected answer: the margin is the chosen answer's reward minus the "
                       "rejected one's")
        if near(-F.logsigmoid(beta * (pc - pr)).mean()):
            raise Hint("the reference is missing: each reward is the policy's log-probability *minus the "
                       "reference's*, so that the model is only rewarded for how much it moved")
        if near(-F.logsigmoid((pc - rc) - (pr - rr)).mean()):
            raise Hint("beta is missing: it scales the log-ratios before the sigmoid, and sets how strongly the "
                       "model is held near the reference")
        if near(-beta * F.logsigmoid((pc - rc) - (pr - rr)).mean()):
            raise Hint("beta multiplies the log-ratios *inside* the sigmoid, not the loss outside it")
        if near(-F.logsigmoid(margin).sum()):
            raise Hint("that is the sum over the pairs: take the mean, so that the loss does not grow with the "
                       "batch size")
        if near(-torch.sigmoid(margin).mean()) or near((1 - torch.sigmoid(margin)).mean()):
            raise Hint("close: the loss takes the *log* of the sigmoid (the log-likelihood of the preference, as "
                       "in logistic regression)")
        raise Hint(f"with beta={beta} on a random batch your loss is {got:.4f}, the course's differs: the reward of "
                   "an answer is beta * (policy log-prob - reference log-prob), and the loss is minus the mean "
                   "log-sigmoid of (reward of chosen - reward of rejected)")
    big = tuple(a * 200 for a in _inputs(3))  # long answers: log-probabilities in the thousands
    got, want = _value(my_dpo_loss, big, 0.5), dpo_loss(*big, 0.5)[0].item()
    if not math.isfinite(got):
        raise Hint("with very different log-probabilities (long answers) your loss is infinite: log(sigmoid(x)) "
                   "underflows for large negative x; use F.logsigmoid, which computes it safely")
    if not math.isclose(got, want, rel_tol=1e-4):
        raise Hint("with very different log-probabilities (long answers) your loss drifts from the right value: "
                   "log(sigmoid(x)) loses precision there; use F.logsigmoid")


QUIZ = Quiz("Knowledge test: lesson 11", [
    Question(
        "Why is supervised fine-tuning alone not enough to make a model prefer good answers?",
        ("It needs too much data",
         "It only imitates the examples: it never sees a worse answer, so it cannot learn that one answer beats another",
         "It cannot change the weights of a pretrained model",
         "It only works with a chat template"),
        1,
        ("Lesson 09 fine-tuned on a couple of hundred pairs; the amount is not the issue.",
         "Right: SFT raises the probability of the demonstrations. Preferences add a comparison, "
         "'this one rather than that one', which imitation cannot express.",
         "SFT changes the weights (or a LoRA adapter), as every lesson so far did.",
         "A base model without a chat template is fine-tuned all the same, with the plain 'Q: ... A:' format."),
    ),
    Question(
        "In the RLHF pipeline of Ouyang et al. (2022), what does the reward model learn from?",
        ("From the exact match of the model's answers",
         "From people's rankings of several answers to the same prompt, through pairwise comparisons (Bradley-Terry)",
         "From the pretraining text",
         "From the KL divergence to the reference model"),
        1,
        ("Exact match needs a gold answer; preferences work where no single answer is right.",
         "Right: the reward model is trained so that the preferred answer of each pair gets the higher score.",
         "The reward model is trained on comparisons that labellers made, not on raw text.",
         "The KL penalty is used later, in the PPO step, to keep the policy near the SFT model."),
    ),
    Question(
        "What does DPO's beta control?",
        ("The learning rate",
         "How strongly the policy is held near the reference: the implicit reward is beta times the log-ratio",
         "The number of preference pairs per batch",
         "The length of the generated answers"),
        1,
        ("The learning rate is separate; the optimizer uses it whatever beta is.",
         "Right: beta plays the part of the KL penalty's weight in RLHF. A small beta lets the model move far from "
         "the reference for the same loss; a large one keeps it close.",
         "The batch size is separate.",
         "Answer length may change as a result of training, but beta does not set it."),
    ),
    Question(
        "With LoRA, where does this lesson's reference model come from?",
        ("A second full copy of the model, loaded before training",
         "The same model with its adapter switched off (model.disable_adapter())",
         "The model after the first epoch",
         "A reward model trained beforehand"),
        1,
        ("That would work, but holds two copies in memory; with LoRA it is not needed.",
         "Right: the base weights never change under LoRA, so switching the adapter off gives the reference "
         "exactly, with no second copy.",
         "The reference must stay fixed for the whole training.",
         "DPO has no separate reward model: the reward is implicit in the policy."),
    ),
    Question(
        "Right after a fresh LoRA adapter is added (B = 0), what is the DPO loss on any pair?",
        ("0", "log 2, about 0.693", "1", "It depends on the pair"),
        1,
        ("A loss of 0 would mean the chosen answer is infinitely preferred.",
         "Right: the policy equals the reference, every implicit reward is 0, and -log sigmoid(0) = log 2.",
         "That is not a value of -log sigmoid(x) at x = 0.",
         "Every pair has reward 0 for both answers at the start, whatever their text."),
    ),
    Question(
        "Why does this lesson fine-tune on the chosen answers before DPO?",
        ("DPO cannot train a LoRA adapter on a pretrained model",
         "DPO measures every reward against its reference and pulls the policy back to it, so the reference should "
         "already answer like the pairs; with no SFT model at hand, the DPO paper builds one this way",
         "SFT does the real work, and DPO only checks it",
         "So that the DPO loss starts below log 2"),
        1,
        ("It can: section 4 put a fresh adapter on the pretrained model and checked it.",
         "Right: Rafailov et al. (2023, section 4) use the SFT model as the reference, and when there is none they "
         "first maximise the likelihood of the preferred answers, to lessen the mismatch with the pairs' distribution.",
         "SFT never sees a rejected answer; only DPO learns from the comparisons.",
         "A fresh adapter on any model starts at log 2: the policy equals its reference, whatever the reference is."),
    ),
])
