"""Shared fixtures: a tiny random BERT and small pipelines built on it.

Nothing is downloaded: the BERT is built from a config with a vocabulary of
the toy words (tests/toy.py), and every pipeline is trained for a few steps
on the toy corpus.
"""

from pathlib import Path

import pytest
from thinc.api import fix_random_seed
from toy import make_tiny_bert, train_two_heads, transformer_pipeline


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved 2-layer, 32-wide random BERT with a fast WordPiece tokenizer."""
    fix_random_seed(0)  # the same weights whichever test asks first
    return make_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="session")
def tiny_pipeline(tiny_bert: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved pipeline: the tiny transformer and two CRF heads ("jnlpba", "bc5cdr"),
    trained 20 steps on the toy corpus, so that it finds entities."""
    fix_random_seed(0)
    nlp = train_two_heads(transformer_pipeline(tiny_bert, heads=("jnlpba", "bc5cdr")))
    path = tmp_path_factory.mktemp("tiny-pipeline") / "model"
    nlp.to_disk(path)
    return path
