"""The registered scorer against seqeval (evaluation.py) on the same spans."""

import itertools

import numpy as np
import pytest
import spacy
from spacy.language import Language
from spacy.tokens import Doc, DocBin, Span
from spacy.training import Example
from spacy.vocab import Vocab
from toy import SMALL_TOK2VEC

from spacy_bioner.annotation import head_group
from spacy_bioner.evaluation import (
    LAID_COUNTS,
    evaluate_corpus,
    gold_iob_tags,
    iob_tags,
    laid_counts,
    on_reference_tokens,
    seqeval_scores,
    unplaced_predictions,
    write_metrics,
)
from spacy_bioner.scoring import score_bio_ner

KEY = "jnlpba"
WORDS = "IL-2 receptor alpha gene is expressed in human T cells".split()


def doc_with(spans, vocab):
    doc = Doc(vocab, words=WORDS)
    doc.spans[KEY] = [Span(doc, start, end, label) for start, end, label in spans]
    return doc


def both_scores(gold, predicted):
    vocab = Vocab()
    references = [doc_with(spans, vocab) for spans in gold]
    predictions = [doc_with(spans, vocab) for spans in predicted]
    spacy_scores = score_bio_ner([Example(p, r) for p, r in zip(predictions, references)], spans_key=KEY)
    seqeval = seqeval_scores(gold_iob_tags(references, KEY), iob_tags(predictions, KEY))
    return spacy_scores, seqeval


def assert_agree(spacy_scores, seqeval):
    prefix = f"spans_{KEY}"
    assert spacy_scores[f"{prefix}_p"] == pytest.approx(seqeval["p"])
    assert spacy_scores[f"{prefix}_r"] == pytest.approx(seqeval["r"])
    assert spacy_scores[f"{prefix}_f"] == pytest.approx(seqeval["f1"])
    per_type = spacy_scores[f"{prefix}_per_type"]
    assert sorted(per_type) == sorted(seqeval["per_type"])
    for label, row in seqeval["per_type"].items():
        assert (per_type[label]["p"], per_type[label]["r"], per_type[label]["f"]) == pytest.approx(
            (row["p"], row["r"], row["f1"])
        ), label


def test_nested_gold_is_scored_as_seqeval_scores_it():
    """GENIA nests a protein in a DNA; a tagger can find only the longer one,
    which the head learns and seqeval scores: spaCy's scores must agree."""
    gold = [[(0, 4, "DNA"), (0, 3, "protein"), (7, 10, "cell_type")]]
    predicted = [[(0, 4, "DNA"), (8, 10, "cell_type")]]
    assert_agree(*both_scores(gold, predicted))


def test_an_empty_gold_span_is_no_entity_to_find():
    gold = [[(2, 2, "protein"), (7, 10, "cell_type")]]
    predicted = [[(7, 10, "cell_type")]]
    spacy_scores, seqeval = both_scores(gold, predicted)
    assert_agree(spacy_scores, seqeval)
    assert spacy_scores[f"spans_{KEY}_r"] == 1.0


@pytest.mark.parametrize("seed", range(5))
def test_scorer_agrees_with_seqeval_on_random_spans(seed):
    """Random gold (overlapping, adjacent, at either end) and predictions."""
    rng = np.random.default_rng(seed)
    candidates = [(s, e) for s, e in itertools.combinations(range(len(WORDS) + 1), 2) if e - s <= 3]

    def draw(n):
        picks = rng.choice(len(candidates), size=n, replace=False)
        return [(*candidates[i], str(rng.choice(["DNA", "protein", "cell-type"]))) for i in picks]

    gold = [draw(int(rng.integers(1, 6))) for _ in range(4)]
    # Predictions are a head's: never overlapping.
    predicted = []
    for _ in range(4):
        spans, taken = [], set()
        for start, end, label in draw(int(rng.integers(0, 6))):
            if not taken & set(range(start, end)):
                spans.append((start, end, label))
                taken |= set(range(start, end))
        predicted.append(spans)
    assert_agree(*both_scores(gold, predicted))


def test_strict_f1_refuses_the_credit_the_default_mode_gives_ill_formed_tags():
    gold = [["B-Chemical", "I-Chemical", "O", "B-Disease"]]
    # A tagger's argmax may start an entity with I-: conlleval (the default) reads it as one.
    ill_formed = [["I-Chemical", "I-Chemical", "O", "I-Disease"]]
    scores = seqeval_scores(gold, ill_formed)
    assert (scores["f1"], scores["f1_strict"]) == (1.0, 0.0)
    assert seqeval_scores(gold, gold)["f1_strict"] == 1.0


def test_entities_predicted_on_other_tokens_are_laid_on_the_reference_tokens():
    vocab = Vocab()
    reference = Doc(vocab, words=["IL-2", "activates", "T", "cells", "."], spaces=[True, True, True, False, False])
    own = Doc(vocab, words=["IL", "-", "2", "activates", "T", "cells", "."],
              spaces=[False, False, True, True, True, False, False])
    assert own.text == reference.text
    own.spans[KEY] = [Span(own, 0, 1, "protein"), Span(own, 2, 3, "protein"), Span(own, 4, 6, "cell_type")]
    own.ents = [Span(own, 0, 3, "protein")]
    laid = on_reference_tokens(own, reference)
    assert [t.text for t in laid] == [t.text for t in reference]
    # "IL" and "2" both widen to "IL-2": one span, as a tagger of the reference tokens has it.
    assert [(s.text, s.label_) for s in laid.spans[KEY]] == [("IL-2", "protein"), ("T cells", "cell_type")]
    assert [(s.text, s.label_) for s in laid.ents] == [("IL-2", "protein")]


@pytest.mark.parametrize("piece_scores", [(0.6, 0.8), (0.8, 0.6)], ids=["better-last", "better-first"])
def test_a_heads_scores_are_laid_with_its_spans_and_its_entities_stay_out_of_others_ents_scores(piece_scores):
    """`evaluate` scores predictions laid on the gold tokens: the scores mark a head's group, by
    which ents_* leave out the entities of a head the reference is not annotated for."""
    vocab = Vocab()
    reference = Doc(vocab, words=["Aspirin", "blocks", "IL-2", "."], spaces=[True, True, False, False])
    reference.spans["jnlpba"] = [Span(reference, 2, 3, "protein")]
    reference.ents = list(reference.spans["jnlpba"])
    own = Doc(vocab, words=["Aspirin", "blocks", "IL", "-", "2", "."], spaces=[True, True, False, False, False, False])
    heads = {"jnlpba": ([(2, 3, "protein"), (4, 5, "protein")], list(piece_scores)), "bc5cdr": ([(0, 1, "Chemical")], [0.7])}
    for key, (spans, scores) in heads.items():
        group = [Span(own, start, end, label) for start, end, label in spans]
        own.spans[key] = head_group(own, key, group, scores, head=key)
    own.spans["other"] = [Span(own, 1, 2, "X")]  # no scores: no head's
    own.ents = [*own.spans["bc5cdr"], Span(own, 2, 5, "protein")]
    laid = on_reference_tokens(own, reference)
    # "IL" and "2" widen to one "IL-2", with the better score.
    assert [(s.text, s.label_) for s in laid.spans["jnlpba"]] == [("IL-2", "protein")]
    assert laid.spans["jnlpba"].attrs["scores"] == [0.8]
    assert laid.spans["bc5cdr"].attrs["scores"] == [0.7]
    assert "scores" not in laid.spans["other"].attrs
    assert score_bio_ner([Example(laid, reference)], spans_key="jnlpba")["ents_p"] == 1.0


def ents_gold_and_head_prediction(vocab):
    """Gold in doc.ents for both heads (a protein, a Chemical); the JNLPBA
    head finds the protein and tags the Chemical's tokens as a protein."""
    reference = Doc(vocab, words=WORDS)
    reference.ents = [Span(reference, 0, 3, "protein"), Span(reference, 8, 10, "Chemical")]
    predicted = Doc(vocab, words=WORDS)
    predicted.spans[KEY] = [Span(predicted, 0, 3, "protein"), Span(predicted, 9, 10, "protein")]
    return Example(predicted, reference)


def test_another_heads_gold_is_unannotated_for_this_head():
    example = ents_gold_and_head_prediction(Vocab())
    alone = score_bio_ner([example], spans_key=KEY)
    assert (alone[f"spans_{KEY}_p"], alone[f"spans_{KEY}_r"]) == (0.5, 0.5)
    scores = score_bio_ner([example], spans_key=KEY, labels=["DNA", "RNA", "cell_line", "cell_type", "protein"])
    assert (scores[f"spans_{KEY}_p"], scores[f"spans_{KEY}_r"]) == (1.0, 1.0)
    assert list(scores[f"spans_{KEY}_per_type"]) == ["protein"]


def test_tokens_without_ner_annotation_are_unannotated_for_the_head():
    """Gold from doc.ents with missing annotation (ent_iob 0): the head learns those
    tokens as unannotated, and a prediction there is no false positive, as in spaCy's ents_*."""
    vocab = Vocab()
    words = "IL-2 binds receptor in human T cells".split()
    reference = Doc(vocab, words=words, ents=["B-protein", "O", "O", "O", None, None, None])
    predicted = Doc(vocab, words=words)
    predicted.spans["jnlpba"] = [Span(predicted, 0, 1, "protein"), Span(predicted, 5, 7, "cell_type")]
    predicted.ents = list(predicted.spans["jnlpba"])
    scores = score_bio_ner([Example(predicted, reference)], spans_key="jnlpba", labels=["protein", "cell_type"])
    assert scores["spans_jnlpba_p"] == scores["ents_p"] == 1.0 and scores["spans_jnlpba_r"] == 1.0


def test_ents_scores_leave_out_the_heads_the_reference_is_not_annotated_for():
    """spacy evaluate on a test set of one corpus: the other head's entities in doc.ents were
    all false positives, so its NER scores fell 6 to 10 points below the heads' own."""
    vocab = Vocab()
    words = "Haloperidol induced IL-2 in T cells".split()
    reference = Doc(vocab, words=words)
    reference.spans["jnlpba"] = [Span(reference, 2, 3, "protein"), Span(reference, 4, 6, "cell_type")]
    reference.ents = list(reference.spans["jnlpba"])
    predicted = Doc(vocab, words=words)
    for key, spans in (("jnlpba", [(2, 3, "protein"), (4, 6, "cell_type")]), ("bc5cdr", [(0, 1, "Chemical")])):
        group = [Span(predicted, start, end, label) for start, end, label in spans]
        predicted.spans[key] = head_group(predicted, key, group, [0.9] * len(group), head=key)
    predicted.ents = [*predicted.spans["bc5cdr"], *predicted.spans["jnlpba"]]
    scores = score_bio_ner([Example(predicted, reference)], spans_key="jnlpba")
    assert (scores["ents_p"], scores["ents_r"]) == (1.0, 1.0)
    assert set(scores["ents_per_type"]) == {"protein", "cell_type"}
    assert len(predicted.ents) == 3  # the prediction itself is left as it is
    # An entity set by something else (an entity ruler) is scored as before; so is every head on a
    # reference annotated for both, or on one whose gold is doc.ents alone (annotated for every head).
    predicted.ents = [*predicted.ents, Span(predicted, 1, 2, "RULE")]
    assert score_bio_ner([Example(predicted, reference)], spans_key="jnlpba")["ents_p"] == 2 / 3
    reference.spans["bc5cdr"] = []
    assert score_bio_ner([Example(predicted, reference)], spans_key="jnlpba")["ents_p"] == 2 / 4
    del reference.spans["bc5cdr"], reference.spans["jnlpba"]
    assert score_bio_ner([Example(predicted, reference)], spans_key="jnlpba")["ents_p"] == 2 / 4


def test_gold_in_a_span_group_no_head_reads_is_warned_of():
    """`convert iob` without --spans-key writes doc.spans["ents"] beside doc.ents: no head is annotated
    for such a document, so `spacy evaluate` printed 0.00 for every score, and nothing else."""
    import warnings

    vocab = Vocab()
    words = "IL-2 activates T cells".split()
    reference = Doc(vocab, words=words)
    reference.ents = [Span(reference, 0, 1, "protein"), Span(reference, 2, 4, "cell_type")]
    reference.spans["ents"] = list(reference.ents)
    predicted = Doc(vocab, words=words)
    group = [Span(predicted, 0, 1, "protein")]
    predicted.spans[KEY] = head_group(predicted, KEY, group, [0.9], head=KEY)
    predicted.ents = group
    examples = [Example(predicted, reference), Example(predicted, Doc(vocab, words=words))]
    with pytest.warns(UserWarning, match=r"^1 of 2 gold documents hold entities in doc.ents beside span groups "
                                         r"\['ents'\], which no head of the pipeline reads \(heads: \['jnlpba'\]\)"):
        score_bio_ner(examples, spans_key=KEY)
    # Every document so (a dev corpus converted under another key): no score but 0, to the end of a
    # training run, its model-best chosen on nothing.
    with pytest.raises(ValueError, match=r"^1 of 1 gold documents .* No document is scored: every score would be 0"):
        score_bio_ner(examples[:1], spans_key=KEY)
    # Beside a document whose doc.ents the head reads, it is out of ents_* too: its entities were
    # misses where the head's entities in it were left out (ents_r 0.48 where spaCy's ner had 1.0).
    read = Doc(vocab, words=words, ents=["B-protein", "O", "O", "O"])
    with pytest.warns(UserWarning, match="1 of 2 gold documents"):
        mixed = score_bio_ner([Example(predicted, read), examples[0]], spans_key=KEY)
    alone = score_bio_ner([Example(predicted, read)], spans_key=KEY)
    assert mixed["ents_r"] == alone["ents_r"] == 1.0 and mixed["ents_p"] == alone["ents_p"]
    # Converted with the head's key, it is read, and nothing is said.
    reference.spans[KEY] = reference.spans.pop("ents")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scores = score_bio_ner(examples, spans_key=KEY)
    assert (scores["spans_jnlpba_p"], scores["spans_jnlpba_r"]) == (1.0, 0.5)


def test_gold_in_doc_ents_alone_without_the_head_s_labels_is_warned_of():
    """A gold document with doc.ents alone is every head's (Example.from_dict, or spaCy's Corpus with
    gold_preproc, which drops span groups): on another corpus's test set, each entity of the head
    was a false positive in its scores and ents_*, without a word."""
    import warnings

    vocab = Vocab()
    words = "Cisplatin activates IL-2".split()
    reference = Doc(vocab, words=words)
    reference.ents = [Span(reference, 0, 1, "Chemical")]
    predicted = Doc(vocab, words=words)
    group = [Span(predicted, 2, 3, "protein")]
    predicted.spans[KEY] = head_group(predicted, KEY, group, [0.9], head=KEY)
    predicted.ents = group
    examples = [Example(predicted, reference)]
    with pytest.warns(UserWarning, match=r"^1 of 1 gold documents have their gold in doc.ents alone, with none of "
                                         r"the labels of head 'jnlpba' \(DNA, protein\).* head's 1 entities in them"):
        scores = score_bio_ner(examples, spans_key=KEY, labels=["protein", "DNA"])
    assert scores["spans_jnlpba_p"] == 0.0
    # Where the gold holds one of its labels, or the head found nothing there, nothing is said.
    for gold, found in ((["Chemical", "protein"], group), (["Chemical"], [])):
        reference.ents = [Span(reference, i, i + 1, label) for i, label in enumerate(gold)]
        predicted.spans[KEY] = head_group(predicted, KEY, found, [0.9] * len(found), head=KEY)
        predicted.ents = found
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            score_bio_ner(examples, spans_key=KEY, labels=["protein", "DNA"])


def test_ents_scores_of_gold_in_span_groups_alone():
    """A corpus whose gold is in span groups alone had no ents_* scores, so spacy train, which
    weighs ents_f by default, scored 0 at every evaluation and stopped at its patience."""
    vocab = Vocab()
    reference = doc_with([(0, 2, "protein"), (8, 10, "cell_type"), (7, 10, "cell_type")], vocab)
    predicted = Doc(vocab, words=WORDS)
    group = [Span(predicted, 0, 2, "protein"), Span(predicted, 4, 5, "protein")]
    predicted.spans[KEY] = head_group(predicted, KEY, group, [0.9, 0.8], head=KEY)
    predicted.ents = group
    scores = score_bio_ner([Example(predicted, reference)], spans_key=KEY)
    # Gold: the protein and the longer of the overlapping cell types; one of two predictions right.
    assert (scores["ents_p"], scores["ents_r"]) == (0.5, 0.5)
    assert (scores["spans_jnlpba_p"], scores["spans_jnlpba_r"]) == (0.5, 0.5)
    assert not reference.has_annotation("ENT_IOB")  # the reference itself is left as it is


def test_the_component_scores_with_its_labels(tiny_pipeline):
    nlp = spacy.load(tiny_pipeline)
    scores = nlp.get_pipe("jnlpba").score([ents_gold_and_head_prediction(nlp.vocab)])
    assert (scores["spans_jnlpba_p"], scores["spans_jnlpba_r"]) == (1.0, 1.0)


def test_other_heads_gold_is_found_on_predicted_tokens_that_differ():
    """The prediction is on another tokenization (and whitespace) of the text:
    the other head's gold is aligned onto it, not compared by offsets."""
    vocab = Vocab()
    reference = Doc(vocab, words=["abc", "def", "G"])
    reference.ents = [Span(reference, 0, 1, "Chemical"), Span(reference, 1, 2, "protein")]
    predicted = Doc(vocab, words=["a", "b", "c", "def", "G"])
    predicted.spans["bc5cdr"] = [Span(predicted, 0, 3, "Chemical"), Span(predicted, 3, 4, "Chemical")]
    scores = score_bio_ner([Example(predicted, reference)], spans_key="bc5cdr", labels=["Chemical", "Disease"])
    assert (scores["spans_bc5cdr_p"], scores["spans_bc5cdr_r"]) == (1.0, 1.0)


def test_gold_in_the_heads_span_group_of_a_label_it_lacks_is_a_miss():
    """In the head's own span group every entity is the head's to find (a corpus labelled
    "Protein" for a head of "protein"): the scorer counts it missed, as seqeval does."""
    gold = [[(0, 1, "Protein"), (8, 10, "cell_type")]]
    predicted = [[(0, 1, "protein"), (8, 10, "cell_type")]]
    vocab = Vocab()
    example = Example(doc_with(predicted[0], vocab), doc_with(gold[0], vocab))
    scores = score_bio_ner([example], spans_key=KEY, labels=["protein", "cell_type"])
    assert (scores[f"spans_{KEY}_p"], scores[f"spans_{KEY}_r"]) == (0.5, 0.5)
    assert_agree(scores, seqeval_scores(gold_iob_tags([example.reference], KEY), iob_tags([example.predicted], KEY)))


def test_a_prediction_whose_edge_falls_inside_a_gold_token_is_scored_on_the_gold_tokens():
    """The pipeline splits "NF-kappa" where the gold does not: its "kappa B" is widened to
    the gold tokens it touches and counted, as `evaluate` (seqeval) counts it, not left out."""
    vocab = Vocab()
    reference = Doc(vocab, words=["NF-kappa", "B", "binds", "p50"], spaces=[True, True, True, False])
    reference.spans[KEY] = [Span(reference, 0, 2, "protein"), Span(reference, 3, 4, "protein")]
    predicted = Doc(vocab, words=["NF", "-", "kappa", "B", "binds", "p50"], spaces=[False, False, True, True, True, False])
    predicted.spans[KEY] = [Span(predicted, 2, 4, "protein"), Span(predicted, 4, 5, "protein")]
    assert predicted.text == reference.text
    scores = score_bio_ner([Example(predicted, reference)], spans_key=KEY)
    assert (scores[f"spans_{KEY}_p"], scores[f"spans_{KEY}_r"]) == (0.5, 0.5)
    laid = on_reference_tokens(predicted, reference)
    assert_agree(scores, seqeval_scores(gold_iob_tags([reference], KEY), iob_tags([laid], KEY)))


# GENIA keeps "IL-2" whole; the BioTokenizer splits it.
IL2_WORDS, IL2_SPACES = ["IL-2", "gene", "expression", "in", "T", "cells", "."], [True] * 5 + [False, False]
# Predictions on the BioTokenizer's tokens, by their characters: "IL" and "2 gene" each end or start
# inside the gold token "IL-2"; widened, they overlap, and "IL-2" (protein) is dropped for "IL-2 gene".
IL2_PREDICTIONS = [(0, 2, "protein"), (3, 9, "DNA"), (24, 31, "cell_type")]


def il2_reference(vocab):
    reference = Doc(vocab, words=IL2_WORDS, spaces=IL2_SPACES, sent_starts=[True] + [False] * 6)
    reference.spans[KEY] = [Span(reference, 0, 2, "DNA"), Span(reference, 4, 6, "cell_type")]
    return reference


@Language.component("test_scoring_il2_predictions")
def il2_predictions(doc: Doc) -> Doc:
    """The head's group set to IL2_PREDICTIONS, on whatever tokens the doc has."""
    doc.spans[KEY] = [doc.char_span(s, e, label=label, alignment_mode="expand") for s, e, label in IL2_PREDICTIONS]
    return doc


def test_laying_predictions_on_the_reference_tokens_counts_those_widened_and_dropped():
    """The doc counts what widening did: two predictions had an edge inside "IL-2", one of them was
    dropped, as the gold tokens cannot hold it beside the other. The dropped one is a false positive,
    for seqeval, for the head's scorer and for spaCy's NER scorer alike: the pipeline gave it."""
    vocab = Vocab()
    reference = il2_reference(vocab)
    own = Doc(vocab, words=["IL", "-", "2", *IL2_WORDS[1:]], spaces=[False, False, *IL2_SPACES])
    own.spans[KEY] = [own.char_span(s, e, label=label) for s, e, label in IL2_PREDICTIONS]
    own.ents = list(own.spans[KEY])
    laid = on_reference_tokens(own, reference)
    assert [(s.text, s.label_) for s in laid.spans[KEY]] == [("IL-2 gene", "DNA"), ("T cells", "cell_type")]
    assert laid.user_data[LAID_COUNTS][KEY] == {"predicted": 3, "widened": 2, "dropped": 1,
                                                "dropped_labels": {"protein": 1}}
    assert unplaced_predictions([laid, laid], KEY) == ["protein", "protein"]
    assert unplaced_predictions([laid], None) == ["protein"]  # doc.ents, laid the same way
    assert laid_counts([laid, laid], KEY) == {"predicted": 6, "widened": 4, "dropped": 2}
    assert laid_counts([reference], KEY) is None  # predicted on the reference's tokens
    seqeval = seqeval_scores(gold_iob_tags([reference], KEY), iob_tags([laid], KEY), unplaced_predictions([laid], KEY))
    assert seqeval["entities"] == {"gold": 2, "predicted": 3, "correct": 2}
    assert seqeval["per_type"]["protein"] == {"p": 0.0, "r": 0.0, "f1": 0.0, "support": 0}
    reference.ents = list(reference.spans[KEY])  # for spaCy's NER scores
    scores = score_bio_ner([Example(own, reference)], spans_key=KEY)
    assert_agree(scores, seqeval)
    assert scores[f"spans_{KEY}_p"] == scores["ents_p"] == pytest.approx(2 / 3)


def test_evaluate_reports_the_predictions_widened_and_dropped_on_the_gold_tokens(tmp_path):
    """`evaluate`'s result (and scores.md) say how many of the head's entities were widened to the
    gold tokens and dropped there; with the gold tokens nothing is laid."""
    nlp = spacy.blank("en", config={"nlp": {"tokenizer": {"@tokenizers": "spacy_bioner.BioTokenizer.v1"}}})
    nlp.add_pipe("bio_ner", name=KEY, config={"spans_key": KEY, "model": {"tok2vec": SMALL_TOK2VEC}})
    reference = il2_reference(nlp.vocab)
    nlp.initialize(lambda: [Example(nlp.make_doc(reference.text), reference)])
    nlp.add_pipe("test_scoring_il2_predictions")
    path = tmp_path / "test.spacy"
    DocBin(docs=[reference]).to_disk(path)
    result = evaluate_corpus(nlp, "toy", path)
    assert result["laid_on_gold_tokens"] == {"predicted": 3, "widened": 2, "dropped": 1}
    assert result["seqeval"]["entities"] == {"gold": 2, "predicted": 3, "correct": 2}
    assert result["spacy"]["p"] == result["seqeval"]["p"] == pytest.approx(2 / 3)
    assert evaluate_corpus(nlp, "toy", path, gold_tokens=True)["laid_on_gold_tokens"] is None
    write_metrics({"toy": result}, tmp_path / "metrics")
    assert ("toy: the head's entities 3; widened to the gold tokens (an edge inside one) 2; dropped from the "
            "tags, overlapping another once widened (scored as false positives) 1.") in (
                tmp_path / "metrics" / "scores.md").read_text()
