"""A tiny text classifier and dataset, shared by the training and checkpoint tests."""
import torch
from datasets import Dataset
from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

from ftlib import catalog, models
from ftlib.data import make_loader, tokenize

WORDS = ["good", "great", "fine", "bad", "awful", "poor", "the", "film", "was", "very", "not", "food"]


def tokenizer():
    return AutoTokenizer.from_pretrained(models.resolve(catalog.MINILM))


def classifier(seed: int = 0, dropout: float = 0.1) -> BertForSequenceClassification:
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64, num_labels=2,
                        hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout)
    return BertForSequenceClassification(config)


def dataset(n: int = 64, seed: int = 0) -> Dataset:
    """Sentences of varied length; label 1 if they contain a positive word."""
    g = torch.Generator().manual_seed(seed)
    texts, labels = [], []
    for i in range(n):
        length = int(torch.randint(3, 12, (1,), generator=g))
        words = [WORDS[int(j)] for j in torch.randint(6, len(WORDS), (length,), generator=g)]
        label = i % 2
        words.insert(int(torch.randint(0, length, (1,), generator=g)), WORDS[int(torch.randint(0, 3, (1,), generator=g)) + 3 * (1 - label)])
        texts.append(" ".join(words))
        labels.append(label)
    return Dataset.from_dict({"text": texts, "label": labels})


def loaders(tok, n_train=64, n_eval=32, batch_size=8, seed=0):
    train = tokenize(dataset(n_train, seed), tok, max_length=32)
    evalset = tokenize(dataset(n_eval, seed + 1), tok, max_length=32)
    return (make_loader(train, tok, batch_size=batch_size, shuffle=True, seed=seed),
            make_loader(evalset, tok, batch_size=16, shuffle=False))
