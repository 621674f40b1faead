"""ftlib: the helper library of the fine-tuning course.

One module per concept, each introduced by a lesson:

    runtime      profile, device, precision, seeding, environment stamp   (lesson 00)
    catalog      which model and how much data each profile uses           (lesson 00)
    models       loading pretrained models safely (hash-checked, offline)  (lesson 00)
    data         files to batches: splits, tokenization, dynamic padding   (lessons 00, 02)
    memory       training memory: estimate by part, measured peak          (lessons 01, 04, 10)
    selection    vocabulary fit and linear probes to compare candidates    (lesson 01)
    cleaning     duplicates, leakage between splits, padding counts        (lesson 02)
    training     the loop: fit, early stopping, history                    (lesson 00)
    freezing     layer groups, head only, top k blocks, per-group lrs, BN  (lesson 04)
    lr_finder    the learning-rate range test                              (lesson 04)
    adapters     bottleneck adapters, from scratch                         (lesson 05)
    lora         LoRA from scratch, and its peft equivalent                (lesson 06)
    methods      methods by name; saving and loading only what trained     (lessons 05, 06)
    qa           causal-LM answers: prompts, masked labels, EM and token F1 (lesson 09)
    checkpoints  atomic, resumable checkpoints                             (lesson 00)
    distributed  the same loop on several processes (torchrun, DDP)        (README)
    evaluation   loss, accuracy, macro-F1, predictions                     (lessons 00, 07)
    calibration  reliability bins and expected calibration error          (lesson 07)
    regularization  dropout everywhere, noisy labels on purpose            (lesson 08)
    baselines    majority class and bag-of-words                           (lessons 00, 07)
    compare      every method on one budget, one row each                  (lesson 10)
    plots        drawing a history                                         (lesson 00)
    exercises    checks and quizzes                                        (every lesson)

Import what you need, e.g. ``from ftlib.training import fit``.
"""
__version__ = "0.1.0"
