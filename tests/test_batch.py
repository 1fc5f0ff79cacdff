"""The transformer layer's batch against spacy-transformers': the same split
per document."""

import dataclasses
from pathlib import Path

import numpy
import pytest
import spacy
from spacy_transformers.data_classes import FullTransformerBatch, TransformerData
from transformers.file_utils import ModelOutput

from spacy_bioner.layers.batch import BioTransformerBatch

TEXTS = [
    "IL-2 gene expression and NF-kappa B activation through CD28 requires reactive oxygen production.",
    "",
    "  two leading spaces,  double  spaces,\n\nnewlines\tand\t\ttabs  ",
    "x",
    "the expression of IL-2 in T cells was induced by p53 . " * 40,
    " ",
    "TNF-α and NF-κB in naïve T cells (n=12; P<0.05) … Ünïcödé café",
]


@pytest.fixture(scope="module")
def nlp(tiny_pipeline: Path):
    return spacy.load(tiny_pipeline)


def assert_same_data(ours: TransformerData, theirs: TransformerData) -> None:
    assert ours.wordpieces.strings == theirs.wordpieces.strings
    assert ours.wordpieces.lengths == theirs.wordpieces.lengths
    for field in ("input_ids", "attention_mask", "token_type_ids"):
        mine, other = getattr(ours.wordpieces, field), getattr(theirs.wordpieces, field)
        assert (mine is None) == (other is None)
        if mine is not None:
            numpy.testing.assert_array_equal(mine, other)
    numpy.testing.assert_array_equal(ours.align.dataXd, theirs.align.dataXd)
    numpy.testing.assert_array_equal(ours.align.lengths, theirs.align.lengths)
    assert list(ours.model_output.keys()) == list(theirs.model_output.keys())
    for key in theirs.model_output.keys():
        mine, other = ours.model_output[key], theirs.model_output[key]
        for a, b in zip(mine, other) if isinstance(other, list) else [(mine, other)]:
            numpy.testing.assert_array_equal(a, b)


def test_split_by_doc_as_spacy_transformers(nlp):
    """Documents with one window and many, empty ones, and one passed twice."""
    model = nlp.get_pipe("transformer").model
    docs = [nlp.make_doc(text) for text in TEXTS]
    docs.insert(3, docs[0])
    batch, _ = model(docs, is_train=False)
    assert isinstance(batch, BioTransformerBatch)
    ours, theirs = batch.split_by_doc(), FullTransformerBatch.split_by_doc(batch)
    assert len(ours) == len(theirs) == len(docs)
    for doc, mine, other in zip(docs, ours, theirs):
        assert_same_data(mine, other)
        assert len(mine.align.lengths) == len(doc)
    # Not vacuous: a document of many windows, and the empty one.
    assert max(len(data.wordpieces.input_ids) for data in ours) > 5
    assert sum(len(data.wordpieces.input_ids) == 0 for data in ours) == 1


def test_split_by_doc_splits_every_layers_output(nlp):
    """Outputs with a row per window (the hidden states of every layer) are split too."""
    model = nlp.get_pipe("transformer").model
    docs = [nlp.make_doc(text) for text in TEXTS]
    batch, _ = model(docs, is_train=False)
    hidden = batch.model_output.last_hidden_state
    outputs = ModelOutput(last_hidden_state=hidden, hidden_states=(hidden * 2, hidden * 3))
    batch = dataclasses.replace(batch, model_output=outputs)
    ours, theirs = batch.split_by_doc(), FullTransformerBatch.split_by_doc(batch)
    for mine, other in zip(ours, theirs):
        assert_same_data(mine, other)
    assert any(len(data.model_output["hidden_states"]) == 2 for data in ours)
