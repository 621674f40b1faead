"""Issue 19 probes: which reference DPO should start from, measured on VALIDATION pairs.

    FTLIB_PROFILE=lite python bench/dpo_reference_probe.py VARIANT[,VARIANT...] [--split-seed N]

The training pairs of data/preferences.jsonl are split as lesson 09 splits data/qa.jsonl
(`split_qa`: validation drawn per language x category, seed N); the test pairs are not read.
Each variant prints one JSON line (and appends it to bench/dpo_reference_probe.jsonl):
preference accuracy on the validation pairs by the reference's own log-probability ("ref"), by
the implicit reward ("implicit") and by the policy's own log-probability ("policy_own"), per
kind of rejected answer, then greedy answers to the validation questions (tokens, exact match).

Variants, with options after colons (beta=, lr=, ep=, sftw=, sftep=):
    dpo       DPO with a fresh LoRA on the pretrained model (the reference: the adapter off)
    sftdpo    SFT of a LoRA on the chosen answers (lesson 09's loss), merged into the weights; then
              DPO with a fresh LoRA on that model (the reference: the SFT model). This is the DPO
              paper's recipe when no SFT model exists (Rafailov et al. 2023, section 4).
    sftonly   the SFT model alone (its answers; the implicit reward is 0)
e.g. `dpo,sftdpo,sftdpo:sftw=1` (sftw: weight of the chosen answers' NLL added to the DPO loss).
"""
import argparse
import copy
import json
import sys
import time
from pathlib import Path
from statistics import mean

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from peft import get_peft_model  # noqa: E402

import ftlib  # noqa: E402
from ftlib.catalog import data_path  # noqa: E402
from ftlib.lora import peft_config  # noqa: E402
from ftlib.models import load_causal_lm  # noqa: E402
from ftlib.preference import (add_reference_logprobs, fit_dpo, load_preferences, make_preference_loader,  # noqa: E402
                              preference_scores)
from ftlib.qa import generate_answers, make_qa_loader, qa_scores, split_qa  # noqa: E402
from ftlib.runtime import seed_everything  # noqa: E402
from ftlib.training import TrainConfig, fit  # noqa: E402

RESULTS = Path(__file__).with_suffix(".jsonl")

parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
parser.add_argument("variants")
parser.add_argument("--split-seed", type=int, default=0)
args = parser.parse_args()

runtime, profile = ftlib.setup(seed=0)
pairs = load_preferences(data_path("preferences.jsonl"))
for p in pairs:
    p["question"], p["answer"] = p["prompt"], p["chosen"]  # split_qa and make_qa_loader read these
train, val, _ = split_qa(pairs, seed=args.split_seed)
seed_everything(0)
base, tokenizer = load_causal_lm(profile.causal_lm)


def pair_loader(rows, shuffle, batch_size):
    return make_preference_loader(rows, tokenizer, batch_size=batch_size, shuffle=shuffle, seed=0,
                                  max_length=profile.qa_max_length, max_answer_tokens=profile.pref_max_answer_tokens)


def with_lora(model):
    seed_everything(0)
    config = peft_config(profile.qa_lora_targets, r=8, alpha=16, train_also=(), task_type="CAUSAL_LM")
    return get_peft_model(model, config).to(runtime.device)


def sft(model, epochs):
    model = with_lora(model)
    loader = make_qa_loader(train, tokenizer, batch_size=profile.qa_batch_size, shuffle=True, seed=0,
                            max_length=profile.qa_max_length, answer_logits_only=True)
    fit(model, loader, runtime=runtime, config=TrainConfig(epochs=epochs, lr=profile.qa_lr))
    return model.merge_and_unload()


def report(variant, model, beta, started):
    loader = pair_loader(val, False, 16)
    add_reference_logprobs(model, loader, runtime)
    s = preference_scores(model, loader, runtime, beta=beta)
    row = {"variant": variant, "split_seed": args.split_seed, "train_pairs": len(train), "val_pairs": len(val)}
    for kind in ("all", "wrong", "rambling"):
        idx = [i for i, p in enumerate(val) if kind == "all" or p["rejected_kind"] == kind]
        own = lambda side, i: s[f"{side}_reward"][i] / beta + s[f"ref_{side}"][i]  # noqa: E731 (policy log-prob)
        row[kind] = {"pairs": len(idx),
                     "ref": round(100 * mean(s["ref_chosen"][i] > s["ref_rejected"][i] for i in idx), 1),
                     "implicit": round(100 * mean(s["chosen_reward"][i] > s["rejected_reward"][i] for i in idx), 1),
                     "policy_own": round(100 * mean(own("chosen", i) > own("rejected", i) for i in idx), 1)}
    answers = generate_answers(model, tokenizer, [p["prompt"] for p in val], runtime,
                               max_new_tokens=profile.qa_max_new_tokens, batch_size=16)
    row["tokens"] = round(mean(len(tokenizer(a, add_special_tokens=False)["input_ids"]) for a in answers), 1)
    row["exact_match"] = round(qa_scores(answers, [p["chosen"] for p in val])["exact_match"], 1)
    row["seconds"] = round(time.perf_counter() - started)
    print(json.dumps(row), flush=True)
    with RESULTS.open("a") as f:
        f.write(json.dumps(row) + "\n")


for variant in args.variants.split(","):
    started = time.perf_counter()
    name, *options = variant.split(":")
    opt = dict(o.split("=") for o in options)
    beta, lr, epochs = float(opt.get("beta", profile.pref_beta)), float(opt.get("lr", profile.pref_lr)), \
        int(opt.get("ep", profile.pref_epochs))
    if name not in ("dpo", "sftdpo", "sftonly"):
        raise SystemExit(f"unknown variant {name!r}: dpo, sftdpo or sftonly")
    model = copy.deepcopy(base)
    if name in ("sftdpo", "sftonly"):
        model = sft(model, int(opt.get("sftep", 2)))
    model = with_lora(model)  # a fresh adapter: switched off, it is the reference
    if name != "sftonly":
        loader = pair_loader(train, True, profile.pref_batch_size)
        add_reference_logprobs(model, loader, runtime)
        fit_dpo(model, loader, runtime=runtime, beta=beta, epochs=epochs, lr=lr, sft_weight=float(opt.get("sftw", 0)))
    report(variant, model, beta, started)
