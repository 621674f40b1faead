"""ftlib: the helper library of the fine-tuning course.

One module per concept, each introduced by a lesson:

    runtime      profile, device, precision, seeding, environment stamp   (lesson 00)
    catalog      which model and how much data each profile uses           (lesson 00)
    models       loading pretrained models safely (hash-checked, offline)  (lesson 00)
    data         files to batches: splits, tokenization, dynamic padding   (lessons 00, 02)
    training     the loop: fit, early stopping, history                    (lesson 00)
    freezing     head only, freezing the first K blocks                    (lesson 04)
    adapters     bottleneck adapters, from scratch                         (lesson 05)
    lora         LoRA from scratch, and its peft equivalent                (lesson 06)
    methods      methods by name; saving and loading only what trained     (lessons 05, 06)
    checkpoints  atomic, resumable checkpoints                             (lesson 00)
    distributed  the same loop on several processes (torchrun, DDP)        (README)
    evaluation   loss, accuracy, macro-F1, predictions                     (lessons 00, 07)
    baselines    majority class and bag-of-words                           (lessons 00, 07)
    plots        drawing a history                                         (lesson 00)
    exercises    checks and quizzes                                        (every lesson)

Import what you need, e.g. ``from ftlib.training import fit``.
"""
__version__ = "0.1.0"
