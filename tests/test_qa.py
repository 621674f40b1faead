"""ftlib.qa: prompts, masked labels, batched greedy answers, metrics, splits, adapters saved and re-loaded."""
import copy
import json

import pytest
import torch
from peft import PeftModel, get_peft_model

from ftlib import catalog
from ftlib.data import DataError
from ftlib.lora import peft_config
from ftlib.models import load_causal_lm
from ftlib.qa import (encode_qa, exact_match, format_prompt, generate_answers, load_qa, make_qa_loader,
                      normalize_answer, prompt_ids, qa_scores, qa_scores_by_language, split_qa, token_f1)
from ftlib.runtime import get_runtime

QUESTIONS = ["What is 7 times 8?", "Which planet is closest to the Sun?", "노르웨이의 수도는?"]


def tiny_llama(seed: int = 0):
    torch.manual_seed(seed)  # the smoke model is random: the same seed gives the same weights
    return load_causal_lm(catalog.TINY_LLAMA)


@pytest.fixture(scope="module")
def llama():
    return tiny_llama()


@pytest.fixture(scope="module")
def plain_tok(llama):
    tok = copy.deepcopy(llama[1])
    tok.chat_template = None  # a tokenizer without a chat template gets the 'Q: ...\nA:' format
    return tok


@pytest.fixture(scope="module")
def runtime():
    return get_runtime("smoke", device="cpu")


def test_prompt_uses_the_chat_template_when_there_is_one(llama, plain_tok):
    tok = llama[1]
    prompt = format_prompt(tok, "What is 7 times 8?")
    assert prompt == tok.apply_chat_template([{"role": "user", "content": "What is 7 times 8?"}],
                                             tokenize=False, add_generation_prompt=True)
    assert prompt.endswith("assistant\n")
    assert format_prompt(plain_tok, "  What is 7 times 8? ") == "Q: What is 7 times 8?\nA:"


@pytest.mark.parametrize("which", ["chat", "plain"])
def test_prompt_tokens_carry_label_minus_100_and_answer_tokens_do_not(llama, plain_tok, which):
    tok = llama[1] if which == "chat" else plain_tok
    ex = encode_qa(tok, "What is 7 times 8?", "56", max_length=128)
    prompt_len = len(tok(format_prompt(tok, "What is 7 times 8?"), add_special_tokens=which == "plain")["input_ids"])
    assert prompt_ids(tok, "What is 7 times 8?") == ex["input_ids"][:prompt_len]
    assert len(ex["input_ids"]) == len(ex["labels"]) == len(ex["attention_mask"])
    assert ex["labels"][:prompt_len] == [-100] * prompt_len
    answer = ex["labels"][prompt_len:]
    assert -100 not in answer and answer == ex["input_ids"][prompt_len:]
    assert answer[-1] == tok.eos_token_id  # the model also learns to stop
    assert tok.decode(answer, skip_special_tokens=True).strip() == "56"


def test_a_long_answer_is_cut_and_a_prompt_without_room_is_an_error(llama):
    tok = llama[1]
    ex = encode_qa(tok, "Why?", "because " * 50, max_length=48)
    assert len(ex["input_ids"]) == 48 and ex["labels"][-1] != -100
    with pytest.raises(ValueError, match="max_length"):
        encode_qa(tok, "Why?", "because", max_length=8)


def test_loader_pads_on_the_right_with_masked_labels(llama):
    tok = llama[1]
    records = [{"question": q, "answer": a} for q, a in zip(QUESTIONS, ["56", "Mercury", "오슬로"])]
    loader = make_qa_loader(records, tok, batch_size=3, shuffle=False, max_length=128)
    batch = next(iter(loader))
    assert set(batch) == {"input_ids", "attention_mask", "labels"}
    assert batch["input_ids"].shape == batch["labels"].shape == batch["attention_mask"].shape
    padding = batch["attention_mask"] == 0
    assert padding.any() and (batch["labels"][padding] == -100).all()
    counted = (batch["labels"] != -100).sum(1)  # answer tokens + end of turn, per example
    assert (counted >= 2).all() and (counted < batch["attention_mask"].sum(1) / 2).all()


def test_the_loss_is_the_mean_over_answer_tokens_only(llama):
    model, tok = llama
    records = [{"question": q, "answer": a} for q, a in zip(QUESTIONS, ["56", "Mercury", "오슬로"])]
    batch = next(iter(make_qa_loader(records, tok, batch_size=3, shuffle=False, max_length=128)))
    model.eval()
    with torch.no_grad():
        out = model(**batch)
    logits, labels = out.logits[:, :-1], batch["labels"][:, 1:]  # position t predicts token t+1
    keep = labels != -100
    manual = torch.nn.functional.cross_entropy(logits[keep], labels[keep])
    torch.testing.assert_close(out.loss, manual)


@pytest.mark.parametrize("source", ["TINY_LLAMA", "TINY_GEMMA"])
def test_answer_logits_only_gives_the_same_loss_and_gradients(source):
    torch.manual_seed(0)
    model, tok = load_causal_lm(getattr(catalog, source))
    records = [{"question": q, "answer": a} for q, a in zip(QUESTIONS, ["56", "Mercury is the closest", "오슬로"])]
    grads = {}
    for lean in (False, True):
        batch = next(iter(make_qa_loader(records, tok, batch_size=3, shuffle=False, max_length=128,
                                         answer_logits_only=lean)))
        model.zero_grad()
        out = model(**batch)
        out.loss.backward()
        grads[lean] = (out.loss.detach(), model.get_input_embeddings().weight.grad.clone(), out.logits.shape)
    answer_tokens = int((batch["labels"][:, 1:] != -100).sum())
    assert grads[True][2] == (answer_tokens, len(tok))  # one row of scores per answer token, nothing else
    assert grads[False][2][:2] == tuple(batch["input_ids"].shape)
    torch.testing.assert_close(grads[True][0], grads[False][0])
    torch.testing.assert_close(grads[True][1], grads[False][1])


def test_few_shot_prompt_puts_the_examples_first(llama, plain_tok):
    shots = [("What is 2 + 2?", "4"), ("Capital of Norway?", "Oslo")]
    assert format_prompt(plain_tok, " 7 times 8? ", shots) == (
        "Q: What is 2 + 2?\nA: 4\n\nQ: Capital of Norway?\nA: Oslo\n\nQ: 7 times 8?\nA:")
    chat = format_prompt(llama[1], "7 times 8?", shots)
    assert chat.index("2 + 2") < chat.index("Oslo") < chat.index("7 times 8?")
    assert chat.endswith(format_prompt(llama[1], "7 times 8?")[-30:])  # the same opening of the answer turn
    assert prompt_ids(plain_tok, "7 times 8?", shots)[-len(prompt_ids(plain_tok, "7 times 8?")) + 1:] == \
        prompt_ids(plain_tok, "7 times 8?")[1:]  # the question's own tokens come last (after one BOS at the start)


def test_first_line_keeps_the_answer_and_drops_the_next_question(llama, runtime, monkeypatch):
    model, tok = llama
    monkeypatch.setattr(tok, "batch_decode", lambda ids, **kw: [" 56\nQ: What is 8 times 9?\nA: 72"] * len(ids))
    assert generate_answers(model, tok, QUESTIONS[:1], runtime, max_new_tokens=2, first_line=True) == ["56"]
    assert generate_answers(model, tok, QUESTIONS[:1], runtime, max_new_tokens=2)[0].startswith("56\nQ:")


def test_scores_per_language_on_a_hand_made_example():
    records = [{"answer": "56", "lang": "en"}, {"answer": "Mercury", "lang": "en"},
               {"answer": "서울", "lang": "ko"}, {"answer": "5월 5일", "lang": "ko"}]
    preds = ["56", "Mars", "서울", "5월 6일"]
    scores = qa_scores_by_language(preds, records)
    assert scores["en"] == pytest.approx({"exact_match": 50.0, "token_f1": 50.0, "questions": 2})
    # Korean: one exact, one half right ('5월' shared: precision 1/2, recall 1/2, F1 0.5)
    assert scores["ko"] == pytest.approx({"exact_match": 50.0, "token_f1": 75.0, "questions": 2})
    assert scores["all"] == pytest.approx({"exact_match": 50.0, "token_f1": 62.5, "questions": 4})
    assert set(qa_scores_by_language(["56"], [{"answer": "56"}])) == {"all"}  # no 'lang': overall only
    with pytest.raises(ValueError, match="one prediction per record"):
        qa_scores_by_language(["56"], records)


def test_batched_left_padded_generation_matches_one_at_a_time(llama, runtime):
    model, tok = llama
    together = generate_answers(model, tok, QUESTIONS, runtime, max_new_tokens=6, batch_size=3)
    alone = [generate_answers(model, tok, [q], runtime, max_new_tokens=6)[0] for q in QUESTIONS]
    assert together == alone and len(together) == 3


def test_adapter_saved_and_reloaded_answers_the_same(runtime, tmp_path):
    base, tok = tiny_llama(seed=0)
    model = get_peft_model(base, peft_config(("q_proj", "v_proj"), r=4, alpha=8, train_also=(),
                                             task_type="CAUSAL_LM"))
    torch.manual_seed(1)
    for name, p in model.named_parameters():
        if "lora_B" in name:
            p.data.normal_(std=0.5)  # a non-zero update, so that the adapter changes the answers
    before = generate_answers(model, tok, QUESTIONS, runtime, max_new_tokens=8)
    plain = generate_answers(tiny_llama(seed=0)[0], tok, QUESTIONS, runtime, max_new_tokens=8)
    assert before != plain  # the adapter matters, so the comparison below can fail
    model.save_pretrained(tmp_path)
    fresh, _ = tiny_llama(seed=0)
    reloaded = PeftModel.from_pretrained(fresh, tmp_path)
    assert generate_answers(reloaded, tok, QUESTIONS, runtime, max_new_tokens=8) == before


def test_normalize_answer_handles_case_punctuation_articles_numbers_and_korean():
    assert normalize_answer("  The Mercury. ") == "mercury"
    assert normalize_answer("1,000 km!") == "1000 km"
    assert normalize_answer("3.5") == "3.5"
    assert normalize_answer("서울입니다.") == "서울입니다"
    assert normalize_answer("5월 5일") == "5월 5일"
    assert normalize_answer("「경사 하강법」") == "경사 하강법"


def test_exact_match_and_token_f1():
    assert exact_match("the Sun.", "Sun") == 1.0
    assert exact_match("Sun and Moon", "Sun") == 0.0
    assert token_f1("Sun and Moon", "Sun") == pytest.approx(0.5)  # precision 1/3, recall 1
    assert token_f1("validation set", "the validation set") == 1.0
    assert token_f1("경사 하강법", "확률적 경사 하강법") == pytest.approx(0.8)
    assert token_f1("", "56") == 0.0 and token_f1("", "") == 1.0
    assert qa_scores(["56", "Mars", "Sun and Moon"], ["56", "Mercury", "Sun"]) == pytest.approx(
        {"exact_match": 100 / 3, "token_f1": 100 * 1.5 / 3})
    with pytest.raises(ValueError, match="as many"):
        qa_scores(["56"], ["56", "7"])


def test_split_never_trains_on_test_questions():
    records = [{"id": f"{lang}-{cat}-{i}", "lang": lang, "category": cat, "split": "test" if i % 5 == 0 else "train",
                "question": f"{lang} {cat} question {i}?", "answer": str(i)}
               for lang in ("en", "ko") for cat in ("a", "b") for i in range(20)]
    records.append({**records[0], "id": "dup", "split": "train", "question": records[0]["question"].upper()})
    train, val, test = split_qa(records, val_fraction=0.25, seed=0)
    test_questions = {normalize_answer(r["question"]) for r in test}
    assert not test_questions & {normalize_answer(r["question"]) for r in train + val}
    assert len(test) == 16 and len(train) + len(val) == 64  # the duplicate of a test question is dropped
    assert {(r["lang"], r["category"]) for r in val} == {(l, c) for l in ("en", "ko") for c in ("a", "b")}
    assert not {r["id"] for r in train} & {r["id"] for r in val}
    assert split_qa(records, val_fraction=0.25, seed=0) == (train, val, test)
    with pytest.raises(ValueError, match="split"):
        split_qa([{"question": "q", "answer": "a"}])


def test_load_qa_reads_jsonl_and_names_a_missing_field(tmp_path):
    good = tmp_path / "qa.jsonl"
    good.write_text("\n".join(json.dumps({"question": q, "answer": "x"}) for q in QUESTIONS))
    assert [r["question"] for r in load_qa(good)] == QUESTIONS
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"question": "q", "reply": "a"}))
    with pytest.raises(DataError, match="'answer'"):
        load_qa(bad)
