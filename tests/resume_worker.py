"""Train the tiny classifier with checkpoints; optionally SIGKILL this process mid-epoch.

    python tests/resume_worker.py CHECKPOINT_DIR RESULT_FILE KILL_AT_BATCH [ACCUM] [--resume] [--lora]

Used by test_training.py (and, with --lora, test_checkpoints_lean.py): a run killed at a
micro-batch that is not a checkpoint boundary, then resumed, must end with exactly the
weights of a run never interrupted. With --lora the checkpoints hold only the LoRA
matrices and the head, so resuming also rebuilds the frozen model from scratch.
"""
import json
import os
import signal
import sys

sys.path.insert(0, os.path.dirname(__file__))

import torch  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

import tiny  # noqa: E402
from ftlib.runtime import get_runtime, seed_everything  # noqa: E402
from ftlib.training import TrainConfig, fit  # noqa: E402

torch.set_num_threads(1)
ckpt_dir, result, kill_at = sys.argv[1], sys.argv[2], int(sys.argv[3])
accum = int(sys.argv[4]) if len(sys.argv) > 4 and sys.argv[4].isdigit() else 1
resume = "--resume" in sys.argv

runtime = get_runtime("smoke", seed=0)
seed_everything(0)  # dropout draws from the global generator: the same in every run
tok = tiny.tokenizer()
train, evaluation = tiny.loaders(tok)
collate, calls = train.collate_fn, [0]


def collate_then_maybe_die(features):
    calls[0] += 1
    if calls[0] == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)  # no clean-up, no finally: like a lost Colab VM
    return collate(features)


train = torch.utils.data.DataLoader(train.dataset, batch_sampler=train.batch_sampler,
                                    collate_fn=collate_then_maybe_die, generator=train.generator)
model = tiny.classifier(seed=0)
if "--lora" in sys.argv:
    from ftlib.lora import add_lora

    add_lora(model, r=4, alpha=8)
config = TrainConfig(epochs=3, lr=1e-3, grad_accum_steps=accum, checkpoint_dir=ckpt_dir, save_every=3,
                     resume=resume, progress=False)
history = fit(model, train, evaluation, runtime=runtime, config=config)
save_file({k: v.contiguous() for k, v in model.state_dict().items()}, result)
with open(result + ".json", "w") as f:
    json.dump(list(history), f)
