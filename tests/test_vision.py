"""ftlib.images and ftlib.vision: the digits tasks, preprocessing, augmentation, the SmallCNN and its cache, the hub path."""
import json

import pytest
import torch
from PIL import Image
from torch import nn

from ftlib import images, small_cnn, vision
from ftlib.catalog import ModelSource
from ftlib.evaluation import evaluate
from ftlib.models import IntegrityError
from ftlib.runtime import Runtime
from ftlib.training import TrainConfig, fit

CPU = Runtime(profile="smoke", device="cpu", precision="fp32")
TINY_CNN = ModelSource(name="tiny cnn", kind="course-cnn",
                       config=dict(channels=[4, 8], image_size=16, epochs=1, lr=3e-3, batch_size=64, seed=0))


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """One cache folder for the module: the tiny CNN is pre-trained once (about a second)."""
    folder = tmp_path_factory.mktemp("ftlib-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FTLIB_CACHE", str(folder))
        yield folder


def test_target_splits_are_fixed_disjoint_and_capped():
    train = images.image_dataset("train", per_class=4, seed=1)
    assert len(train) == 20 and sorted(set(train["label"])) == [0, 1, 2, 3, 4]
    assert train.features["label"].names == images.TARGET_LABELS
    assert train[0]["image"].size == (images.SCAN_SIZE, images.SCAN_SIZE)
    again = images.image_dataset("train", per_class=4, seed=1)
    assert [im.tobytes() for im in train["image"]] == [im.tobytes() for im in again["image"]]
    other = images.image_dataset("train", per_class=4, seed=2)
    assert [im.tobytes() for im in train["image"]] != [im.tobytes() for im in other["image"]]
    val, test = images.image_dataset("validation"), images.image_dataset("test")
    assert len(val) == 5 * images.VAL_PER_CLASS and len(test) > 400
    pool = {im.tobytes() for im in images.image_dataset("train", per_class=50)["image"]}
    assert not pool & {im.tobytes() for im in test["image"]} and not pool & {im.tobytes() for im in val["image"]}
    with pytest.raises(ValueError, match="per_class"):
        images.image_dataset("train", per_class=51)
    with pytest.raises(ValueError, match="split"):
        images.image_dataset("dev")


def test_source_task_is_the_clean_digits_0_to_4():
    source = images.image_dataset("train", task="source")
    assert source.features["label"].names == images.SOURCE_LABELS and len(source) > 850
    assert source[0]["image"].size == (8, 8)


def test_processor_resizes_and_normalises():
    pictures = [Image.new("L", (8, 8), 255), Image.new("L", (8, 8), 0)]
    out = images.ImageProcessor(size=12, mean=(0.5,), std=(0.25,))(pictures)["pixel_values"]
    assert out.shape == (2, 1, 12, 12) and out.dtype == torch.float32
    torch.testing.assert_close(out[0], torch.full((1, 12, 12), 2.0))  # (1 - 0.5) / 0.25
    torch.testing.assert_close(out[1], torch.full((1, 12, 12), -2.0))
    rgb = images.ImageProcessor(size=20, mean=(0.4, 0.5, 0.6), std=(1, 1, 1), mode="RGB")(pictures[0])
    assert rgb["pixel_values"].shape == (1, 3, 20, 20)
    torch.testing.assert_close(rgb["pixel_values"][0, :, 0, 0], torch.tensor([0.6, 0.5, 0.4]))


def test_augment_keeps_shape_is_seeded_and_does_nothing_when_switched_off():
    x = torch.randn(3, 1, 16, 16)
    a = images.augment(x, torch.Generator().manual_seed(0))
    b = images.augment(x, torch.Generator().manual_seed(0))
    assert a.shape == x.shape and torch.equal(a, b) and not torch.allclose(a, x)
    assert images.augment(x[0], torch.Generator().manual_seed(0)).shape == (1, 16, 16)
    same = images.augment(x, torch.Generator(), max_degrees=0, max_shift=0, noise=0)
    torch.testing.assert_close(same, x)
    image = images.image_dataset("train", per_class=1)[0]["image"]
    out = images.augment(image, torch.Generator().manual_seed(0))
    assert isinstance(out, Image.Image) and out.size == image.size and out.mode == image.mode
    assert out.tobytes() != image.tobytes()


def test_loader_batches_for_fit_and_augments_afresh():
    data = images.image_dataset("train", per_class=4)
    processor = images.ImageProcessor()
    plain = images.make_image_loader(data["image"], data["label"], processor, batch_size=8, shuffle=False)
    batch = next(iter(plain))
    assert set(batch) == {"pixel_values", "labels"} and batch["pixel_values"].shape == (8, 1, 16, 16)
    assert batch["labels"].dtype == torch.long and len(plain) == 3
    assert torch.equal(next(iter(plain))["pixel_values"], batch["pixel_values"])
    noisy = images.make_image_loader(data["image"], data["label"], processor, batch_size=8, shuffle=False,
                                     augment=True)
    first, second = next(iter(noisy))["pixel_values"], next(iter(noisy))["pixel_values"]
    assert not torch.allclose(first, batch["pixel_values"]) and not torch.allclose(first, second)
    with pytest.raises(ValueError, match="one label per image"):
        images.make_image_loader(data["image"], data["label"][:3], processor, batch_size=8, shuffle=False)
    with pytest.raises(ValueError, match="at least one image"):
        images.make_image_loader([], [], processor, batch_size=8, shuffle=False)


def test_small_cnn_has_the_contracted_shape():
    torch.manual_seed(0)
    model = small_cnn.SmallCNN.from_scratch(["a", "b", "c"])
    assert model.config.num_labels == 3 and model.config.id2label == {0: "a", 1: "b", 2: "c"}
    assert model.config.label2id == {"a": 0, "b": 1, "c": 2}
    assert isinstance(model.blocks, nn.ModuleList) and isinstance(model.classifier, nn.Linear)
    assert all(any(isinstance(m, nn.BatchNorm2d) for m in block.modules()) for block in model.blocks)
    out = model(pixel_values=torch.randn(4, 1, 16, 16), labels=torch.tensor([0, 1, 2, 0]))
    assert out.logits.shape == (4, 3) and out.loss.ndim == 0
    assert model(pixel_values=torch.randn(2, 1, 16, 16)).loss is None


def test_pretrained_cnn_is_cached_with_a_manifest_and_gets_a_new_head(cache):
    torch.manual_seed(0)
    before = torch.rand(1)
    torch.manual_seed(0)
    folder = small_cnn.pretrained_cnn_dir(TINY_CNN)
    assert torch.equal(torch.rand(1), before)  # pre-training does not move the caller's random stream
    manifest = json.loads((folder / "ftlib-manifest.json").read_text())
    assert len(manifest["model.safetensors"]) == 64 and not list(cache.glob(".tmp-*"))
    assert small_cnn.pretrained_cnn_dir(TINY_CNN) == folder  # the second call reuses the cache
    assert vision.pretrained_labels(TINY_CNN) == dict(enumerate(images.SOURCE_LABELS))
    model, processor = vision.load_image_classifier(TINY_CNN, ["x", "y"])
    assert model.config.num_labels == 2 and model.config.id2label == {0: "x", 1: "y"}
    assert model.classifier.out_features == 2
    from safetensors.torch import load_file
    saved = load_file(str(folder / "model.safetensors"))
    assert saved["classifier.weight"].shape[0] == 5  # the source task's head, replaced
    torch.testing.assert_close(model.blocks[0][0].weight, saved["blocks.0.0.weight"])
    assert processor.size == 16 and processor.mean == tuple(model.config.image_mean) and processor.mean != (0.5,)
    scratch, _ = vision.scratch_image_classifier(TINY_CNN, ["x", "y"])
    assert {k: v.shape for k, v in scratch.state_dict().items()} == {k: v.shape for k, v in model.state_dict().items()}
    assert not torch.allclose(scratch.blocks[0][0].weight, model.blocks[0][0].weight)


def test_a_tampered_cache_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("FTLIB_CACHE", str(tmp_path))
    source = ModelSource(name="tiny", kind="course-cnn", config={**TINY_CNN.config, "channels": [2]})
    folder = small_cnn._cnn_cache(source)  # a cache entry whose weights no longer match the manifest
    folder.mkdir(parents=True)
    (folder / "ftlib-manifest.json").write_text(json.dumps({"model.safetensors": "0" * 64}))
    (folder / "model.safetensors").write_bytes(b"tampered")
    with pytest.raises(IntegrityError, match="delete the folder"):
        vision.load_image_classifier(source, ["x", "y"])


def test_a_new_head_trains_with_fit_and_evaluate(cache):
    torch.manual_seed(0)
    model, processor = vision.load_image_classifier(TINY_CNN, images.TARGET_LABELS)
    data = images.image_dataset("train", per_class=6)
    loader = images.make_image_loader(data["image"], data["label"], processor, batch_size=10, shuffle=True)
    before = evaluate(model, loader, CPU)["loss"]
    history = fit(model, loader, runtime=CPU, config=TrainConfig(epochs=6, lr=1e-2, progress=False))
    assert len(history) == 6 and evaluate(model, loader, CPU)["loss"] < before


def _tiny_resnet(folder):
    from transformers import ConvNextImageProcessor, ResNetConfig, ResNetForImageClassification

    torch.manual_seed(0)
    config = ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], num_labels=7)
    ResNetForImageClassification(config).save_pretrained(folder)
    ConvNextImageProcessor(size={"shortest_edge": 32}, image_mean=[0.4, 0.5, 0.6],
                           image_std=[0.2, 0.2, 0.2]).save_pretrained(folder)
    return ModelSource(name="tiny resnet", kind="hub", repo=str(folder))


def test_hub_path_replaces_the_imagenet_style_head(tmp_path):
    source = _tiny_resnet(tmp_path / "resnet")
    labels = images.TARGET_LABELS
    assert len(vision.pretrained_labels(source)) == 7
    model, processor = vision.load_image_classifier(source, labels)
    assert model.config.num_labels == 5 and model.config.id2label == dict(enumerate(labels))
    assert model.config.label2id == {"5": 0, "6": 1, "7": 2, "8": 3, "9": 4}
    assert model.classifier[-1].out_features == 5
    assert processor.size == 32 and processor.mode == "RGB" and processor.mean == (0.4, 0.5, 0.6)
    data = images.image_dataset("train", per_class=2)
    batch = next(iter(images.make_image_loader(data["image"], data["label"], processor, batch_size=4,
                                               shuffle=False)))
    assert batch["pixel_values"].shape == (4, 3, 32, 32)
    assert model(**batch).logits.shape == (4, 5) and model(**batch).loss.ndim == 0
    from safetensors.torch import load_file
    saved = load_file(str(tmp_path / "resnet" / "model.safetensors"))
    name = next(k for k in saved if k.endswith("convolution.weight"))
    torch.testing.assert_close(model.state_dict()[name], saved[name])  # the backbone is the checkpoint's
    scratch, _ = vision.scratch_image_classifier(source, labels)
    assert scratch.config.num_labels == 5 and not torch.allclose(scratch.state_dict()[name], saved[name])


def test_bad_sources_and_labels_are_refused():
    with pytest.raises(ValueError, match="labels is empty"):
        vision.load_image_classifier(TINY_CNN, [])
    with pytest.raises(ValueError, match="course-cnn"):
        vision.load_image_classifier(ModelSource(name="x", kind="gguf"), ["a"])


def test_profiles_pick_an_offline_cnn_and_at_most_50_labels_per_class():
    from ftlib.catalog import PROFILES

    assert PROFILES["full"].image_model.kind == "hub" and PROFILES["full"].image_model.repo == "microsoft/resnet-18"
    for name in ("lite", "smoke"):
        assert PROFILES[name].image_model.kind == "course-cnn"
    assert PROFILES["smoke"].image_model.config["epochs"] < PROFILES["lite"].image_model.config["epochs"]
    for profile in PROFILES.values():
        assert 1 <= profile.image_per_class <= images.POOL_PER_CLASS and profile.image_lrs
