"""Lesson 00's checks: a right answer passes, and each common slip gets its own hint."""
import copy
import itertools

import pytest

import tiny
from ftlib.exercises import Hint, check
from ftlib.exercises import lesson00
from ftlib.optim import make_optimizer
from ftlib.runtime import get_runtime, move_to, seed_everything

LR = 1e-3


def hint_of(fn, *args, **kwargs):
    with pytest.raises(Hint) as info:
        fn(*args, **kwargs)
    return str(info.value)


@pytest.fixture(scope="module")
def setting():
    train_loader, _ = tiny.loaders(tiny.tokenizer(), n_train=32, batch_size=8)
    return tiny.classifier(), list(itertools.islice(train_loader, 4)), get_runtime("smoke", device="cpu")


def learner_epoch(start, batches, *, zero_grad=True, backward=True, step=True, record="each"):
    """The exercise as a learner writes it, with the slips the tests need."""
    my_model = copy.deepcopy(start).train()
    optimizer = make_optimizer(my_model, lr=LR)
    seed_everything(0)
    my_losses, total = [], 0.0
    for batch in batches:
        batch = move_to(batch, "cpu")
        if zero_grad:
            optimizer.zero_grad()
        loss = my_model(**batch).loss
        if backward:
            loss.backward()
        if step:
            optimizer.step()
        if record == "each":
            my_losses.append(loss.item())
        elif record == "running mean":  # the mean so far, as a progress bar shows it
            total += loss.item()
            my_losses.append(total / (len(my_losses) + 1))
    if record == "once":
        my_losses.append(loss.item())
    return my_losses, my_model


def test_training_epoch_right_answer_passes(setting):
    start, batches, runtime = setting
    my_losses, my_model = learner_epoch(start, batches)
    lesson00.check_training_epoch(my_losses, my_model, start, batches, runtime, LR, 0)


def test_training_epoch_matches_train_step(setting):
    start, batches, runtime = setting
    losses, model = lesson00.reference_epoch(start, batches, runtime, lr=LR, seed=0)
    assert len(losses) == len(batches) and losses[-1] < losses[0] + 1.0
    assert lesson00._distance(model, start) > 0


def test_training_epoch_hints_name_the_slip(setting):
    start, batches, runtime = setting
    check_epoch = lesson00.check_training_epoch
    assert "clears them" in hint_of(check_epoch, *learner_epoch(start, batches, zero_grad=False), start, batches,
                                    runtime, LR, 0)
    assert "did not change" in hint_of(check_epoch, *learner_epoch(start, batches, step=False), start, batches,
                                       runtime, LR, 0)
    assert "did not change" in hint_of(check_epoch, *learner_epoch(start, batches, backward=False), start, batches,
                                       runtime, LR, 0)
    assert "4 batches" in hint_of(check_epoch, *learner_epoch(start, batches, record="once"), start, batches,
                                  runtime, LR, 0)
    assert "before the step" in hint_of(check_epoch, *learner_epoch(start, batches, record="running mean"), start,
                                        batches, runtime, LR, 0)
    losses, model = learner_epoch(start, batches)
    assert "should be a list" in hint_of(check_epoch, sum(losses), model, start, batches, runtime, LR, 0)
    assert "as a number" in hint_of(check_epoch, ["0.7"] * 4, model, start, batches, runtime, LR, 0)
    other_lr = hint_of(check_epoch, *_with_lr(start, batches, 10 * LR), start, batches, runtime, LR, 0)
    assert "order of train_step" in other_lr


def _with_lr(start, batches, lr):
    global LR
    saved, LR = LR, lr
    try:
        return learner_epoch(start, batches)
    finally:
        LR = saved


def test_training_epoch_unanswered_says_so(setting, capsys):
    start, batches, runtime = setting
    check(lesson00.check_training_epoch, ..., start, start, batches, runtime, LR, 0)
    assert "Not answered yet" in capsys.readouterr().out


def test_training_epoch_hints_never_give_the_answer(setting):
    start, batches, runtime = setting
    for slip in ({"zero_grad": False}, {"step": False}, {"record": "running mean"}):
        hint = hint_of(lesson00.check_training_epoch, *learner_epoch(start, batches, **slip), start, batches,
                       runtime, LR, 0)
        assert "zero_grad()" not in hint and "backward()" not in hint and ".step()" not in hint
