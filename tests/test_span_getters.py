"""spacy_bioner.strided_spans.v1: spacy-transformers' strided windows, counted in words, so that
whitespace tokens move no window."""

from pathlib import Path

import numpy as np
import pytest
import spacy
from hypothesis import given, settings
from hypothesis import strategies as st
from spacy.tokens import Doc
from spacy_transformers.span_getters import get_strided_spans as get_token_strided_spans
from thinc.api import fix_random_seed
from toy import train_two_heads, transformer_pipeline

from spacy_bioner.span_getters import get_strided_spans, strided_bounds

VOCAB = spacy.blank("en").vocab  # a bare Vocab() knows no whitespace (IS_SPACE)


@settings(max_examples=300, deadline=None)
@given(n=st.integers(0, 60), window=st.integers(1, 12), stride=st.integers(1, 12))
def test_the_bounds_are_spacy_transformers_windows(n: int, window: int, stride: int) -> None:
    doc = Doc(VOCAB, words=["w"] * n)
    (theirs,) = get_token_strided_spans([doc], window, stride)
    assert strided_bounds(n, window, stride) == [(span.start, span.end) for span in theirs]


@settings(max_examples=300, deadline=None)
@given(data=st.data(), n=st.integers(1, 60), window=st.integers(1, 12))
def test_blank_tokens_move_no_window_and_every_token_is_in_one(data: st.DataObject, n: int, window: int) -> None:
    stride = data.draw(st.integers(1, window))
    blank = st.sampled_from(["\n", "  ", "\u00a0", "\u200b"]) | st.none()
    spaces = data.draw(st.lists(blank, min_size=n + 1, max_size=n + 1))
    words = [f"w{i}" for i in range(n)]
    plain = Doc(VOCAB, words=words)
    spaced_words = [token for i in range(n + 1) for token in ([spaces[i]] if spaces[i] else []) + words[i:i + 1]]
    spaced = Doc(VOCAB, words=spaced_words, spaces=[False] * len(spaced_words))
    (windows,), (plain_windows,) = (get_strided_spans([doc], window, stride) for doc in (spaced, plain))
    words = [[t.text for t in window if t.text.strip().strip("\u200b")] for window in windows]
    assert words == [[t.text for t in window] for window in plain_windows]
    assert [(w.start, w.end) for w in plain_windows] == strided_bounds(n, window, stride)
    covered = np.zeros(len(spaced), dtype=bool)
    for w in windows:
        covered[w.start:w.end] = True
    assert covered.all()


def test_whitespace_changes_no_entity_of_a_text_over_several_windows(tiny_bert: Path) -> None:
    """With spacy-transformers' windows, a leading line end moves every window of a long text by a
    token, and words near their edges see other context: their confidences change."""
    text = " ".join(["IL-2 activates T cells in human monocytes ."] * 8)
    variants = ["\n" + text, text.replace(". ", ".\n"), text.replace(" in ", "  in ")]
    confidences = {}
    for getter in ("spacy_bioner.strided_spans.v1", "spacy-transformers.strided_spans.v1"):
        fix_random_seed(0)
        nlp = train_two_heads(transformer_pipeline(tiny_bert, settings={
            "components.transformer.model.get_spans": {"@span_getters": getter, "window": 16, "stride": 12}}))
        head = nlp.get_pipe("jnlpba")
        docs = list(nlp.pipe([text, *variants]))
        assert len(docs[0]) > 3 * 16
        words = [~doc.to_array("IS_SPACE").astype(bool) for doc in docs]
        confidences[getter] = [confidence[keep] for (_, confidence), keep in zip(head.predict(docs), words)]
    ours, theirs = confidences["spacy_bioner.strided_spans.v1"], confidences["spacy-transformers.strided_spans.v1"]
    for variant in ours[1:]:
        assert variant == pytest.approx(ours[0], rel=1e-5)
    assert any(not np.allclose(variant, theirs[0], rtol=1e-5) for variant in theirs[1:])

