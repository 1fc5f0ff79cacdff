"""Whitespace tokens are off a head's chain (chain.py): they change no other token's tag,
confidence, loss or gradient, and whitespace inside an entity stays inside it."""

from pathlib import Path

import numpy as np
import pytest
import spacy
from spacy.tokens import Doc, Span
from spacy.training import Example
from spacy.util import registry

from toy import toy_examples, transformer_pipeline

from spacy_bioner.chain import chain_of, path_off_chain
from spacy_bioner.tags import is_well_formed, make_tags, tag_ids_to_spans

# One text, then with a leading space, a line end between words, a no-break space and a
# trailing line end, a double space: within one window of the tiny pipeline's encoder,
# whose wordpieces and features are those of the first for every word.
TEXT = "IL-2 activates T cells ."
VARIANTS = [" IL-2 activates T cells .", "IL-2 activates\nT cells .", "IL-2\u00a0activates T cells .\n",
            "IL-2 activates  T cells ."]


def words_of(doc) -> np.ndarray:
    """The tokens other than whitespace and invisible characters."""
    return np.asarray([token.i for token in doc if token.text.strip().strip("\u200b\u2060\ufeff\u00ad")], dtype=int)


def test_whitespace_tokens_change_no_other_tokens_tags_or_confidences(tiny_pipeline: Path) -> None:
    """A leading line end took the start score from the first word, and one between words the
    transition between them: each word's confidence changed with the whitespace around it."""
    assert_words_tagged_alike(spacy.load(tiny_pipeline), [TEXT, *VARIANTS])


def test_invisible_characters_split_off_change_no_other_tokens_tags_or_confidences(tiny_pipeline: Path) -> None:
    """The BioTokenizer splits a BOM or a zero-width space off as a token of its own, which has no
    wordpieces either."""
    nlp = spacy.load(tiny_pipeline)
    nlp.tokenizer = registry.tokenizers.get("spacy_bioner.BioTokenizer.v1")()(nlp)
    texts = [TEXT, "\ufeff" + TEXT, TEXT.replace("activates", "activates\u200b"), TEXT.replace(" T", " \u00adT")]
    assert all(not token.is_space for text in texts for token in nlp.make_doc(text))
    assert_words_tagged_alike(nlp, texts)


def assert_words_tagged_alike(nlp, texts) -> None:
    """Each head tags the words of each text (its tokens but blank ones) as those of the first, with the
    same confidences, and the blank tokens O; the entities' texts, labels and scores are the first's."""
    docs = list(nlp.pipe(texts))
    for name in ("jnlpba", "bc5cdr"):
        head = nlp.get_pipe(name)
        (plain_path, plain_confidence), *variants = head.predict(docs)
        for doc, (path, confidence) in zip(docs[1:], variants):
            words = words_of(doc)
            assert len(words) < len(doc)
            assert list(path[words]) == list(plain_path)
            assert confidence[words] == pytest.approx(plain_confidence, rel=1e-6)
            blank = np.setdiff1d(np.arange(len(doc)), words)
            assert set(path[blank]) == {head.tags.index("O")} and (confidence[blank] == 1).all()
            assert [(s.text, s.label_) for s in doc.spans[name]] == [(s.text, s.label_) for s in docs[0].spans[name]]
            assert doc.spans[name].attrs["scores"] == pytest.approx(docs[0].spans[name].attrs["scores"], rel=1e-6)


@pytest.mark.parametrize("scheme", ["IOB2", "BILUO"])
def test_whitespace_inside_a_decoded_entity_is_inside_it(scheme: str) -> None:
    tags = make_tags(["X"], scheme)
    ids = [tags.index(t) for t in (["B-X", "L-X", "O"] if scheme == "BILUO" else ["B-X", "I-X", "O"])]
    # tokens: " ", "Na", "\u00a0", "channel", "\n", "is": the chain is tokens 1, 3 and 5
    chain = np.asarray([1, 3, 5])
    decoded = np.asarray(ids, dtype="i"), np.asarray([0.9, 0.8, 0.7], dtype="f")
    path, confidence = path_off_chain(*decoded, chain, 6, tags)
    assert is_well_formed([tags[i] for i in path], scheme)
    assert tag_ids_to_spans(path, tags) == [(1, 4, "X")]
    assert list(confidence) == pytest.approx([1.0, 0.9, 0.8, 0.8, 1.0, 0.7])


@pytest.mark.parametrize("scheme", ["IOB2", "BILUO"])
def test_the_loss_and_its_gradient_leave_whitespace_out(tiny_bert: Path, scheme: str) -> None:
    """The gold of a document with whitespace tokens is its words' gold, well formed where an
    entity holds whitespace; the loss and the words' gradients are those of the same words
    without it, and the whitespace tokens' gradients are zero."""
    nlp = transformer_pipeline(tiny_bert, settings={"components.jnlpba.tag_scheme": scheme})
    examples = []
    for text in ("IL-2 activates T cells .", " IL-2 activates T\u00a0cells .\n"):
        predicted, reference = nlp.make_doc(text), nlp.make_doc(text)
        words = words_of(reference)
        reference.spans["jnlpba"] = [Span(reference, words[0], words[0] + 1, "protein"),
                                     Span(reference, words[2], words[3] + 1, "cell_type")]
        examples.append(Example(predicted, reference))
    nlp.initialize(lambda: examples)
    head = nlp.get_pipe("jnlpba")
    golds = [[head.tags[t] for t in head.gold_tags(eg)] for eg in examples]
    assert golds[0] == golds[1] and is_well_formed(golds[1], head.tag_scheme)
    docs = list(nlp.get_pipe("transformer").pipe([eg.predicted for eg in examples]))
    losses, gradients = [], []
    for eg, doc in zip(examples, docs):
        scores = head.model.predict([doc])
        loss, d_scores = head.get_loss([eg], scores)
        losses.append(loss)
        gradients.append(d_scores.emissions[0])
    assert losses[1] == pytest.approx(losses[0], rel=1e-5)
    spaced = docs[1]
    words = words_of(spaced)
    assert gradients[1][words] == pytest.approx(gradients[0], rel=1e-5, abs=1e-7)
    assert not gradients[1][np.setdiff1d(np.arange(len(spaced)), words)].any()


def test_a_document_of_whitespace_alone_has_an_empty_chain_and_no_entities(tiny_pipeline: Path) -> None:
    nlp = spacy.load(tiny_pipeline)
    doc = nlp("\n \u00a0")
    assert len(doc) and chain_of(doc) is not None and len(chain_of(doc)) == 0
    assert not doc.ents and all(len(doc.spans[key]) == 0 for key in ("jnlpba", "bc5cdr"))


@pytest.mark.parametrize("newline", ["", "\n"])
def test_gold_on_other_tokens_is_projected_onto_the_chain(tiny_bert: Path, newline: str) -> None:
    """Gold on another tokenizer's tokens ("IL - 2" against the pipeline's "IL-2"), as spaCy's Corpus
    pairs a corpus tokenized elsewhere with the pipeline's tokens: the projected tokens without gold
    (here those of an unknown label) were indices, taken for a mask along the chain, which failed at
    initialize or left the wrong tokens unannotated."""
    nlp = transformer_pipeline(tiny_bert)
    nlp.initialize(lambda: toy_examples(nlp, 10))
    head = nlp.get_pipe("jnlpba")
    text = f"IL-2 activates{newline or ' '}T cells ."
    words = ["IL", "-", "2", "activates", *([newline] if newline else []), "T", "cells", "."]
    spaces = [False, False, True, not newline, *([False] if newline else []), True, True, False]
    reference = Doc(nlp.vocab, words=words, spaces=spaces)
    t = len(words) - 3
    reference.spans["jnlpba"] = [Span(reference, 0, 3, "protein"), Span(reference, 3, 4, "other"),
                                 Span(reference, t, t + 2, "cell_type")]
    example = Example(nlp.make_doc(text), reference)
    assert len(example.predicted) != len(reference) and reference.text == text
    gold = [head.tags[i] if i >= 0 else None for i in head.gold_tags(example)]
    assert gold == ["B-protein", None, "B-cell_type", "I-cell_type", "O"]
