import itertools
from collections import Counter

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from oracle import path_score
from spacy.tokens import Doc, Span
from spacy.training import biluo_to_iob, iob_to_biluo
from spacy.vocab import Vocab
from thinc.api import NumpyOps

from spacy_bioner.decoding import ConstrainedViterbi, padded_groups
from spacy_bioner.layers.crf import TagScores, pad
from spacy_bioner.layers.crf import viterbi as padded_viterbi
from spacy_bioner.tags import (
    TAG_SCHEMES,
    is_well_formed,
    make_tags,
    spans_to_tags,
    tag_constraints,
    tag_ids_to_spans,
    tags_to_spans,
)

LABEL_SETS = [["X"], ["DNA", "protein"], ["Chemical", "Disease", "RNA"]]


@st.composite
def score_batches(draw):
    scheme = draw(st.sampled_from(list(TAG_SCHEMES)))
    tags = make_tags(draw(st.sampled_from(LABEL_SETS)), scheme)
    lengths = draw(st.lists(st.integers(0, 9), min_size=1, max_size=4))
    scores = [
        draw(arrays("f", (n, len(tags)), elements=st.floats(-20, 20, width=32)))
        for n in lengths
    ]
    return scheme, tags, scores


def viterbi(scores, transitions, start, end):
    """The package's batched Viterbi over documents of any length, empty ones
    included: the paths of the sequential schedule, checked equal to the
    parallel schedule's."""
    keep = [i for i, s in enumerate(scores) if len(s)]
    paths = [np.zeros((0,), dtype="i") for _ in scores]
    if keep:
        padded, lengths = pad(NumpyOps(), [scores[i] for i in keep])
        best = padded_viterbi(padded, lengths, transitions, start, end, recursion="sequential")
        parallel = padded_viterbi(padded, lengths, transitions, start, end, recursion="parallel")
        for row, i in enumerate(keep):
            paths[i] = best[row, : lengths[row]]
            assert_same_or_tied(paths[i], parallel[row, : lengths[row]], scores[i], transitions, start, end)
    return paths


def assert_same_or_tied(path, other, scores, transitions, start, end):
    """The schedules add the same scores in a different order: they may part
    only between paths that tie to within float32 rounding."""
    if not np.array_equal(path, other):
        first, second = (path_score(p, scores, transitions, start, end) for p in (path, other))
        assert abs(first - second) <= 1e-3 * max(abs(first), 1.0)


@settings(max_examples=200, deadline=None)
@given(score_batches())
def test_constrained_viterbi_is_always_well_formed(batch):
    scheme, tags, scores = batch
    paths = viterbi(scores, *tag_constraints(tags))
    assert [len(p) for p in paths] == [len(s) for s in scores]
    for path in paths:
        assert is_well_formed([tags[i] for i in path], scheme)


@settings(max_examples=200, deadline=None)
@given(score_batches())
def test_viterbi_without_constraints_is_argmax(batch):
    _, tags, scores = batch
    n = len(tags)
    paths = viterbi(scores, np.zeros((n, n), "f"), np.zeros(n, "f"), np.zeros(n, "f"))
    for path, score in zip(paths, scores):
        if len(path):
            # Near-ties may be broken either way: compare the scores reached.
            reached = score[np.arange(len(path)), path]
            np.testing.assert_allclose(reached, score.max(axis=1), atol=1e-4)


@settings(max_examples=60, deadline=None)
@given(score_batches(), st.integers(0, 2**31 - 1))
def test_viterbi_finds_the_best_valid_path(batch, seed):
    _, tags, scores = batch
    assume(any(0 < len(score) <= 4 for score in scores))  # a document short enough to enumerate
    rng = np.random.default_rng(seed)
    n = len(tags)
    mask = tag_constraints(tags)
    transitions = mask.transitions + rng.normal(size=(n, n)).astype("f")
    start = mask.start + rng.normal(size=n).astype("f")
    end = mask.end + rng.normal(size=n).astype("f")
    for path, score in zip(viterbi(scores, transitions, start, end), scores):
        if len(score) == 0 or len(score) > 4:
            continue
        best = max(
            path_score(p, score, transitions, start, end)
            for p in itertools.product(range(n), repeat=len(score))
        )
        assert abs(path_score(list(path), score, transitions, start, end) - best) < 1e-2


def test_tags_to_spans():
    tags = ["B-DNA", "I-DNA", "O", "B-protein", "B-protein", "I-protein", "I-protein"]
    assert tags_to_spans(tags) == [(0, 2, "DNA"), (3, 4, "protein"), (4, 7, "protein")]
    assert tags_to_spans([]) == []


def spans_token_by_token(tag_names):
    """The reading `tags_to_spans` gives, one token at a time: B- and U- open an
    entity, I- and L- of its label continue it, anything else ends it."""
    spans, start, label = [], None, None
    for i, tag in enumerate(list(tag_names) + ["O"]):
        prefix, _, tag_label = tag.partition("-")
        if start is not None and not (prefix in ("I", "L") and tag_label == label):
            spans.append((start, i, label))
            start = label = None
        if prefix in ("B", "U"):
            start, label = i, tag_label
    return spans


@settings(max_examples=300, deadline=None)
@given(
    scheme=st.sampled_from(list(TAG_SCHEMES)),
    labels=st.sampled_from(LABEL_SETS + [["cell-line", "B"]]),
    data=st.data(),
)
def test_tag_ids_to_spans_reads_any_sequence_token_by_token(scheme, labels, data):
    """Skipping the O tokens reads every sequence, ill-formed ones too ("I-X" after
    O, "L-X" then "I-X", a label with a hyphen), as the token-by-token loop does."""
    tags = make_tags(labels, scheme)
    ids = np.asarray(data.draw(st.lists(st.integers(0, len(tags) - 1), max_size=12)), dtype="i")
    names = [tags[i] for i in ids]
    assert tag_ids_to_spans(ids, tags) == spans_token_by_token(names) == tags_to_spans(names)


def test_transition_mask_forbids_only_invalid_continuations():
    tags = make_tags(["A", "B"])  # O B-A B-B I-A I-B
    transitions, start, end = tag_constraints(tags)
    allowed = {(tags[i], tags[j]) for i in range(5) for j in range(5) if transitions[i, j] == 0}
    assert ("B-A", "I-A") in allowed and ("I-A", "I-A") in allowed
    assert ("O", "I-A") not in allowed and ("B-B", "I-A") not in allowed
    assert [t for t, s in zip(tags, start) if s < 0] == ["I-A", "I-B"]
    assert not end.any()  # IOB2: an entity may end anywhere


def test_tags_to_spans_reads_biluo():
    tags = ["B-DNA", "L-DNA", "O", "U-protein", "B-protein", "I-protein", "L-protein"]
    assert tags_to_spans(tags) == [(0, 2, "DNA"), (3, 4, "protein"), (4, 7, "protein")]


@pytest.mark.parametrize("scheme", list(TAG_SCHEMES))
def test_constraints_allow_exactly_the_sequences_spacy_reads(scheme):
    """Every sequence of up to 4 tags over two labels is allowed by the
    constraints iff spaCy would write it for some entities (IOB2: no I- after
    O or another label; BILUO: also spaCy's iob_to_biluo of its IOB2 form)."""
    tags = make_tags(["A", "B"], scheme)
    n_allowed = 0
    for n in range(1, 5):
        for sequence in itertools.product(tags, repeat=n):
            iob = biluo_to_iob(sequence)
            reads = all(
                not tag.startswith("I-") or (previous != "O" and previous[2:] == tag[2:])
                for previous, tag in zip(["O"] + iob, iob)
            )
            if scheme == "BILUO":
                reads = reads and iob_to_biluo(iob) == list(sequence)
            assert is_well_formed(list(sequence), scheme) == reads, sequence
            n_allowed += reads
    assert n_allowed > 20


@pytest.mark.parametrize("scheme", list(TAG_SCHEMES))
@pytest.mark.parametrize("label", ["CELL-LINE", "MENU-ITEM", "cell_line"])
def test_spans_to_tags_and_back_keep_hyphenated_labels_and_edges(scheme, label):
    """Single-token entities at both ends, adjacent entities of one label and
    labels holding "L-" or "U-" survive spans -> tags -> spans in both schemes."""
    doc = Doc(Vocab(), words=list("abcdefg"))
    bounds = [(0, 1, label), (1, 3, label), (3, 4, label), (4, 6, "X"), (6, 7, label)]
    spans = [Span(doc, start, end, name) for start, end, name in bounds]
    tags = spans_to_tags(len(doc), spans, scheme)
    assert is_well_formed(tags, scheme)
    assert tags_to_spans(tags) == [(s.start, s.end, s.label_) for s in spans]


@pytest.mark.parametrize("tags", [["B-X", "FOO"], ["B-X", "B-"], ["O", "I"]])
def test_tags_without_a_label_are_not_well_formed(tags):
    assert not is_well_formed(tags, "IOB2") and not is_well_formed(tags, "BILUO")


@pytest.mark.parametrize("recursion", ["sequential", "parallel"])
def test_crf_confidences_are_probabilities(recursion):
    """CRF marginals in float32 can round past 1; a tag's confidence may not."""
    tags = make_tags(["A", "B"])
    decoder = ConstrainedViterbi(tags)
    n = len(tags)
    for seed in range(20):
        emissions = [(np.random.default_rng(seed).normal(size=(12, n)) * 10).astype("f")]
        scores = TagScores(emissions, np.zeros((n, n), "f"), np.zeros(n, "f"), np.zeros(n, "f"), recursion)
        _, confidences = decoder(NumpyOps(), scores)
        assert 0.0 <= confidences[0].min() and confidences[0].max() <= 1.0, seed


@pytest.mark.parametrize("crf", [False, True])
@pytest.mark.parametrize("recursion", ["sequential", "parallel"])
@pytest.mark.parametrize("scheme", ["IOB2", "BILUO"])
def test_scores_past_the_constraints_penalty_still_decode_well_formed(crf, recursion, scheme):
    """The constraints were a finite penalty in Viterbi too: a token's score gap past it (a
    diverged model's scores) gave "I-A I-A" at a document's start, an entity nothing reads."""
    tags = make_tags(["A", "B"], scheme)
    n = len(tags)
    rng = np.random.default_rng(0)
    emissions = [(rng.normal(size=(length, n)) * 3e4).astype("f") for length in (1, 2, 5, 17)]
    learned = (np.zeros((n, n), "f"), np.zeros(n, "f"), np.zeros(n, "f")) if crf else ()
    paths, confidences = ConstrainedViterbi(tags)(NumpyOps(), TagScores(emissions, *learned, recursion=recursion))
    for path, confidence in zip(paths, confidences):
        assert is_well_formed([tags[i] for i in path], scheme), [tags[i] for i in path]
        assert np.isfinite(confidence).all()


def test_padded_groups_keep_a_batch_whole_and_set_a_long_document_apart():
    # 3 documents of 4 tokens fit 12 padded tokens: one batch, in the order given.
    assert padded_groups([4, 0, 3, 4], cells_per_token=1, budget=12) == [[0, 2, 3]]
    # One of 40 tokens would pad the others to 40: by length, each batch within the budget.
    lengths = [4, 40, 3, 4, 0, 5]
    groups = padded_groups(lengths, cells_per_token=1, budget=12)
    assert sorted(i for group in groups for i in group) == [0, 1, 2, 3, 5]
    assert groups[-1] == [1]
    assert all(len(g) * max(lengths[i] for i in g) <= 12 for g in groups[:-1])
    # A batch fills up to the budget exactly, and no further (15 cells of three would be over).
    assert padded_groups([5, 5, 5], cells_per_token=1, budget=15) == [[0, 1, 2]]
    assert padded_groups([5, 5, 5], cells_per_token=1, budget=14) == [[0, 1], [2]]
    assert padded_groups([5, 5, 1, 5], cells_per_token=1, budget=15) == [[2, 0, 1], [3]]
    assert padded_groups([0, 0], cells_per_token=1) == []


@pytest.mark.parametrize("span_scores", ["segment", "token_mean"])
@pytest.mark.parametrize("recursion", ["sequential", "parallel"])
@pytest.mark.parametrize("crf", [True, False], ids=["crf", "softmax"])
def test_decoding_in_groups_gives_what_one_batch_gives(crf, recursion, span_scores):
    """A batch over the decoder's memory budget is decoded in groups by length:
    each document's path and confidences are those of the whole batch at once."""
    tags = make_tags(["A", "B"], "BILUO")
    n = len(tags)
    rng = np.random.default_rng(1)
    emissions = [rng.normal(scale=2.0, size=(length, n)).astype("f") for length in (3, 60, 0, 5, 2, 7)]
    params = [rng.normal(size=shape).astype("f") for shape in ((n, n), (n,), (n,))] if crf else []
    scores = TagScores(emissions, *params, recursion=recursion)
    whole = ConstrainedViterbi(tags, span_scores)(NumpyOps(), scores)
    assert len(padded_groups([len(e) for e in emissions], n * n, 10 * n * n)) > 2
    grouped = ConstrainedViterbi(tags, span_scores, max_cells=10 * n * n)(NumpyOps(), scores)
    for whole_of, grouped_of in zip(whole, grouped):
        for a, b in zip(whole_of, grouped_of):
            np.testing.assert_array_equal(b, a) if a.dtype.kind == "i" else np.testing.assert_allclose(b, a, rtol=1e-5)


def entity_probabilities(emissions, transitions, start, end, tags) -> Counter:
    """The CRF probability of each (start, end, label) that is one of a document's
    entities on some tag path, summed over every path by enumeration."""
    paths = list(itertools.product(range(len(tags)), repeat=len(emissions)))
    scores = np.asarray([path_score(p, emissions, transitions, start, end) for p in paths])
    weights = np.exp(scores - scores.max())
    weights /= weights.sum()
    probabilities = Counter()
    for weight, path in zip(weights, paths):
        for entity in tag_ids_to_spans(np.asarray(path), tags):
            probabilities[entity] += weight
    return probabilities


@pytest.mark.parametrize("scheme", list(TAG_SCHEMES))
@pytest.mark.parametrize("recursion", ["sequential", "parallel"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_a_crf_entitys_segment_score_is_the_probability_of_exactly_that_entity(dtype, recursion, scheme):
    tags = make_tags(["A", "B"], scheme)
    decoder = ConstrainedViterbi(tags, span_scores="segment")
    rng = np.random.default_rng(0)
    n_tags = len(tags)
    checked = 0
    for lengths in ([4, 2, 1, 3], [3, 4]):
        emissions = [rng.normal(scale=1.5, size=(n, n_tags)) for n in lengths]
        params = [rng.normal(size=shape) for shape in ((n_tags, n_tags), (n_tags,), (n_tags,))]
        scores = TagScores([e.astype(dtype) for e in emissions], *(p.astype(dtype) for p in params), recursion=recursion)
        paths, confidences = decoder(NumpyOps(), scores)
        masked = [p + m for p, m in zip(params, tag_constraints(tags))]
        for scores_of_doc, path, confidence in zip(emissions, paths, confidences):
            probabilities = entity_probabilities(scores_of_doc, *masked, tags)
            for begin, finish, label in tag_ids_to_spans(path, tags):
                expected = probabilities[begin, finish, label]
                # Confidences are float32 on the host, whatever the scores' precision.
                np.testing.assert_allclose(confidence[begin:finish], expected, rtol=1e-4 if dtype == "float32" else 1e-6)
                checked += 1
    assert checked >= 5
    # Mean token marginals, as before the setting, overstate it: the entity needs every token at once.
    _, token_confidences = ConstrainedViterbi(tags)(NumpyOps(), scores)
    for path, segment, tokens in zip(paths, confidences, token_confidences):
        for begin, finish, _ in tag_ids_to_spans(path, tags):
            assert segment[begin] <= tokens[begin:finish].min() * (1 + 1e-5)


def test_a_softmax_entitys_segment_score_multiplies_its_tags_probabilities():
    """The tokens of a softmax tagger are independent: an entity has the product of its
    tags' probabilities, and in IOB2 the next token's chance not to go on with it."""
    tags = make_tags(["A"], "IOB2")  # O, B-A, I-A
    probabilities = np.asarray([[0.1, 0.7, 0.2], [0.2, 0.1, 0.7], [0.6, 0.1, 0.3], [0.3, 0.6, 0.1]])
    scores = TagScores([np.log(probabilities)])
    [path], [confidence] = ConstrainedViterbi(tags, span_scores="segment")(NumpyOps(), scores)
    assert [tags[i] for i in path] == ["B-A", "I-A", "O", "B-A"]
    first = 0.7 * 0.7 * (1 - 0.3)  # B-A, I-A, and the O after it not I-A
    np.testing.assert_allclose(confidence, [first, first, 0.6, 0.6], rtol=1e-6)
    biluo = make_tags(["A"], "BILUO")  # O, B-A, I-A, L-A, U-A: the end is in the tags
    probabilities = np.asarray([[0.1, 0.6, 0.1, 0.1, 0.1], [0.1, 0.1, 0.1, 0.6, 0.1]])
    [path], [confidence] = ConstrainedViterbi(biluo, span_scores="segment")(NumpyOps(), TagScores([np.log(probabilities)]))
    assert [biluo[i] for i in path] == ["B-A", "L-A"]
    np.testing.assert_allclose(confidence, [0.36, 0.36], rtol=1e-6)


def test_unknown_span_scores_are_refused_with_the_choices():
    with pytest.raises(ValueError, match=r"Unknown span_scores 'mean': use one of \['segment', 'token_mean'\]"):
        ConstrainedViterbi(make_tags(["A"]), span_scores="mean")
