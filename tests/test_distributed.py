"""Several processes (torchrun, gloo on CPU) take the same steps as one process with the same global batch."""
import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from ftlib.data import LengthGroupedBatchSampler

WORKER = Path(__file__).with_name("ddp_worker.py")


def test_ranks_split_each_global_batch_and_drop_an_incomplete_one():
    lengths = list(range(3, 3 + 21))
    single = LengthGroupedBatchSampler(lengths, 8, seed=1).batches()
    ranks = [LengthGroupedBatchSampler(lengths, 4, seed=1, num_replicas=2, rank=r).batches() for r in (0, 1)]
    full = [b for b in single if len(b) == 8]
    assert len(ranks[0]) == len(ranks[1]) == len(full) == 2
    for r in (0, 1):  # __len__ counts without building the batches, and agrees
        assert len(LengthGroupedBatchSampler(lengths, 4, seed=1, num_replicas=2, rank=r)) == 2
    for glob, b0, b1 in zip(full, *ranks):
        assert b0 + b1 == glob
    with pytest.raises(ValueError, match="rank"):
        LengthGroupedBatchSampler(lengths, 4, num_replicas=2, rank=2)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_match_one_process_at_the_same_global_batch(tmp_path):
    one = subprocess.run([sys.executable, str(WORKER), str(tmp_path / "one"), "8"], capture_output=True, text=True)
    assert one.returncode == 0, one.stderr
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                          "--master_addr", "127.0.0.1", "--master_port", str(_free_port()),
                          str(WORKER), str(tmp_path / "two"), "4"], capture_output=True, text=True, timeout=300)
    assert two.returncode == 0, two.stderr[-3000:]
    a, b = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("one", "two"))
    assert (a["world_size"], b["world_size"]) == (1, 2)
    assert a["steps_per_epoch"] == b["steps_per_epoch"] == 16
    for ra, rb in zip(a["history"], b["history"], strict=True):
        assert ra["train_loss"] == pytest.approx(rb["train_loss"], rel=1e-4)
        assert ra["eval_loss"] == pytest.approx(rb["eval_loss"], rel=1e-4)
    assert a["history"][-1]["eval_accuracy"] >= 0.9 > a["history"][0]["eval_accuracy"]  # it did learn
    wa, wb = load_file(tmp_path / "one.safetensors"), load_file(tmp_path / "two.safetensors")
    for name in wa:
        torch.testing.assert_close(wa[name], wb[name], rtol=1e-4, atol=5e-5)  # 64 Adam steps of rounding
    assert (tmp_path / "two-ckpt" / "latest").exists()  # rank 0 wrote the checkpoint
