"""ftlib.compare: one row per method, measured on the same budget, and the files the command line reads."""
import pytest

import tiny
from ftlib import catalog, compare, methods
from ftlib.data import load_table, prepare_classification
from ftlib.methods import apply_method
from ftlib.freezing import count_parameters
from ftlib.models import load_text_classifier
from ftlib.runtime import get_runtime

METHODS = ["head", "lora", "adapter", "freeze:1", "full"]


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A tiny BERT (2 blocks x 32) saved as a local 'hub' folder, with the lite encoder's tokenizer."""
    folder = tmp_path_factory.mktemp("tiny-bert")
    tiny.classifier(seed=0).save_pretrained(folder)
    tiny.tokenizer().save_pretrained(folder)
    return catalog.ModelSource(name="tiny BERT", kind="hub", repo=str(folder))


@pytest.fixture(scope="module")
def setting(source):
    runtime = get_runtime("smoke", device="cpu")
    profile = catalog.get_profile("smoke").with_overrides(batch_size=8, max_length=32, compare_epochs=2)
    data = {"train_ds": tiny.dataset(24, seed=0), "val_ds": tiny.dataset(16, seed=1), "test_ds": tiny.dataset(16, seed=2)}
    return dict(source=source, labels=["negative", "positive"], runtime=runtime, profile=profile, **data)


@pytest.fixture(scope="module")
def rows(setting, tmp_path_factory):
    return compare.compare_methods(METHODS, **setting, save_dir=tmp_path_factory.mktemp("saved"), verbose=False)


def test_one_row_per_method_in_order_with_every_measure(rows):
    assert [r["method"] for r in rows] == METHODS
    for r in rows:
        assert 0 <= r["accuracy"] <= 1 and 0 <= r["f1_macro"] <= 1 and r["loss"] > 0
        assert r["train_seconds"] > 0 and r["epochs"] == 2 and r["best_epoch"] in (1, 2)
        assert isinstance(r["peak_memory_bytes"], int) and r["peak_memory_bytes"] >= 0
        assert r["checkpoint_bytes"] > 0 and r["percent"] == pytest.approx(100 * r["trainable"] / r["total"])


def test_counts_are_those_of_the_method_applied(rows, source):
    for r in rows:
        model, _ = load_text_classifier(source, ["negative", "positive"])
        apply_method(model, r["method"], adapter_size=64, lora_r=8, lora_alpha=16)
        assert (r["trainable"], r["total"]) == count_parameters(model), r["method"]
    by = {r["method"]: r for r in rows}
    assert by["head"]["trainable"] < by["lora"]["trainable"] < by["full"]["trainable"] == by["full"]["total"]


def test_each_method_gets_its_learning_rate_from_the_profile(rows, setting):
    profile = setting["profile"]
    expected = {"head": profile.head_lr, "lora": profile.peft_lr, "adapter": profile.peft_lr,
                "freeze:1": profile.lr, "full": profile.lr}
    assert {r["method"]: r["lr"] for r in rows} == expected
    assert methods.method_lr(profile, "freeze:3") == profile.lr


def test_checkpoints_hold_only_what_trained_for_adapter_and_lora(rows, tmp_path_factory):
    by = {r["method"]: r for r in rows}
    assert by["lora"]["checkpoint_bytes"] < by["adapter"]["checkpoint_bytes"] < by["full"]["checkpoint_bytes"]
    assert by["lora"]["checkpoint_bytes"] >= 4 * by["lora"]["trainable"]  # fp32 weights plus a small header
    assert by["lora"]["checkpoint_bytes"] < 4 * by["lora"]["trainable"] + 20_000


def test_same_seed_same_results(rows, setting):
    again = compare.compare_methods(["lora"], **setting, verbose=False)[0]
    first = next(r for r in rows if r["method"] == "lora")
    assert again["accuracy"] == first["accuracy"] and again["loss"] == pytest.approx(first["loss"], abs=1e-6)


def test_lr_override_and_bad_arguments(setting):
    row = compare.compare_methods(["head"], **setting, lrs={"head": 0.5}, epochs=1, verbose=False)[0]
    assert row["lr"] == 0.5 and row["epochs"] == 1
    with pytest.raises(ValueError, match="methods is empty"):
        compare.compare_methods([], **setting)
    with pytest.raises(ValueError, match="invalid method 'prefix'"):
        compare.compare_methods(["prefix"], **setting)
    with pytest.raises(ValueError, match=r"not compared: \['full'\]"):
        compare.compare_methods(["head"], **setting, lrs={"full": 1e-5})


def test_format_table_lists_every_method_and_marks_missing_values(rows):
    text = compare.format_table(rows + [dict(rows[0], method="cli", peak_memory_bytes=None, lr=None)])
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["method", "lr", "test"] and set(lines[1]) == {"-"}
    assert [line.split()[0] for line in lines[2:]] == METHODS + ["cli"]
    assert lines[-1].split().count("-") == 2 and lines[-1].split()[1] == "-"  # lr and peak memory
    assert f"{rows[-1]['trainable']:,}" in lines[-2]


def test_export_splits_writes_files_the_command_line_reads(tmp_path):
    ds, labels = prepare_classification(tiny.dataset(6), "text", "label", labels=["0", "1"])
    names = ["neg", "pos"]
    paths = compare.export_splits(tmp_path / "d", names, train=ds, eval=ds.select(range(3)))
    assert sorted(paths) == ["eval", "train"] and paths["train"].name == "train.csv"
    back = load_table(paths["train"])
    assert back["text"] == ds["text"] and back["label"] == [names[y] for y in ds["label"]]
    assert len(load_table(paths["eval"])) == 3


def test_row_from_cli_matches_the_table_keys(rows):
    metrics = {"method": "lora", "test": {"accuracy": 0.75, "f1_macro": 0.7, "loss": 0.5}, "trainable_params": 10,
               "total_params": 1000, "train_seconds": 3.0, "saved_bytes": 99, "best_epoch": 2, "epochs_run": 2}
    row = compare.row_from_cli(metrics)
    assert set(row) == set(rows[0])
    assert row["accuracy"] == 0.75 and row["percent"] == 1.0 and row["checkpoint_bytes"] == 99
    assert row["peak_memory_bytes"] is None
    with pytest.raises(ValueError, match="--test"):
        compare.row_from_cli({k: v for k, v in metrics.items() if k != "test"})


def test_plot_comparison_draws_four_labelled_panels(rows):
    import matplotlib
    matplotlib.use("Agg")
    from ftlib.plots import OKABE_ITO, plot_comparison

    fig = plot_comparison(rows + [dict(rows[0], method="cli", peak_memory_bytes=None)], title="t")
    acc, *bars = fig.axes
    assert acc.get_xscale() == "log" and acc.get_ylabel() == "test accuracy"
    assert [t.get_text() for t in acc.get_legend().get_texts()] == METHODS + ["cli"]
    assert all(ax.get_title() and ax.get_ylabel() for ax in fig.axes)
    assert bars[2].get_yscale() == "log"
    heights = [p.get_height() for p in bars[1].patches]
    assert heights[-1] == 0 and heights[0] == pytest.approx(rows[0]["peak_memory_bytes"] / 1e6)
    assert matplotlib.colors.to_hex(bars[0].patches[0].get_facecolor()).lower() == OKABE_ITO[0].lower()
    matplotlib.pyplot.close(fig)


def test_several_seeds_give_means_sds_and_the_single_runs(setting, rows, tmp_path):
    rows3 = compare.compare_methods(["head", "lora"], **setting, seeds=[0, 1, 2], save_dir=tmp_path, verbose=False)
    assert [r["method"] for r in rows3] == ["head", "lora"]
    for r in rows3:
        accs = [run["accuracy"] for run in r["runs"]]
        assert r["seeds"] == [run["seed"] for run in r["runs"]] == [0, 1, 2]
        assert r["accuracy"] == pytest.approx(sum(accs) / 3)
        mean = sum(accs) / 3
        assert r["accuracy_sd"] == pytest.approx((sum((a - mean) ** 2 for a in accs) / 2) ** 0.5)
        assert r["f1_macro_sd"] >= 0 and r["loss_sd"] >= 0 and r["method"] in ("head", "lora")
        assert (tmp_path / "seed2" / r["method"]).is_dir()
    # seed 0 of several seeds is the same run as a single run with seed 0
    single = next(r for r in rows if r["method"] == "lora")
    assert rows3[1]["runs"][0]["accuracy"] == single["accuracy"]
    assert rows3[1]["runs"][0]["loss"] == pytest.approx(single["loss"], abs=1e-6)
    table = compare.format_table(rows3)
    assert "mean ± sd, 3 seeds" in table and f"{rows3[0]['accuracy']:.3f} ± {rows3[0]['accuracy_sd']:.3f}" in table
    sd = compare.pooled_sd(rows3)
    assert min(r["accuracy_sd"] for r in rows3) <= sd <= max(r["accuracy_sd"] for r in rows3)
    with pytest.raises(ValueError, match="several seeds"):
        compare.pooled_sd(rows)
    with pytest.raises(ValueError, match="distinct"):
        compare.compare_methods(["head"], **setting, seeds=[1, 1])


def test_mean_over_seeds_keeps_text_and_averages_numbers():
    runs = [{"method": "m", "lr": 0.1, "accuracy": a, "f1_macro": a, "loss": 1 - a, "seed": s, "x": None}
            for s, a in enumerate([0.5, 0.7, 0.9])]
    row = compare.mean_over_seeds(runs)
    assert row["method"] == "m" and row["lr"] == 0.1 and row["x"] is None
    assert row["accuracy"] == pytest.approx(0.7) and row["accuracy_sd"] == pytest.approx(0.2)
    assert row["seeds"] == [0, 1, 2] and "seed" not in row and len(row["runs"]) == 3
    assert compare.mean_over_seeds(runs[:1])["accuracy_sd"] == 0.0
    with pytest.raises(ValueError, match="one method"):
        compare.mean_over_seeds(runs + [dict(runs[0], method="other")])


def test_spread_and_gap_notes_are_computed_from_the_numbers():
    note = compare.spread_note(0.02, 3)
    assert "σ = 0.020" in note and "√2·σ = 0.028" in note and "0.057" in note  # 2·√2·0.02
    assert "σ·√(2/3) = 0.016" in note and "0.033" in note
    assert "means of" not in compare.spread_note(0.02)
    small = compare.gap_note("a", 0.80, "b", 0.79, 0.02, 3)
    assert small.startswith("a − b: +0.010") and "no evidence" in small
    large = compare.gap_note("a", 0.70, "b", 0.80, 0.01, 3)
    assert "evidence that b beat a" in large and "-0.100" in large
    mixed = compare.gap_note("a", 0.80, "b", 0.70, 0.02, 3, 1)
    assert "mean of 3 seeds vs one seed" in mixed and "0.023" in mixed  # 0.02·√(1/3 + 1)
    assert "no spread was measured" in compare.gap_note("a", 0.7, "b", 0.8, 0.0)  # no measured spread: no verdict
    assert "it is no noise level" in compare.spread_note(0.0, 3)
