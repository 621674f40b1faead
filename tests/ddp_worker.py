"""Train the tiny classifier, alone or as one of several torchrun processes.

    python tests/ddp_worker.py OUT BATCH_PER_PROCESS
    python -m torch.distributed.run --nproc_per_node 2 tests/ddp_worker.py OUT BATCH_PER_PROCESS

Rank 0 writes OUT.safetensors (final weights) and OUT.json (history). Used by test_distributed.py.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))

import torch  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

import tiny  # noqa: E402
from ftlib.data import make_loader, tokenize  # noqa: E402
from ftlib.distributed import cleanup, setup_distributed, unwrap, wrap  # noqa: E402
from ftlib.runtime import get_runtime, seed_everything  # noqa: E402
from ftlib.training import TrainConfig, fit  # noqa: E402

torch.set_num_threads(1)
out, batch_size = sys.argv[1], int(sys.argv[2])
runtime = get_runtime("smoke", seed=0)
seed_everything(0)  # dropout draws from the global generator: the same in every run
dist = setup_distributed(runtime)
tok = tiny.tokenizer()
train = make_loader(tokenize(tiny.dataset(128), tok, max_length=32), tok, batch_size=batch_size, shuffle=True,
                    seed=0, num_replicas=dist.world_size, rank=dist.rank)
evaluation = make_loader(tokenize(tiny.dataset(32, seed=1), tok, max_length=32), tok, batch_size=16, shuffle=False)
model = wrap(tiny.classifier(seed=0, dropout=0.0), runtime, dist)
history = fit(model, train, evaluation, runtime=runtime,
              config=TrainConfig(epochs=4, lr=2e-3, checkpoint_dir=out + "-ckpt", progress=False))
if dist.is_main:
    save_file({k: v.contiguous() for k, v in unwrap(model).state_dict().items()}, out + ".safetensors")
    with open(out + ".json", "w") as f:
        json.dump({"world_size": dist.world_size, "steps_per_epoch": len(train), "history": list(history)}, f)
cleanup()
