"""Tests for the Hugging Face token-classification benchmark anchor.

The shared tiny random BERT keeps this on the CPU and offline; the learning
check trains on the toy corpus and scores the same data, so it only passes if
the loop really fits the labels through first-sub-token alignment (the toy
words "IL-2", "NF-kappa" and "c-Rel" take three word pieces each).
"""
import math
from pathlib import Path
from typing import List, Optional, Tuple

import pytest
import spacy
from hf_token_classification import _encode_train, pipeline_words_per_second, train_and_evaluate
from run import iob_sentences
from toy import toy_examples
from transformers import AutoTokenizer

from spacy_bioner.evaluation import seqeval_scores


def toy_corpus(n: int, seed: int) -> List[Tuple[List[str], List[str]]]:
    """The toy sentences as (words, IOB2 tags), converted as the harness converts its corpora."""
    return iob_sentences(eg.reference for eg in toy_examples(spacy.blank("en"), n, seed=seed))


@pytest.mark.slow
def test_recipe_learns_toy_corpus(tiny_bert: Path, tmp_path: Path) -> None:
    train = toy_corpus(48, seed=1)
    logs: List[str] = []
    result = train_and_evaluate(
        train, train, str(tiny_bert), epochs=20, batch_size=8, lr=3e-3, device="cpu", save_dir=str(tmp_path),
        log=logs.append,
    )
    # It fits its small training set exactly, which the same model untrained does not.
    gold = [tags for _, tags in train]
    assert result["test_predictions"] == gold, result["test_f1"]
    untrained = train_and_evaluate(train, train, str(tiny_bert), epochs=0, device="cpu", log=lambda _: None,
                                   dev=train[:8], measure_speed=False)
    assert untrained["test_predictions"] != gold
    # Scored on dev where given; without measure_speed, tagged once, untimed.
    assert result["dev_f1"] is None and untrained["dev_f1"] == pytest.approx(
        seqeval_scores(gold[:8], untrained["test_predictions"][:8])["f1"])
    assert untrained["words_per_second"] == {} and untrained["epoch_seconds"] == []
    assert len(result["epoch_seconds"]) == 20 and result["epoch_seconds"][-1] <= result["train_seconds"] + 1e-3  # ms rounding
    assert result["test_f1"] == pytest.approx(seqeval_scores(gold, result["test_predictions"])["f1"])
    assert set(result["per_type_f1"]) == {"protein", "cell_type"}
    assert set(result["words_per_second"]) == {"32", "128"}
    assert result["peak_gpu_mb"] is None and result["epochs"] == 20
    assert result["n_truncated_words"] == 0 and result["n_untokenized_words"] == 0
    assert result["n_truncated_train_words"] == 0
    assert sum(line.startswith("epoch ") for line in logs) == 20
    # The saved model serves through pipeline("ner") as a user would load it.
    texts = [" ".join(words) for words, _ in train]
    speed = pipeline_words_per_second(str(tmp_path), texts, batch_size=8, device="cpu")
    assert isinstance(speed, float) and math.isfinite(speed) and speed > 0, speed


@pytest.mark.slow
def test_truncated_words_are_counted_and_tagged_o(tiny_bert: Path) -> None:
    train = toy_corpus(8, seed=2)
    long_words = [w for words, _ in train for w in words]
    long_tags = [t for _, tags in train for t in tags]
    # max_length 10 leaves 8 pieces after [CLS]/[SEP]; some words take several.
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_bert))
    n_kept, n_pieces = 0, 0
    while n_pieces + len(tokenizer.tokenize(long_words[n_kept])) <= 8:
        n_pieces += len(tokenizer.tokenize(long_words[n_kept]))
        n_kept += 1
    assert n_kept < n_pieces  # the cut falls after a word of several pieces
    result = train_and_evaluate(
        train, [(long_words, long_tags)], str(tiny_bert), epochs=1, batch_size=4, max_length=10, device="cpu",
        log=lambda _: None,
    )
    assert result["n_truncated_words"] == len(long_words) - n_kept
    # Training words cut off are counted too (they are never learnt from).
    label2id = {tag: i for i, tag in enumerate(sorted(set(long_tags)))}
    fitting = (long_words[:n_kept], long_tags[:n_kept])  # nothing cut
    features, n_cut = _encode_train(tokenizer, [fitting, (long_words, long_tags)], label2id, max_length=10)
    assert n_cut == len(long_words) - n_kept
    assert [len(feature["input_ids"]) for feature in features] == [n_pieces + 2, 10]
    (predicted,) = result["test_predictions"]
    assert len(predicted) == len(long_words)
    assert set(predicted[n_kept:]) == {"O"}


@pytest.mark.slow
def test_class_weights_reach_the_loss(tiny_bert: Path) -> None:
    """Uniform weights reproduce the unweighted run exactly (same seed); skewed ones change the loss."""
    train = toy_corpus(8, seed=3)

    def first_epoch_loss(class_weights: Optional[List[float]]) -> str:
        logs: List[str] = []
        train_and_evaluate(
            train, train, str(tiny_bert), epochs=1, batch_size=4, device="cpu", class_weights=class_weights,
            log=logs.append,
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
