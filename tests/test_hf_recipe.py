"""Tests for the Hugging Face token-classification benchmark anchor.

A tiny random BERT keeps this on CPU and offline; the learning check trains on
a toy corpus and scores the same data, so it only passes if the loop really
fits the labels through first-sub-token alignment.
"""
import random
import sys
from pathlib import Path
from typing import List, Optional, Tuple

import pytest
import torch
from transformers import BertConfig, BertModel, BertTokenizerFast

# benchmarks/ is a repository folder, not part of the installed package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.hf_token_classification import pipeline_words_per_second, train_and_evaluate  # noqa: E402
from spacy_bioner.evaluation import seqeval_scores  # noqa: E402

PROTEINS = [["p53"], ["interleukin", "2"], ["nf", "kappa", "b"], ["kinase"]]
CELLS = [["t", "cells"], ["monocytes"], ["human", "b", "cells"]]
FILLERS = ["the", "of", "in", "was", "expressed", "activation", "binds", "strongly", "we", "found"]
# "interleukin" is deliberately absent so it splits into inter + ##leukin.
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def _entity(words: List[str], label: str) -> Tuple[List[str], List[str]]:
    return words, [f"B-{label}"] + [f"I-{label}"] * (len(words) - 1)


def _toy_corpus(n: int, seed: int) -> List[Tuple[List[str], List[str]]]:
    """Sentences of filler words with one protein and one cell-type mention."""
    rng = random.Random(seed)
    corpus = []
    for _ in range(n):
        parts = [
            ([rng.choice(FILLERS)], ["O"]),
            _entity(rng.choice(PROTEINS), "protein"),
            ([rng.choice(FILLERS) for _ in range(rng.randint(1, 3))], None),
            _entity(rng.choice(CELLS), "cell_type"),
            (["."], ["O"]),
        ]
        words, tags = [], []
        for part_words, part_tags in parts:
            words += part_words
            tags += part_tags or ["O"] * len(part_words)
        corpus.append((words, tags))
    return corpus


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A random 2-layer BERT with a WordPiece vocab covering the toy corpus."""
    path = tmp_path_factory.mktemp("tiny_bert")
    words = {w for group in PROTEINS + CELLS for w in group} | set(FILLERS) | {"."}
    words = sorted(words - {"interleukin"}) + ["inter", "##leukin"]
    (path / "vocab.txt").write_text("\n".join(SPECIAL + words) + "\n", encoding="utf8")
    # from_pretrained reads vocab.txt in both transformers 4 and 5 (5 ignores a ``vocab_file`` argument).
    tokenizer = BertTokenizerFast.from_pretrained(str(path), do_lower_case=True, model_max_length=512)
    assert tokenizer.tokenize("interleukin") == ["inter", "##leukin"]
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(SPECIAL) + len(words),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
    )
    BertModel(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


def test_recipe_learns_toy_corpus(tiny_bert: str, tmp_path: Path) -> None:
    train = _toy_corpus(48, seed=1)
    logs: List[str] = []
    result = train_and_evaluate(
        train, train, tiny_bert, epochs=15, batch_size=8, lr=1e-3, device="cpu", save_dir=str(tmp_path), log=logs.append
    )
    assert result["test_f1"] >= 0.9, result
    assert 0.0 <= result["test_p"] <= 1.0 and 0.0 <= result["test_r"] <= 1.0
    assert set(result["per_type_f1"]) == {"protein", "cell_type"}
    assert all(0.0 <= f1 <= 1.0 for f1 in result["per_type_f1"].values())
    assert len(result["test_predictions"]) == len(train)
    assert [len(tags) for tags in result["test_predictions"]] == [len(words) for words, _ in train]
    assert set(result["words_per_second"]) == {"32", "128"}
    assert all(wps > 0 for wps in result["words_per_second"].values())
    assert result["train_seconds"] > 0 and result["peak_gpu_mb"] is None and result["epochs"] == 15
    assert result["n_truncated_words"] == 0 and result["n_untokenized_words"] == 0
    assert sum(line.startswith("epoch ") for line in logs) == 15

    texts = [" ".join(words) for words, _ in train]
    assert pipeline_words_per_second(str(tmp_path), texts, batch_size=8, device="cpu") > 0


def test_truncated_words_are_counted_and_tagged_o(tiny_bert: str) -> None:
    train = _toy_corpus(8, seed=2)
    long_words = [w for words, _ in train for w in words]
    long_tags = [t for _, tags in train for t in tags]
    # max_length 10 leaves 8 sub-tokens after [CLS]/[SEP]; "interleukin" takes two.
    n_kept, n_pieces = 0, 0
    while n_pieces + (2 if long_words[n_kept] == "interleukin" else 1) <= 8:
        n_pieces += 2 if long_words[n_kept] == "interleukin" else 1
        n_kept += 1
    result = train_and_evaluate(
        train, [(long_words, long_tags)], tiny_bert, epochs=1, batch_size=4, max_length=10, device="cpu",
        log=lambda _: None,
    )
    assert result["n_truncated_words"] == len(long_words) - n_kept
    (predicted,) = result["test_predictions"]
    assert len(predicted) == len(long_words)
    assert set(predicted[n_kept:]) == {"O"}


def test_class_weights_reach_the_loss(tiny_bert: str) -> None:
    """Uniform weights reproduce the unweighted run exactly (same seed); skewed ones change the loss."""
    train = _toy_corpus(8, seed=3)

    def first_epoch_loss(class_weights: Optional[List[float]]) -> str:
        logs: List[str] = []
        train_and_evaluate(
            train, train, tiny_bert, epochs=1, batch_size=4, device="cpu", class_weights=class_weights, log=logs.append
        )
        (line,) = [line for line in logs if line.startswith("epoch ")]
        return line.split(" loss ")[1].split()[0]

    n_labels = len({t for _, tags in train for t in tags})
    plain = first_epoch_loss(None)
    assert first_epoch_loss([3.0] * n_labels) == plain
    assert first_epoch_loss([1.0] * (n_labels - 1) + [20.0]) != plain


def test_seqeval_scores_default_mode() -> None:
    gold = [["B-PER", "I-PER", "O", "B-LOC", "O"], ["B-PER", "O", "B-LOC", "I-LOC", "O"]]
    pred = [["B-PER", "I-PER", "O", "B-ORG", "O"], ["I-PER", "O", "B-LOC", "O", "O"]]
    # Gold: PER x2, LOC x2. Predicted: PER(0-1), ORG, PER(0) from the leading
    # I-PER (conlleval starts a chunk there; strict mode would not), LOC(2).
    # Correct: both PERs -> P = 2/4, R = 2/4.
    scores = seqeval_scores(gold, pred)
    assert scores["p"] == pytest.approx(0.5)
    assert scores["r"] == pytest.approx(0.5)
    assert scores["f1"] == pytest.approx(0.5)
    assert scores["per_type"] == {
        "PER": {"p": 1.0, "r": 1.0, "f1": 1.0, "support": 2},
        "LOC": {"p": 0.0, "r": 0.0, "f1": 0.0, "support": 2},
        "ORG": {"p": 0.0, "r": 0.0, "f1": 0.0, "support": 0},
    }
