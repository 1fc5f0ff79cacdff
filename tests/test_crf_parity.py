"""The device CRF, Viterbi and losses against the float64 log-space oracle (tests/oracle.py).

The package computes in the scores' precision on their device; on NumPy this
checks float64 to 1e-9 and float32 to 1e-4 of each array's scale, with the
paths identical, on random batches with missing annotation, in both tag
schemes (BILUO adds constraints on the last tag).
"""

import warnings

import numpy as np
import oracle
import pytest
from oracle import TOLERANCES, assert_close, random_batch
from spacy.util import registry
from thinc.api import NumpyOps, noop

from spacy_bioner.decoding import ConstrainedViterbi
from spacy_bioner.architectures import build_token_tagger
from spacy_bioner.layers import crf
from spacy_bioner.layers.crf import TagScores, constrained_statistics, forward_backward, pad, path_marginals, viterbi
from spacy_bioner.losses import CRFLoss
from spacy_bioner.tags import TAG_SCHEMES, make_tags, tag_constraints

TAGS = make_tags(["DNA", "protein"])  # 5 tags
SCHEMES = list(TAG_SCHEMES)
OPS = NumpyOps()
SCHEDULES = ["sequential", "parallel"]
N_DOCS = 7  # in a random batch


def masked(params, tags):
    """Learned CRF scores plus the tag scheme's constraints."""
    return [p + m for p, m in zip(params, tag_constraints(tags))]


@pytest.mark.parametrize("tag_scheme", SCHEMES)
@pytest.mark.parametrize("recursion", SCHEDULES)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("seed", range(5))
def test_crf_loss_and_gradients_match_the_oracle(seed, dtype, recursion, tag_scheme):
    tags = make_tags(["DNA", "protein"], tag_scheme)
    emissions, params, golds = random_batch(N_DOCS, tag_constraints(tags), seed)
    loss_fn = CRFLoss(scheme="inverse_frequency")
    counts = {tag: 1 + 10 * i for i, tag in enumerate(tags)}
    loss_fn.fit(tags, counts)
    scores = TagScores([e.astype(dtype) for e in emissions], *(p.astype(dtype) for p in params), recursion=recursion)
    d_scores, loss = loss_fn(scores, golds)
    # A missing tag weighs the mean class weight of the batch's known tags.
    weights = loss_fn.token_weights(golds, missing=np.nan)
    missing_weight = np.nanmean(np.concatenate(weights), dtype="float64")
    weights = [np.where(gold >= 0, w, missing_weight) for w, gold in zip(weights, golds)]
    expected_loss, expected_d, expected_params = oracle.crf_negative_log_likelihood(
        params, emissions, golds, weights, tag_constraints(tags)
    )
    assert loss == pytest.approx(expected_loss, rel=TOLERANCES[dtype])
    assert len(d_scores.emissions) == len(expected_d)
    for actual, expected in zip(d_scores.emissions, expected_d):
        assert actual.dtype == np.dtype(dtype)
        assert_close(actual, expected, dtype)
    for actual, expected in zip((d_scores.transitions, d_scores.start, d_scores.end), expected_params):
        assert_close(actual, expected, dtype)


@pytest.mark.parametrize("tag_scheme", SCHEMES)
@pytest.mark.parametrize("recursion", SCHEDULES)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("seed", range(5))
def test_marginals_and_paths_match_the_oracle(seed, dtype, recursion, tag_scheme):
    tags = make_tags(["DNA", "protein"], tag_scheme)
    emissions, params, _ = random_batch(N_DOCS, tag_constraints(tags), seed)
    transitions, start, end = masked(params, tags)
    padded, lengths = pad(OPS, [e.astype(dtype) for e in emissions])
    cast = [a.astype(dtype) for a in (transitions, start, end)]
    log_z, marginals, pairwise = forward_backward(padded, lengths, *cast, recursion=recursion)
    expected = [oracle.forward_backward_one(e, transitions, start, end) for e in emissions]
    assert_close(log_z, [log_z for log_z, _, _ in expected], dtype)
    for row, (_, reference, _) in enumerate(expected):
        assert_close(marginals[row, : lengths[row]], reference, dtype)
        assert not marginals[row, lengths[row] :].any()
    assert_close(pairwise, sum(pairs for _, _, pairs in expected), dtype)
    paths = viterbi(padded, lengths, *cast, recursion=recursion)
    for row, reference in enumerate(oracle.viterbi(emissions, transitions, start, end)):
        np.testing.assert_array_equal(paths[row, : lengths[row]], reference)
    # The marginals along paths: the best ones, and any tag ids (random ones
    # pass forbidden tags too, of probability 0).
    random = np.random.default_rng(seed).integers(0, len(tags), size=padded.shape[:2]).astype("int32")
    for tag_paths in (paths, random):
        on_path, onward = path_marginals(padded, lengths, *cast, tag_paths, recursion=recursion)
        assert on_path.dtype == onward.dtype == np.dtype(dtype)
        assert on_path.shape == padded.shape[:2] and onward.shape == (len(lengths), padded.shape[1] - 1, len(tags))
        assert_path_marginals_match(tag_paths, on_path, onward, emissions, lengths, (transitions, start, end), dtype)


def assert_path_marginals_match(paths, on_path, onward, emissions, lengths, params, dtype):
    """`path_marginals`' results against the oracle's marginals, document by document."""
    for row, length in enumerate(lengths):
        _, marginals, pairs = oracle.marginals_one(np.asarray(emissions[row][:length], "float64"), *params)
        path = paths[row, :length]
        assert_close(on_path[row, :length], marginals[np.arange(length), path], dtype)
        assert_close(onward[row, : length - 1], pairs[np.arange(length - 1), path[:-1]], dtype)
        assert not on_path[row, length:].any() and not onward[row, length - 1 :].any()


@pytest.mark.parametrize("tag_scheme", SCHEMES)
@pytest.mark.parametrize("recursion", SCHEDULES)
def test_decoder_confidences_are_crf_marginals_or_softmax_probabilities(recursion, tag_scheme):
    tags = make_tags(["DNA", "protein"], tag_scheme)
    emissions, params, _ = random_batch(N_DOCS, tag_constraints(tags), 0)
    decoder = ConstrainedViterbi(tags)
    transitions, start, end = masked(params, tags)
    paths, confidences = decoder(OPS, TagScores(emissions, *params, recursion=recursion))
    for scores, path, confidence in zip(emissions, paths, confidences):
        _, marginals, _ = oracle.forward_backward_one(scores, transitions, start, end)
        np.testing.assert_allclose(confidence, marginals[np.arange(len(path)), path], rtol=1e-6)
    paths, confidences = decoder(OPS, TagScores(emissions, recursion=recursion))
    for scores, path, confidence in zip(emissions, paths, confidences):
        probs = np.exp(scores - scores.max(axis=1, keepdims=True))
        probs /= probs.sum(axis=1, keepdims=True)
        np.testing.assert_allclose(confidence, probs[np.arange(len(path)), path], rtol=1e-6)


def long_batch(seed: int, lengths, dtype: str):
    """Scores of the size a head sees: abstracts of hundreds of tokens, 11 tags,
    emissions spread as a trained head's are."""
    tags = make_tags(["DNA", "RNA", "cell_line", "cell_type", "protein"])
    rng = np.random.default_rng(seed)
    n_tags = len(tags)
    mask_transitions, mask_start, _ = tag_constraints(tags)
    padded = rng.normal(scale=8.0, size=(len(lengths), max(lengths), n_tags)).astype(dtype)
    params = (
        (mask_transitions + rng.normal(scale=3.0, size=(n_tags, n_tags))).astype(dtype),
        (mask_start + rng.normal(size=n_tags)).astype(dtype),
        rng.normal(size=n_tags).astype(dtype),
    )
    return padded, np.asarray(lengths), params


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("lengths", [[1], [1, 1, 1], [2, 1], [300, 17, 1, 256, 299], [1000, 3]])
def test_parallel_schedule_equals_the_sequential_one(lengths, dtype):
    padded, lengths, params = long_batch(len(lengths), lengths, dtype)
    expected = forward_backward(padded, lengths, *params, recursion="sequential")
    for actual, reference in zip(forward_backward(padded, lengths, *params, recursion="parallel"), expected):
        assert actual.dtype == padded.dtype
        assert_close(actual, reference, dtype)
    golds = np.where(np.random.default_rng(0).random(padded.shape[:2]) < 0.5, -1, viterbi(padded, lengths, *params))
    golds[np.arange(padded.shape[1])[None, :] >= lengths[:, None]] = -1
    partial = list(range(len(lengths)))
    expected = constrained_statistics(padded, lengths, golds, partial, *params, recursion="sequential")
    actual = constrained_statistics(padded, lengths, golds, partial, *params, recursion="parallel")
    for array, reference in zip(actual, expected):
        assert_close(array, reference, dtype)
    paths = viterbi(padded, lengths, *params, recursion="parallel")
    reference = viterbi(padded, lengths, *params, recursion="sequential")
    for row, length in enumerate(lengths):
        np.testing.assert_array_equal(paths[row, :length], reference[row, :length])


@pytest.mark.parametrize("recursion", SCHEDULES)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_scores_of_a_trained_heads_range_need_no_log_space_fallback(dtype, recursion):
    padded, lengths, params = long_batch(3, [300, 17, 1, 256, 299], dtype)
    fast = crf._forward_backward_parallel if recursion == "parallel" else crf._forward_backward_sequential
    trusted = fast(crf.ScaledScores.of(padded, lengths, *params))[3]
    assert trusted.all()


def confused_batch(tags, gap: float, seed: int = 2):
    """Emissions whose best tag at every token ignores the scheme, `gap` nats
    ahead of the rest: where the scheme forbids it, every allowed path is
    that far behind, beyond the range of float32 products for large gaps."""
    rng = np.random.default_rng(seed)
    lengths = np.asarray([200, 150, 37, 1])
    emissions = rng.normal(size=(len(lengths), lengths.max(), len(tags)))
    np.put_along_axis(emissions, rng.integers(0, len(tags), size=emissions.shape[:2])[:, :, None], gap, axis=2)
    return emissions, lengths


@pytest.mark.parametrize("tag_scheme", SCHEMES)
@pytest.mark.parametrize("recursion", SCHEDULES)
@pytest.mark.parametrize("gap", [40, 60, 200])
def test_scores_beyond_float32_products_fall_back_to_log_space_and_match_the_oracle(gap, recursion, tag_scheme):
    tags = make_tags(["A", "B", "C", "D"], tag_scheme)
    emissions, lengths = confused_batch(tags, gap)
    constraints = [m.astype("float64") for m in tag_constraints(tags)]
    padded = emissions.astype("float32")
    log_z, marginals, pairwise = forward_backward(
        padded, lengths, *(m.astype("float32") for m in constraints), recursion=recursion
    )
    assert log_z.dtype == marginals.dtype == pairwise.dtype == np.float32
    expected = [oracle.forward_backward_one(padded[b, :n].astype("float64"), *constraints)
                for b, n in enumerate(lengths)]
    assert_close(log_z, [z for z, _, _ in expected], "float32")
    for row, (_, reference, _) in enumerate(expected):
        assert_close(marginals[row, : lengths[row]], reference, "float32")
    assert_close(pairwise, sum(pairs for _, _, pairs in expected), "float32")


@pytest.mark.parametrize("recursion", SCHEDULES)
def test_path_marginals_of_documents_redone_in_log_space_match_the_oracle(recursion):
    tags = make_tags(["A", "B", "C", "D"], "BILUO")
    emissions, lengths = confused_batch(tags, 200)
    constraints = [m.astype("float64") for m in tag_constraints(tags)]
    padded = emissions.astype("float32")
    cast = [m.astype("float32") for m in constraints]
    paths = viterbi(padded, lengths, *cast, recursion=recursion)
    on_path, onward = path_marginals(padded, lengths, *cast, paths, recursion=recursion)
    assert_path_marginals_match(paths, on_path, onward, padded, lengths, constraints, "float32")


def path_flushed_while_behind(kind: str) -> np.ndarray:
    """(1, T, 3) emissions over O, B-X, I-X whose best paths start far behind:
    "two-steps", 60 nats down at each of two tokens (the forward pass flushes
    them, each step's total stays in range); "one-potential", a B-X 110 nats
    down, whose potential exp() flushes to zero in float32. Then I-X leads."""
    if kind == "two-steps":
        emissions = np.zeros((1, 12, 3))
        emissions[0, 0], emissions[0, 1], emissions[0, 2:] = [0, -60, -80], [0, -200, -60], [-25, -200, 0]
    else:
        emissions = np.zeros((1, 20, 3))
        emissions[0, :, 0], emissions[0, :, 1] = -30, -110
    return emissions


@pytest.mark.parametrize("recursion", SCHEDULES)
@pytest.mark.parametrize("kind", ["two-steps", "one-potential"])
def test_paths_flushed_while_far_behind_fall_back_to_log_space(kind, recursion):
    """Each step's total in range, yet the best paths lost: log Z, the marginals,
    the loss's gradients and the decoder's confidences follow the oracle, not NaN."""
    tags = make_tags(["X"])
    constraints = [m.astype("float64") for m in tag_constraints(tags)]
    emissions = path_flushed_while_behind(kind).astype("float32")
    lengths = np.asarray([emissions.shape[1]])
    log_z, marginals, _ = forward_backward(emissions, lengths, *(m.astype("f") for m in constraints), recursion=recursion)
    expected_z, expected_marginals, _ = oracle.forward_backward_one(emissions[0].astype("float64"), *constraints)
    assert_close(log_z, [expected_z], "float32")
    assert_close(marginals[0], expected_marginals, "float32")
    zeros = [np.zeros(shape, "f") for shape in ((3, 3), (3,), (3,))]
    loss = CRFLoss()
    loss.fit(tags, {tag: 1 for tag in tags})
    gold = np.array([1] + [2] * (emissions.shape[1] - 1), "i")
    d_scores, value = loss(TagScores([emissions[0]], *zeros, recursion=recursion), [gold])
    assert value >= 0 and np.isfinite(d_scores.emissions[0]).all() and np.isfinite(d_scores.transitions).all()
    _, [confidence] = ConstrainedViterbi(tags)(OPS, TagScores([emissions[0]], *zeros, recursion=recursion))
    assert_close(confidence, expected_marginals.max(axis=1), "float32")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_each_check_of_a_scaled_result_refuses_it_alone(dtype):
    """What sends a document to the log-space recursion, check by check: the cases above
    trip several at once. Two documents of three tokens, the second padding after two."""
    inside = np.array([[True, True, True], [True, True, False]])
    below_floor = np.finfo(dtype).tiny ** 0.5 / 2

    def sequential(scale=None, closing=None, marginals=None):
        scale = np.ones((2, 3), dtype) if scale is None else scale
        closing = np.ones(2, dtype) if closing is None else closing
        if marginals is None:
            marginals = np.zeros((2, 3, 3), dtype)
            marginals[..., 0] = 1
        return crf._trusted_sequential(scale, closing, marginals, inside).tolist()

    assert sequential() == [True, True]
    lost = np.ones((2, 3), dtype)
    lost[1, 1] = below_floor
    assert sequential(scale=lost) == [True, False]
    lost[1, 1], lost[1, 2] = 1, below_floor  # padding: never read
    assert sequential(scale=lost) == [True, True]
    assert sequential(closing=np.array([1, below_floor], dtype)) == [True, False]
    half = np.zeros((2, 3, 3), dtype)
    half[..., 0] = 1
    half[0, 1, 0] = 0.5  # a token whose marginals do not sum to 1
    assert sequential(marginals=half) == [False, True]

    def parallel(log_z_at=None, total=None):
        log_z_at = np.full((2, 3), 7, dtype) if log_z_at is None else log_z_at
        total = np.ones((2, 3), dtype) if total is None else total
        return crf._trusted_parallel(log_z_at, total, inside).tolist()

    assert parallel() == [True, True]
    assert parallel(total=np.array([[1, below_floor, 1], [1, 1, 1]], dtype)) == [False, True]
    assert parallel(log_z_at=np.array([[7, 7, 7], [7, 9, 7]], dtype)) == [True, False]  # log Z drifts
    assert parallel(log_z_at=np.array([[7, 7, 7], [7, 7, 9]], dtype)) == [True, True]  # in padding
    assert parallel(log_z_at=np.array([[np.nan] * 3, [7, 7, 7]], dtype)) == [False, True]


@pytest.mark.slow
def test_a_long_document_in_range_needs_no_log_space_fallback():
    """float32 rounding drifts the marginals' sums along a document (about 6e-9 a
    token with 21 tags): 200,000 tokens (a million characters) stay trusted."""
    rng = np.random.default_rng(0)
    n_tags, length = 21, 200_000
    emissions = (rng.standard_normal((1, length, n_tags)) * 5).astype("f")
    transitions = rng.standard_normal((n_tags, n_tags)).astype("f")
    bounds = np.zeros(n_tags, "f")
    scaled = crf.ScaledScores.of(emissions, np.asarray([length]), transitions, bounds, bounds)
    trusted = crf._forward_backward_sequential(scaled)[3]
    assert trusted.all()


@pytest.mark.parametrize("tag_scheme", SCHEMES)
def test_the_log_space_recursion_matches_the_oracle(tag_scheme):
    tags = make_tags(["DNA", "protein"], tag_scheme)
    emissions, params, _ = random_batch(N_DOCS, tag_constraints(tags), 4)
    transitions, start, end = masked(params, tags)
    padded, lengths = pad(OPS, emissions)
    log_z, marginals, pairwise, _ = crf._forward_backward_log(padded, lengths, transitions, start, end)
    expected = [oracle.forward_backward_one(e, transitions, start, end) for e in emissions]
    assert_close(log_z, [z for z, _, _ in expected], "float64")
    for row, (_, reference, _) in enumerate(expected):
        assert_close(marginals[row, : lengths[row]], reference, "float64")
        assert not marginals[row, lengths[row]:].any()
    assert_close(pairwise, sum(pairs for _, _, pairs in expected), "float64")


@pytest.mark.parametrize("recursion", SCHEDULES)
def test_float32_viterbi_of_a_long_document_finds_the_float64_path(recursion):
    """Path scores summed over 20,000 tokens of uncentred emissions (a head's
    are not centred) outgrow float32's resolution unless renormalised."""
    tags = make_tags(["A", "B"])
    rng = np.random.default_rng(0)
    emissions = (rng.normal(scale=2.0, size=(1, 20_000, len(tags))) + 12.0).astype("float32")
    params = [(m + rng.normal(size=m.shape)).astype("float32") for m in tag_constraints(tags)]
    lengths = np.asarray([emissions.shape[1]])
    expected = viterbi(emissions.astype("float64"), lengths, *(p.astype("float64") for p in params))
    np.testing.assert_array_equal(viterbi(emissions, lengths, *params, recursion=recursion), expected)


def test_parallel_viterbi_in_chunks_of_documents_gives_the_same_paths(monkeypatch):
    padded, lengths, params = long_batch(1, [40, 3, 39, 12], "float32")
    whole = viterbi(padded, lengths, *params, recursion="parallel")
    monkeypatch.setattr(crf, "MAX_PLUS_CHUNK", 1)  # one document at a time
    np.testing.assert_array_equal(viterbi(padded, lengths, *params, recursion="parallel"), whole)


@pytest.mark.parametrize("block", [1, 5, 64])
def test_parallel_viterbi_in_blocks_of_one_long_document_gives_the_same_paths(monkeypatch, block):
    padded, lengths, params = long_batch(3, [300, 41, 1], "float64")
    n_tags = padded.shape[2]
    expected = viterbi(padded, lengths, *params, recursion="sequential")
    monkeypatch.setattr(crf, "MAX_PLUS_CHUNK", block * n_tags**3)  # `block` matrices at a time
    paths = viterbi(padded, lengths, *params, recursion="parallel")
    for row, length in enumerate(lengths):  # past a document's end the entries are meaningless
        np.testing.assert_array_equal(paths[row, :length], expected[row, :length])


def test_the_max_plus_scan_of_one_long_document_stays_within_its_chunk(monkeypatch):
    """NumPy reports its buffers to tracemalloc: the largest intermediate of
    the scan is bounded by MAX_PLUS_CHUNK, not by the document's length."""
    import tracemalloc

    matrices = np.random.default_rng(0).normal(size=(1, 2000, 11, 11))
    chunk = 8 * 11**3
    monkeypatch.setattr(crf, "MAX_PLUS_CHUNK", chunk)
    tracemalloc.start()
    try:
        crf._max_plus_prefix(matrices)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # The copy it returns, plus a few chunk-sized temporaries; one round over
    # the whole document would take 2000 * 11^3 * 8 bytes (21 MB) at once.
    assert peak < matrices.nbytes + 4 * chunk * matrices.itemsize


def test_auto_is_the_sequential_schedule_on_the_cpu():
    padded, lengths, params = long_batch(2, [30, 7], "float32")
    for auto, sequential in zip(
        forward_backward(padded, lengths, *params, recursion="auto"),
        forward_backward(padded, lengths, *params, recursion="sequential"),
    ):
        np.testing.assert_array_equal(auto, sequential)


def test_an_unknown_recursion_is_refused_when_the_model_is_built():
    with pytest.raises(ValueError, match="'sequential', 'parallel'"):
        build_token_tagger(tok2vec=noop(), crf=True, recursion="scan")
    with pytest.raises(ValueError, match="'sequential', 'parallel'"):
        build_token_tagger(tok2vec=noop(), crf=False, recursion="scan")


@pytest.mark.parametrize("crf_head", [True, False])
def test_the_heads_schedule_reaches_its_scores(crf_head):
    model = build_token_tagger(tok2vec=noop(), nO=len(TAGS), crf=crf_head, recursion="parallel")
    vectors = [np.ones((n, 4), dtype="f") for n in (3, 1)]
    model.initialize(X=vectors)
    scores = model.predict(vectors)
    assert scores.recursion == "parallel" and scores.has_transitions == crf_head
    # TokenTagger.v1 (older pipelines) builds with the default, "auto".
    older = registry.architectures.get("spacy_bioner.TokenTagger.v1")(tok2vec=noop(), nO=len(TAGS), crf=crf_head)
    older.initialize(X=vectors)
    assert older.predict(vectors).recursion == "auto"


@pytest.mark.parametrize("recursion", SCHEDULES)
def test_the_range_fallback_raises_no_floating_point_warning(recursion):
    """Batches where some documents leave float32's range and are redone in log
    space: NumPy's overflow warnings are the recursions' own business, never the user's."""
    rng = np.random.default_rng(0)
    tags = make_tags(["A", "B", "C"], "BILUO")
    constraints = tag_constraints(tags)
    n_tags = len(tags)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        for _ in range(200):
            lengths = rng.integers(1, 40, size=rng.integers(1, 5))
            emissions = rng.normal(size=(len(lengths), lengths.max(), n_tags)) * rng.choice([1, 5, 30, 300])
            params = [
                m + rng.normal(size=m.shape)
                for m in (constraints.transitions, constraints.start, constraints.end)
            ]
            log_z, _, _ = forward_backward(
                emissions.astype("f"), lengths, *(p.astype("f") for p in params), recursion=recursion
            )
            # ...and every document's log Z is right, trusted or redone.
            wide = [p.astype("f").astype("float64") for p in params]
            expected = [oracle.forward_backward_one(emissions[b, :n].astype("f").astype("float64"), *wide)[0]
                        for b, n in enumerate(lengths)]
            assert_close(log_z, expected, "float32")
