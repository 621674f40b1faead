"""The real offline weights, end to end: what the lite profile loads on a learner's laptop.

The first run on a machine de-quantizes SmolLM2 (about 20 s) into ~/.cache/ftlib (or
$FTLIB_CACHE); later runs load the cached safetensors in about 2 s.
"""
import json

import pytest
import torch

from ftlib import catalog, models


@pytest.fixture(scope="module")
def smollm2():
    return models.load_causal_lm(catalog.SMOLLM2_GGUF)


def test_smollm2_from_the_gguf_package_is_the_real_instruct_model(smollm2):
    model, tokenizer = smollm2
    assert type(model).__name__ == "LlamaForCausalLM"
    assert models.count_parameters(model) == (134_515_008, 134_515_008)
    assert tokenizer.chat_template and tokenizer.pad_token is not None
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}],
                                           add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        out = model.generate(**prompt, max_new_tokens=12, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    answer = tokenizer.decode(out[0, prompt["input_ids"].shape[1]:], skip_special_tokens=True)
    assert "Paris" in answer, answer  # pretrained knowledge survived de-quantization and caching


def test_the_cache_is_safetensors_with_a_verified_manifest(smollm2):
    folder = models._gguf_cache(catalog.SMOLLM2_GGUF)
    manifest = json.loads((folder / "ftlib-manifest.json").read_text())
    assert manifest["model.safetensors"] == models.sha256_file(folder / "model.safetensors")
    config = json.loads((folder / "config.json").read_text())
    assert "quantization_config" not in config


def test_minilm_sentence_vectors_are_pretrained():
    # A random encoder would not put paraphrases closer than unrelated sentences.
    from transformers import AutoModel, AutoTokenizer

    where = models.resolve(catalog.MINILM)
    model, tok = AutoModel.from_pretrained(where).eval(), AutoTokenizer.from_pretrained(where)
    enc = tok(["The battery died after a day.", "The battery ran out within a day.", "We booked a table for six."],
              padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**enc).last_hidden_state
    mask = enc["attention_mask"].unsqueeze(-1)
    vec = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)
    assert vec[0] @ vec[1] > vec[0] @ vec[2] + 0.3
