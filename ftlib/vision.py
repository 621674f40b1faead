"""Image classifiers: a pretrained backbone with a new head, and its scratch twin (lesson 03).

Lessons 03, 04 and 08 train them on the digits of :mod:`ftlib.images`. The full profile's
backbone is ResNet-18 from the hub; the lite and smoke profiles' is the course's
``SmallCNN`` (:mod:`ftlib.small_cnn`), pre-trained once on the source task and cached.
"""
from __future__ import annotations

from .catalog import ModelSource
from .images import ImageProcessor
from .small_cnn import SmallCNN, load_pretrained_cnn, pretrained_cnn_config

__all__ = ["load_image_classifier", "pretrained_labels", "scratch_image_classifier"]


def pretrained_labels(source: ModelSource) -> dict[int, str]:
    """id2label of the checkpoint's own head: the classes of the task it was pre-trained on."""
    if source.kind == "course-cnn":
        return dict(pretrained_cnn_config(source)[1].id2label)
    from transformers import AutoConfig

    return dict(AutoConfig.from_pretrained(source.repo, revision=source.revision).id2label)


def _processor_for(model_or_hub) -> ImageProcessor:
    if isinstance(model_or_hub, SmallCNN):
        c = model_or_hub.config
        return ImageProcessor(size=c.image_size, mean=tuple(c.image_mean), std=tuple(c.image_std), mode="L")
    size = model_or_hub.size  # a transformers image processor
    side = getattr(size, "shortest_edge", None) or getattr(size, "height", None) or 224
    return ImageProcessor(size=int(side), mean=tuple(model_or_hub.image_mean), std=tuple(model_or_hub.image_std),
                          mode="RGB")


def load_image_classifier(source: ModelSource, labels: list[str], *, runtime=None):
    """A pretrained image backbone with a NEW head for `labels`, and its :class:`ImageProcessor`.

    'hub' sources (``microsoft/resnet-18`` or a local folder): the checkpoint's 1000-class
    ImageNet head is dropped (``ignore_mismatched_sizes=True``) and a new one is made.
    'course-cnn' sources: the cached SmallCNN (pre-trained on digits 0-4) with a new head.
    The processor resizes the digits to the backbone's input size and normalises them with its mean/std.
    """
    if not labels:
        raise ValueError("labels is empty: pass the list of class names, e.g. ['5', '6', '7', '8', '9']")
    if source.kind == "course-cnn":
        model = load_pretrained_cnn(source, labels)
        processor = _processor_for(model)
    elif source.kind == "hub":
        from transformers import AutoImageProcessor, AutoModelForImageClassification

        model = AutoModelForImageClassification.from_pretrained(
            source.repo, revision=source.revision, id2label=dict(enumerate(labels)),  # num_labels follows
            label2id={name: i for i, name in enumerate(labels)}, ignore_mismatched_sizes=True)
        processor = _processor_for(AutoImageProcessor.from_pretrained(source.repo, revision=source.revision))
    else:
        raise ValueError(f"image models come from 'hub' or 'course-cnn' sources, not {source.kind!r}")
    if runtime is not None:
        model.to(runtime.device)
    return model, processor


def scratch_image_classifier(source: ModelSource, labels: list[str]):
    """The architecture :func:`load_image_classifier` gives, every weight random (seed first), and its processor.

    The processor is the pretrained model's, so both see exactly the same pixels.
    """
    if source.kind == "course-cnn":
        model = SmallCNN.from_scratch(labels, pretrained_cnn_config(source)[1])
        return model, _processor_for(model)
    if source.kind != "hub":
        raise ValueError(f"image models come from 'hub' or 'course-cnn' sources, not {source.kind!r}")
    from transformers import AutoConfig, AutoImageProcessor, AutoModelForImageClassification

    config = AutoConfig.from_pretrained(source.repo, revision=source.revision, id2label=dict(enumerate(labels)),
                                        label2id={name: i for i, name in enumerate(labels)})
    processor = _processor_for(AutoImageProcessor.from_pretrained(source.repo, revision=source.revision))
    return AutoModelForImageClassification.from_config(config), processor
