"""Shared fixtures: a tiny random BERT and small pipelines built on it.

Nothing is downloaded: the BERT is built from a config with a vocabulary of
the toy words (tests/toy.py), and every pipeline is trained for a few steps
on the toy corpus.
"""

import copy
from pathlib import Path

import pytest
import spacy
from spacy.language import Language
from thinc.api import fix_random_seed
from toy import make_tiny_bert, train_two_heads, transformer_pipeline_config


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved 2-layer, 32-wide random BERT with a fast WordPiece tokenizer."""
    fix_random_seed(0)  # the same weights whichever test asks first
    return make_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


def transformer_pipeline(encoder: Path, crf: bool = True, heads=("jnlpba",)) -> Language:
    """A blank pipeline: the tiny transformer and one bio_ner head per key in `heads`."""
    config = spacy.util.load_config_from_str(transformer_pipeline_config(encoder, crf))
    for key in heads:
        if key not in config["components"]:
            config["components"][key] = copy.deepcopy(config["components"]["jnlpba"])
            config["components"][key]["spans_key"] = key
            config["nlp"]["pipeline"].append(key)
    return spacy.util.load_model_from_config(config, auto_fill=True, validate=True)


@pytest.fixture(scope="session")
def tiny_pipeline(tiny_bert: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved pipeline: the tiny transformer and two CRF heads ("jnlpba", "bc5cdr"),
    trained 20 steps on the toy corpus, so that it finds entities."""
    fix_random_seed(0)
    nlp = train_two_heads(transformer_pipeline(tiny_bert, heads=("jnlpba", "bc5cdr")))
    path = tmp_path_factory.mktemp("tiny-pipeline") / "model"
    nlp.to_disk(path)
    return path
