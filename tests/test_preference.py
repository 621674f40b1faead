"""ftlib.preference: answer log-probabilities, the DPO loss (ours against TRL's), the reference as the adapter off."""
import math

import pytest
import torch
import torch.nn.functional as F
from peft import get_peft_model

from ftlib import catalog
from ftlib.data import DataError
from ftlib.lora import peft_config
from ftlib.models import load_causal_lm
from ftlib.preference import (add_reference_logprobs, answer_logprobs, dpo_loss, encode_pair, fit_dpo,
                              load_preferences, make_preference_loader, preference_collate, preference_scores,
                              reference_logprobs, sequence_logprobs, sft_reference)
from ftlib.qa import prompt_ids, qa_collate
from ftlib.runtime import get_runtime

PAIRS = [("What is 7 times 8?", "56", "It is probably 54, but let me think about it for a while longer."),
         ("Which planet is closest to the Sun?", "Mercury", "Venus"),
         ("노르웨이의 수도는?", "오슬로", "노르웨이는 북유럽에 있는 나라로, 수도는 아마 오슬로일 거예요."),
         ("Add 15 and 27.", "42", "32")]
TARGETS = ("q_proj", "v_proj")


def tiny_gemma(seed: int = 0):
    torch.manual_seed(seed)  # the smoke model is random: the same seed gives the same weights
    return load_causal_lm(catalog.TINY_GEMMA)


@pytest.fixture(scope="module")
def gemma():
    return tiny_gemma()


@pytest.fixture(scope="module")
def runtime():
    return get_runtime("smoke", device="cpu")


def lora(base, seed=0):
    torch.manual_seed(seed)
    return get_peft_model(base, peft_config(TARGETS, r=4, alpha=8, train_also=(), task_type="CAUSAL_LM"))


def records(pairs=PAIRS):
    return [{"prompt": p, "chosen": c, "rejected": r} for p, c, r in pairs]


def batch_of(tok, pairs=PAIRS, **kw):
    return preference_collate([encode_pair(tok, p, c, r, max_length=128, **kw) for p, c, r in pairs], tok.pad_token_id)


def hand_logprob(model, tok, prompt, answer):
    """log p(answer tokens | prompt), one token at a time from the full logits of the unpadded sequence."""
    ex = encode_pair(tok, prompt, answer, answer + " x", max_length=128)["chosen"]
    ids = torch.tensor([ex["input_ids"]])
    with torch.no_grad():
        logps = F.log_softmax(model(input_ids=ids).logits[0].double(), dim=-1)
    n = len(prompt_ids(tok, prompt))
    return sum(logps[t - 1, ids[0, t]].item() for t in range(n, ids.shape[1]))


def test_logprobs_are_the_answer_tokens_only_and_ignore_padding(gemma):
    model, tok = gemma
    model.eval()
    batch = batch_of(tok)
    with torch.no_grad():
        got = sequence_logprobs(model, batch["chosen"])
    want = [hand_logprob(model, tok, p, c) for p, c, _ in PAIRS]
    assert got.shape == (len(PAIRS),)
    assert got.tolist() == pytest.approx(want, abs=1e-3)
    # The prompt is context, not counted: the whole sequence's log-probability is lower (more terms).
    ex = batch["chosen"]
    with torch.no_grad():
        logps = F.log_softmax(model(input_ids=ex["input_ids"][:1]).logits[0], dim=-1)
    every = sum(logps[t - 1, ex["input_ids"][0, t]].item() for t in range(1, int(ex["attention_mask"][0].sum())))
    assert every < got[0].item() - 1
    # Padding: another pad id, or more padding, changes nothing.
    wider = {k: F.pad(v, (0, 7), value=-100 if k == "labels" else 0) for k, v in ex.items()}
    other_pad = {**ex, "input_ids": torch.where(ex["attention_mask"].bool(), ex["input_ids"], 17)}
    with torch.no_grad():
        assert torch.allclose(sequence_logprobs(model, wider), got, atol=1e-4)
        assert torch.allclose(sequence_logprobs(model, other_pad), got, atol=1e-4)
    # A prompt token that is not a target: changing its label from -100 to its id would count it; -100 does not.
    labels = ex["labels"].clone()
    labels[0, 1] = ex["input_ids"][0, 1]
    with torch.no_grad():
        assert sequence_logprobs(model, {**ex, "labels": labels})[0] < got[0] - 1e-3


def test_max_answer_tokens_cuts_long_answers_only(gemma):
    _, tok = gemma
    p, c, r = PAIRS[0]
    pair = encode_pair(tok, p, c, r, max_length=128, max_answer_tokens=5)
    n = len(prompt_ids(tok, p))
    assert len(pair["rejected"]["input_ids"]) == n + 5
    assert pair["chosen"] == encode_pair(tok, p, c, r, max_length=128)["chosen"]


def test_adapter_off_is_the_reference_and_the_loss_starts_at_log_2(runtime):
    base, tok = tiny_gemma()
    model = lora(base)  # fresh LoRA: B = 0, so the adapter adds exactly nothing
    model.eval()
    batch = batch_of(tok)
    with torch.no_grad():
        policy = sequence_logprobs(model, batch["chosen"]), sequence_logprobs(model, batch["rejected"])
    ref = reference_logprobs(model, batch, runtime)
    assert torch.equal(policy[0], ref[0]) and torch.equal(policy[1], ref[1])
    loss, chosen_rewards, rejected_rewards = dpo_loss(*policy, *ref, beta=0.1)
    assert loss.item() == pytest.approx(math.log(2), abs=1e-7)
    assert torch.all(chosen_rewards == 0) and torch.all(rejected_rewards == 0)
    with torch.no_grad():  # once the adapter moves, policy and reference part, and only the policy changes
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)
        moved = sequence_logprobs(model, batch["chosen"])
    assert not torch.allclose(moved, policy[0])
    assert torch.equal(reference_logprobs(model, batch, runtime)[0], ref[0])


def test_reference_logprobs_kept_once_equal_those_computed_each_time(runtime):
    base, tok = tiny_gemma()
    model = lora(base)
    loader = make_preference_loader(records(), tok, batch_size=3, shuffle=False)
    fresh = preference_scores(model, loader, runtime, beta=0.1)
    add_reference_logprobs(model, loader, runtime)
    assert all("ref_chosen" in p for p in loader.dataset)
    kept = preference_scores(model, loader, runtime, beta=0.1)
    assert kept["ref_chosen"] == pytest.approx(fresh["ref_chosen"], abs=1e-5)
    # values come back in the records' order: the first pair's chosen answer is the shortest here
    assert fresh["ref_chosen"][0] == pytest.approx(hand_logprob(model.get_base_model(), tok, *PAIRS[0][:2]), abs=1e-3)


def test_dpo_loss_by_hand():
    pc, pr, rc, rr = (torch.tensor([v]) for v in (-3.0, -9.0, -4.0, -8.0))
    loss, cr, rjr = dpo_loss(pc, pr, rc, rr, beta=0.5)
    assert cr.item() == pytest.approx(0.5) and rjr.item() == pytest.approx(-0.5)
    assert loss.item() == pytest.approx(-math.log(1 / (1 + math.exp(-1.0))))


def test_our_dpo_loss_equals_trls_on_the_same_batch(runtime, tmp_path):
    trl = pytest.importorskip("trl")
    from datasets import Dataset

    assert trl.__version__ == "1.16.0"  # the version pinned in requirements.txt; its sigmoid loss is read below
    base, tok = tiny_gemma()
    args = trl.DPOConfig(output_dir=str(tmp_path), beta=0.1, report_to=[], use_cpu=True, logging_strategy="no",
                         save_strategy="no", max_length=None)
    trainer = trl.DPOTrainer(model=base, args=args, processing_class=tok, train_dataset=Dataset.from_list(records()),
                             peft_config=peft_config(TARGETS, r=4, alpha=8, train_also=(), task_type="CAUSAL_LM"))
    model = trainer.model  # TRL's own peft model; its reference is the adapter switched off, as ours
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)  # policy != reference, or both losses would be log 2
    model.eval()
    batch = batch_of(tok)
    with torch.no_grad():
        policy = sequence_logprobs(model, batch["chosen"]), sequence_logprobs(model, batch["rejected"])
    ours = dpo_loss(*policy, *reference_logprobs(model, batch, runtime), beta=0.1)[0]
    # TRL's layout of the same batch: chosen rows then rejected rows, and a completion mask on the answers.
    rows = qa_collate([encode_pair(tok, p, c, r, max_length=128)[side] for side in ("chosen", "rejected")
                       for p, c, r in PAIRS], tok.pad_token_id)
    inputs = {"input_ids": rows["input_ids"], "attention_mask": rows["attention_mask"],
              "completion_mask": (rows["labels"] != -100).long()}
    with torch.no_grad():
        theirs = trainer.compute_loss(model, inputs)  # DPOTrainer._compute_loss, loss_type 'sigmoid'
    assert abs(ours.item() - math.log(2)) > 1e-3
    assert ours.item() == pytest.approx(theirs.item(), abs=1e-5)


def test_a_few_dpo_steps_order_the_training_pairs(runtime):
    base, tok = tiny_gemma()
    model = lora(base)
    loader = make_preference_loader(records(), tok, batch_size=2, shuffle=True, max_answer_tokens=8)
    add_reference_logprobs(model, loader, runtime)
    history = fit_dpo(model, loader, runtime=runtime, beta=0.5, epochs=4, lr=3e-2, progress=False)
    scores = preference_scores(model, loader, runtime, beta=0.5)
    assert scores["accuracy"] >= 0.75 and scores["margin"] > 0
    assert scores["loss"] < math.log(2) and history[-1]["loss"] < history[0]["loss"]


def test_dpo_needs_an_adapter_or_it_would_be_its_own_reference(gemma, runtime):
    model, tok = gemma
    with pytest.raises(ValueError, match="adapter"):
        reference_logprobs(model, batch_of(tok), runtime)


def test_load_preferences_checks_fields(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"prompt": "Q", "chosen": "a", "refused": "b"}\n')
    with pytest.raises(DataError, match="rejected"):
        load_preferences(path)
    path.write_text('{"prompt": "Q", "chosen": "a", "rejected": "a"}\n')
    with pytest.raises(DataError, match="same chosen and rejected"):
        load_preferences(path)
    assert len(load_preferences(catalog.data_path("preferences.jsonl"))) == 260


def test_sft_weight_adds_the_chosen_answers_mean_token_loss(runtime):
    from ftlib.optim import make_optimizer, make_scheduler
    from ftlib.preference import dpo_step

    base, tok = tiny_gemma()
    model = lora(base)
    batch = batch_of(tok)
    with torch.no_grad():
        chosen = sequence_logprobs(model, batch["chosen"])
    tokens = (batch["chosen"]["labels"][:, 1:] != -100).sum(dim=1)
    optimizer = make_optimizer(model, lr=1e-3)
    step = dpo_step(model, batch, optimizer, make_scheduler(optimizer, total_steps=1), runtime, beta=0.1,
                    sft_weight=0.5)
    assert step["loss"] == pytest.approx(math.log(2) + 0.5 * (-chosen / tokens).mean().item(), rel=1e-5)


def test_sft_reference_learns_the_chosen_answers_and_becomes_the_reference(runtime, tmp_path):
    from peft import PeftModel

    base, tok = tiny_gemma()
    loader = make_preference_loader(records(), tok, batch_size=4, shuffle=False)
    before = answer_logprobs(base, loader, runtime)
    sft, history = sft_reference(base, records(), tok, peft_config(TARGETS, r=4, alpha=8, train_also=(),
                                                                   task_type="CAUSAL_LM"),
                                 runtime=runtime, epochs=3, lr=3e-2, batch_size=2, max_length=128, progress=False,
                                 save_adapter=tmp_path / "sft")
    after = answer_logprobs(sft, loader, runtime)
    assert len(history) == 3 and history[-1]["train_loss"] < history[0]["train_loss"]
    assert all(a > b for a, b in zip(after[0], before[0]))  # every chosen answer is now more likely
    assert sum(after[0]) > sum(before[0]) + 2  # (the tiny model is random, and learns slowly)
    assert not any("lora" in name for name, _ in sft.named_parameters())  # merged: a plain model again
    # the saved adapter, merged into a fresh copy of the pretrained model, gives the same model back
    again = PeftModel.from_pretrained(tiny_gemma()[0], tmp_path / "sft").merge_and_unload()
    assert answer_logprobs(again, loader, runtime)[0] == pytest.approx(after[0], abs=1e-4)
    # DPO's fresh adapter on it, switched off, is the SFT model: the reference DPO starts from
    model = lora(sft)
    add_reference_logprobs(model, loader, runtime)
    assert [p["ref_chosen"] for p in loader.dataset] == pytest.approx(after[0], abs=1e-5)
