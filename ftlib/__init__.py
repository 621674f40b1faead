"""ftlib: the helper library of the fine-tuning course.

One module per concept, each introduced by a lesson:

    runtime      profile, device, precision, seeding, environment stamp   (lesson 00)
    catalog      which model and how much data each profile uses           (lesson 00)
    models       loading pretrained models safely (hash-checked, offline)  (lesson 00)
    data         files to batches: splits, tokenization, dynamic padding   (lessons 00, 02)
    training     the loop: fit, train_step, early stopping, history        (lesson 00)
    optim        AdamW and the learning-rate schedule                      (lessons 00, 04)
    resume       checkpoints during fit, and resuming a killed run         (lesson 00)
    checkpoints  atomic, resumable checkpoint folders                      (lesson 00)
    live         what you see while training: bar, live curves, lines      (lesson 00)
    memory       training memory, estimated by part                        (lesson 01)
    peak_memory  training memory, measured                                 (lessons 01, 04, 10)
    oom          GPU memory during fit: pre-flight, smaller batches        (lesson 01)
    selection    vocabulary fit and linear probes to compare candidates    (lesson 01)
    cleaning     duplicates, leakage between splits, padding counts        (lesson 02)
    images       the digits tasks, preprocessing, augmentation, loaders    (lessons 02, 03)
    vision       image classifiers with a new head                         (lesson 03)
    small_cnn    the lite image backbone, pre-trained once and cached      (lesson 03)
    freezing     what trains: counts, head only, top k blocks, groups, BN  (lesson 04)
    lr_finder    the learning-rate range test                              (lesson 04)
    adapters     bottleneck adapters, from scratch                         (lesson 05)
    lora         LoRA from scratch, and its peft equivalent                (lesson 06)
    methods      methods by name; saving and loading only what trained     (lessons 05, 06)
    evaluation   loss, accuracy, macro-F1, predictions                     (lessons 00, 07)
    calibration  reliability bins and expected calibration error          (lesson 07)
    regularization  dropout everywhere, noisy labels on purpose            (lesson 08)
    qa           causal-LM answers: prompts, masked labels, EM and token F1 (lesson 09)
    compare      every method on one budget, one row each                  (lesson 10)
    baselines    majority class and bag-of-words                           (lessons 00, 07)
    distributed  the same loop on several processes (torchrun, DDP)        (README)
    files, inference, cli   the command line: files in, predictions out     (README)
    plots, widgets          drawing a history; explorers                    (lessons 00, 01, 04, 06)
    exercises    checks and quizzes                                        (every lesson)

Every lesson starts with ``runtime, profile = ftlib.setup(seed=0)``; then import what you
need, e.g. ``from ftlib.training import fit``.
"""
__version__ = "0.1.0"
__all__ = ["setup"]


def setup(profile: str | None = None, *, seed: int = 0, device: str | None = None):
    """Every lesson's first call: decide the runtime and the profile, and seed the random generators.

    Returns ``(runtime, profile)``: the :class:`~ftlib.runtime.Runtime` (profile name, device,
    precision, seed) and the :class:`~ftlib.catalog.Profile` (models, data sizes, epochs). Seeding
    here, once, makes a lesson's new heads, data order and dropout the same on every run.
    """
    from .catalog import get_profile
    from .runtime import get_runtime, seed_everything

    runtime = get_runtime(profile, seed=seed, device=device)
    seed_everything(seed)
    return runtime, get_profile(runtime.profile)
