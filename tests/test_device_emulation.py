"""Device mistakes caught without a GPU: the emulated T4 (tests/emulated_gpu.py) and the helpers' contract.

The contract, from lesson 00 on: a helper that takes a model and a runtime runs the model on
``runtime.device`` and moves every tensor it builds to the model's device. Each helper below
gets a model that is still on the CPU and a runtime that says "cuda": on Colab that is the
state right after loading a model, and it is how lessons 00, 04 and 07 crashed on a GPU.
"""
import pytest
import torch

import emulated_gpu
import tiny
from ftlib.evaluation import evaluate, predict, predict_proba
from ftlib.freezing import changed_weights, weights_snapshot
from ftlib.runtime import get_runtime, model_device


# On a machine with a real GPU, the real thing is tested instead (../shared/gpu runs the suite there).
pytestmark = pytest.mark.skipif(torch.cuda.is_available(), reason="a real GPU is present")


@pytest.fixture
def gpu():
    with emulated_gpu.emulate_gpu():
        yield get_runtime("smoke", seed=0)


@pytest.fixture(scope="module")
def tok():
    return tiny.tokenizer()


def test_the_emulation_reports_a_t4_and_catches_the_mistake_of_lesson_00(gpu, tok):
    assert (gpu.device, gpu.precision) == ("cuda", "fp16") and gpu.grad_scaler() is not None
    model = tiny.classifier()  # on the CPU, as loaded
    inputs = tok(["the film was good"], return_tensors="pt").to(gpu.device)
    assert inputs["input_ids"].device.type == "cuda"
    with pytest.raises(RuntimeError, match="same device"):
        model(**inputs)  # exactly the error Colab showed: a CPU model given CUDA inputs
    with pytest.raises(TypeError, match="numpy"):
        inputs["input_ids"].numpy()
    assert inputs["input_ids"].cpu().device.type == "cpu" and inputs["input_ids"][0, 0].item() == 101
    model.to(gpu.device)
    assert model_device(model).type == "cuda"
    assert model(**inputs).logits.device.type == "cuda"  # model and inputs together: fine


def test_cuda_allows_what_the_emulation_allows(gpu):
    x = torch.ones(3, device="cuda")
    assert (x + torch.tensor(2.0)).device.type == "cuda"  # a 0-dim CPU tensor is a number
    assert x[torch.tensor([0, 2])].tolist() == [1.0, 1.0]  # CPU indices
    x.copy_(torch.zeros(3))  # a copy across devices
    assert x.sum().item() == 0.0


def test_predict_and_evaluate_move_a_cpu_model_to_the_runtime_device(gpu, tok):
    # Lesson 00's crash: predict() before fit(), with the model still on the CPU.
    model = tiny.classifier()
    labels, probs = predict(model, tok, ["the film was good", "awful food"], gpu)
    assert len(labels) == len(probs) == 2 and model_device(model).type == "cuda"
    # Lesson 07's crash: predict_proba and evaluate on a freshly loaded model.
    _, loader = tiny.loaders(tok, n_train=8, n_eval=8)
    for fresh in (tiny.classifier(), tiny.classifier()):
        assert evaluate(fresh, loader, gpu)["accuracy"] >= 0.0
    p, y = predict_proba(tiny.classifier(), loader, gpu)
    assert p.device.type == y.device.type == "cpu" and p.shape == (8, 2)


def test_the_lr_finder_leaves_the_weights_as_they_were_compared_on_the_cpu(gpu, tok):
    # Lesson 04's crash: CPU copies compared with the model the finder had moved to the GPU.
    from ftlib.lr_finder import find_lr

    train, _ = tiny.loaders(tok, n_train=16)
    model = tiny.classifier()
    before = weights_snapshot(model)
    find_lr(model, train, gpu, num_steps=4)
    assert model_device(model).type == "cuda" and changed_weights(model, before) == []


def test_fit_on_the_emulated_gpu_trains_what_it_should(gpu, tok):
    from ftlib.freezing import freeze_all_but_head
    from ftlib.training import TrainConfig, fit

    train, evaluation = tiny.loaders(tok, n_train=32)
    model = tiny.classifier()
    freeze_all_but_head(model)
    before = weights_snapshot(model)
    history = fit(model, train, evaluation, runtime=gpu, config=TrainConfig(epochs=2, lr=1e-2, progress=False))
    assert len(history) == 2 and changed_weights(model, before) == ["classifier.bias", "classifier.weight"]


def test_answers_and_features_on_the_emulated_gpu(gpu):
    from ftlib.catalog import TINY_LLAMA
    from ftlib.models import load_causal_lm
    from ftlib.qa import generate_answers
    from ftlib.selection import extract_features

    model, tokenizer = load_causal_lm(TINY_LLAMA)
    answers = generate_answers(model, tokenizer, ["What is 2 + 2?", "한국의 수도는?"], gpu, max_new_tokens=3)
    assert len(answers) == 2
    model.to("cpu")
    features = extract_features(model, tokenizer, ["a short text", "another one"], gpu)
    assert features.shape[0] == 2 and features.device.type == "cpu"


def test_a_skipped_fp16_step_is_not_an_error_and_holds_the_schedule(tok):
    # fp16 on a T4: the GradScaler skips a step whose gradients overflowed; that is normal, and the
    # schedule must not advance for a step that was not taken.
    from ftlib.optim import make_optimizer, make_scheduler
    from ftlib.training import train_step

    runtime = get_runtime("smoke", seed=0)
    model = tiny.classifier(dropout=0.0)
    optimizer = make_optimizer(model, lr=1e-3)
    scheduler = make_scheduler(optimizer, total_steps=10, warmup_ratio=0.0)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**16)
    train, _ = tiny.loaders(tok, n_train=8)
    batch = next(iter(train))
    huge = model.classifier.weight.register_hook(lambda g: g * float("inf"))  # an overflow, as fp16 can have
    before = weights_snapshot(model)
    loss = train_step(model, [(batch, 1.0)], optimizer, scheduler, runtime, scaler=scaler)
    huge.remove()
    assert loss > 0 and changed_weights(model, before) == [] and scaler.get_scale() == 2.0**15
    assert scheduler.last_epoch == 0  # no step taken, no schedule step
    train_step(model, [(batch, 1.0)], optimizer, scheduler, runtime, scaler=scaler)
    assert changed_weights(model, before) and scheduler.last_epoch == 1


@pytest.mark.parametrize("method", ["lora", "adapter"])
def test_lora_and_adapters_added_to_a_model_already_on_the_gpu(gpu, tok, method):
    from ftlib.adapters import add_adapters
    from ftlib.lora import add_lora, merge_lora

    model = tiny.classifier().to(gpu.device).eval()
    add_lora(model, r=4) if method == "lora" else add_adapters(model, bottleneck=8)
    assert {p.device.type for p in model.parameters()} == {"cuda"}
    inputs = tok(["the film was good"], return_tensors="pt").to(gpu.device)
    before = model(**inputs).logits
    if method == "lora":
        merge_lora(model)
        torch.testing.assert_close(model(**inputs).logits.cpu(), before.cpu())
