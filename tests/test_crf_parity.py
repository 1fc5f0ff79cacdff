"""The device CRF, Viterbi and losses against the float64 log-space oracle (tests/oracle.py).

The package computes in the scores' precision on their device; on NumPy this
checks float64 to 1e-9 and float32 to 1e-4 of each array's scale, with the
paths identical, on random batches with missing annotation.
"""

import numpy as np
import oracle
import pytest
from thinc.api import NumpyOps

from spacy_bioner.decoding import ConstrainedViterbi
from spacy_bioner.layers.crf import TagScores, forward_backward, pad, viterbi
from spacy_bioner.losses import CRFLoss
from spacy_bioner.tags import make_tags, transition_mask

TAGS = make_tags(["DNA", "protein"])  # 5 tags
OPS = NumpyOps()
TOLERANCES = {"float64": 1e-9, "float32": 1e-4}


def random_batch(seed: int):
    """Emissions, learned CRF scores and valid gold paths with some tags missing."""
    rng = np.random.default_rng(seed)
    n_tags = len(TAGS)
    lengths = rng.integers(1, 14, size=7)
    emissions = [rng.normal(scale=3.0, size=(n, n_tags)) for n in lengths]
    params = [rng.normal(size=(n_tags, n_tags)), rng.normal(size=n_tags), rng.normal(size=n_tags)]
    mask_transitions, mask_start = transition_mask(TAGS)
    gold_scores = [rng.normal(size=(n, n_tags)) for n in lengths]
    golds = oracle.viterbi(gold_scores, mask_transitions.astype("float64"), mask_start.astype("float64"), np.zeros(n_tags))
    golds = [g.astype("i") for g in golds]
    for gold in golds[::2]:  # every other document has missing tags
        gold[rng.random(len(gold)) < 0.4] = -1
    return emissions, params, golds


def assert_close(actual, expected, dtype):
    expected = np.asarray(expected, dtype="float64")
    scale = max(float(np.abs(expected).max(initial=0.0)), 1.0)
    np.testing.assert_allclose(np.asarray(actual, dtype="float64"), expected, rtol=TOLERANCES[dtype], atol=TOLERANCES[dtype] * scale)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("seed", range(5))
def test_crf_loss_and_gradients_match_the_oracle(seed, dtype):
    emissions, params, golds = random_batch(seed)
    loss_fn = CRFLoss(scheme="inverse_frequency")
    counts = {tag: 1 + 10 * i for i, tag in enumerate(TAGS)}
    loss_fn.fit(TAGS, counts)
    d_scores, loss = loss_fn(TagScores([e.astype(dtype) for e in emissions], *(p.astype(dtype) for p in params)), golds)
    expected_loss, expected_d, expected_params = oracle.crf_negative_log_likelihood(
        params, emissions, golds, loss_fn.token_weights(golds, missing=1.0), transition_mask(TAGS)
    )
    assert loss == pytest.approx(expected_loss, rel=TOLERANCES[dtype])
    for actual, expected in zip(d_scores.emissions, expected_d):
        assert actual.dtype == np.dtype(dtype)
        assert_close(actual, expected, dtype)
    for actual, expected in zip((d_scores.transitions, d_scores.start, d_scores.end), expected_params):
        assert_close(actual, expected, dtype)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("seed", range(5))
def test_marginals_and_paths_match_the_oracle(seed, dtype):
    emissions, params, _ = random_batch(seed)
    mask_transitions, mask_start = transition_mask(TAGS)
    transitions, start, end = params[0] + mask_transitions, params[1] + mask_start, params[2]
    padded, lengths = pad(OPS, [e.astype(dtype) for e in emissions])
    cast = [a.astype(dtype) for a in (transitions, start, end)]
    log_z, marginals, pairwise = forward_backward(padded, lengths, *cast)
    expected = [oracle.forward_backward_one(e, transitions, start, end) for e in emissions]
    assert_close(log_z, [log_z for log_z, _, _ in expected], dtype)
    for row, (_, reference, _) in enumerate(expected):
        assert_close(marginals[row, : lengths[row]], reference, dtype)
        assert not marginals[row, lengths[row] :].any()
    assert_close(pairwise, sum(pairs for _, _, pairs in expected), dtype)
    paths = viterbi(padded, lengths, *cast)
    for row, reference in enumerate(oracle.viterbi(emissions, transitions, start, end)):
        np.testing.assert_array_equal(paths[row, : lengths[row]], reference)


def test_decoder_confidences_are_crf_marginals_or_softmax_probabilities():
    emissions, params, _ = random_batch(0)
    decoder = ConstrainedViterbi(TAGS)
    mask_transitions, mask_start = transition_mask(TAGS)
    transitions, start, end = params[0] + mask_transitions, params[1] + mask_start, params[2]
    paths, confidences = decoder(OPS, TagScores(emissions, *params))
    for scores, path, confidence in zip(emissions, paths, confidences):
        _, marginals, _ = oracle.forward_backward_one(scores, transitions, start, end)
        np.testing.assert_allclose(confidence, marginals[np.arange(len(path)), path], rtol=1e-6)
    paths, confidences = decoder(OPS, TagScores(emissions))
    for scores, path, confidence in zip(emissions, paths, confidences):
        probs = np.exp(scores - scores.max(axis=1, keepdims=True))
        probs /= probs.sum(axis=1, keepdims=True)
        np.testing.assert_allclose(confidence, probs[np.arange(len(path)), path], rtol=1e-6)
