import itertools
import math

import numpy as np
import pytest
from thinc.api import NumpyOps

from spacy_bioner.decoding import make_tags, transition_mask
from spacy_bioner.layers import CRFTransitions, crf_negative_log_likelihood, crf_scores
from spacy_bioner.losses import ClassWeightedCrossentropy, compute_class_weights

TAGS = make_tags(["X"])  # O, B-X, I-X
COUNTS = {"O": 8, "B-X": 1, "I-X": 1}


def softmax(x):
    e = [math.exp(v) for v in x]
    return [v / sum(e) for v in e]


# Expected weights for COUNTS, written out by hand (N = 10, C = 3).
WELT = softmax([1 - 8 / 10, 1 - 1 / 10, 1 - 1 / 10])
ENS = [0.1 / (1 - 0.9**8), 0.1 / (1 - 0.9), 0.1 / (1 - 0.9)]
EXPECTED_WEIGHTS = {
    "none": [1.0, 1.0, 1.0],
    "inverse_frequency": [10 / (3 * 8), 10 / 3, 10 / 3],
    "welt": WELT,
    "ens": [w * 3 / sum(ENS) for w in ENS],
}


@pytest.mark.parametrize("scheme", sorted(EXPECTED_WEIGHTS))
def test_class_weights_by_hand(scheme):
    weights = compute_class_weights(COUNTS, scheme, "bio", beta=0.9)
    assert [weights[t] for t in TAGS] == pytest.approx(EXPECTED_WEIGHTS[scheme], rel=1e-6)


def test_bio_granularity_pools_labels_and_tag_granularity_does_not():
    counts = {"O": 90, "B-A": 2, "B-B": 8, "I-A": 5, "I-B": 5}
    bio = compute_class_weights(counts, "inverse_frequency", "bio")
    tag = compute_class_weights(counts, "inverse_frequency", "tag")
    assert bio["B-A"] == bio["B-B"] == pytest.approx(110 / (3 * 10))
    assert tag["B-A"] == pytest.approx(110 / (5 * 2))
    assert tag["B-B"] == pytest.approx(110 / (5 * 8))


LOGITS = [np.array([[1.0, -0.5, 0.2], [0.3, 2.0, -1.0]], "f"), np.array([[0.0, 0.1, 0.4]], "f")]
GOLD = [np.array([0, 1], "i"), np.array([-1], "i")]  # the last token's gold is missing


@pytest.mark.parametrize("scheme", sorted(EXPECTED_WEIGHTS))
def test_weighted_crossentropy_by_hand(scheme):
    loss_fn = ClassWeightedCrossentropy(scheme=scheme, beta=0.9)
    loss_fn.fit(COUNTS, TAGS)
    w = EXPECTED_WEIGHTS[scheme]
    p0 = softmax(LOGITS[0][0].tolist())[0]
    p1 = softmax(LOGITS[0][1].tolist())[1]
    expected = (-w[0] * math.log(p0) - w[1] * math.log(p1)) / (w[0] + w[1])
    grads, loss = loss_fn(LOGITS, GOLD)
    assert loss == pytest.approx(expected, rel=1e-5)
    assert np.all(grads[1] == 0), "a token with missing gold must not contribute"


@pytest.mark.parametrize("scheme", sorted(EXPECTED_WEIGHTS))
def test_weighted_crossentropy_gradient_matches_finite_differences(scheme):
    loss_fn = ClassWeightedCrossentropy(scheme=scheme, beta=0.9)
    loss_fn.fit(COUNTS, TAGS)
    grads = loss_fn.get_grad(LOGITS, GOLD)
    eps = 1e-3
    for d, doc in enumerate(LOGITS):
        for index in np.ndindex(doc.shape):
            plus = [x.astype("float64").copy() for x in LOGITS]
            minus = [x.astype("float64").copy() for x in LOGITS]
            plus[d][index] += eps
            minus[d][index] -= eps
            numeric = (loss_fn.get_loss(plus, GOLD) - loss_fn.get_loss(minus, GOLD)) / (2 * eps)
            assert grads[d][index] == pytest.approx(numeric, abs=2e-3)


def make_crf(seed=0):
    crf = CRFTransitions(nO=len(TAGS))
    crf.initialize()
    rng = np.random.default_rng(seed)
    for name in ("transitions", "start", "end"):
        crf.set_param(name, rng.normal(size=crf.get_param(name).shape).astype("f"))
    return crf


def brute_force_nll(crf, emissions, gold):
    """-log p(gold-compatible paths) by enumerating every valid path."""
    transitions, start, end = crf_scores(crf, transition_mask(TAGS))
    total, compatible = [], []
    for path in itertools.product(range(len(TAGS)), repeat=len(gold)):
        score = start[path[0]] + end[path[-1]] + sum(emissions[t, k] for t, k in enumerate(path))
        score += sum(transitions[a, b] for a, b in zip(path, path[1:]))
        total.append(score)
        if all(g < 0 or g == k for g, k in zip(gold, path)):
            compatible.append(score)
    logsumexp = lambda xs: max(xs) + math.log(sum(math.exp(x - max(xs)) for x in xs))
    return logsumexp(total) - logsumexp(compatible)


def test_crf_nll_equals_enumeration_and_ignores_missing_gold():
    crf = make_crf()
    emissions = [np.array([[0.5, 1.0, -0.3], [0.2, 0.1, 0.9], [1.0, -1.0, 0.0]], "f")]
    mask = transition_mask(TAGS)
    for gold in ([0, 1, 2], [1, -1, 0], [-1, -1, -1]):
        weights = [np.ones(3, "f")]
        loss, _ = crf_negative_log_likelihood(crf, emissions, [np.array(gold, "i")], weights, mask)
        assert loss * 3 == pytest.approx(brute_force_nll(crf, emissions[0], gold), abs=1e-4)
    # With no gold at all, every path is compatible: nothing to learn.
    assert loss == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize(
    "gold",
    [
        [[1, 2], [0], [0, 0, 1]],  # fully annotated: the gold path read off directly
        [[1, -1], [0], [-1, 0, -1]],  # missing tags: constrained forward-backward
    ],
)
def test_crf_gradients_match_finite_differences(gold):
    crf = make_crf(seed=1)
    ops = NumpyOps()
    emissions = [
        np.array([[0.5, 1.0, -0.3], [0.2, 0.1, 0.9]], "f"),
        np.array([[0.3, 0.0, 0.1]], "f"),
        np.array([[0.1, -0.4, 0.6], [1.2, 0.3, -0.2], [0.0, 0.8, 0.4]], "f"),
    ]
    gold = [np.array(g, "i") for g in gold]
    weights = [np.ones(len(g), "f") for g in gold]
    mask = transition_mask(TAGS)

    def loss_at(emissions, crf):
        probe = make_crf()
        for name in ("transitions", "start", "end"):
            probe.set_param(name, crf.get_param(name).copy())
        return crf_negative_log_likelihood(probe, emissions, gold, weights, mask)[0]

    _, d_emissions = crf_negative_log_likelihood(crf, emissions, gold, weights, mask)
    eps = 1e-2
    for d, doc in enumerate(emissions):
        for index in np.ndindex(doc.shape):
            plus = [e.copy() for e in emissions]
            minus = [e.copy() for e in emissions]
            plus[d][index] += eps
            minus[d][index] -= eps
            numeric = (loss_at(plus, crf) - loss_at(minus, crf)) / (2 * eps)
            assert d_emissions[d][index] == pytest.approx(numeric, abs=1e-3)
    for name in ("transitions", "start", "end"):
        grad = ops.to_numpy(crf.get_grad(name))
        param = crf.get_param(name)
        for index in np.ndindex(param.shape):
            if name == "transitions" and mask[0][index] < 0:
                continue  # forbidden transitions never occur: their gradient is 0
            original = param[index]
            param[index] = original + eps
            plus = loss_at(emissions, crf)
            param[index] = original - eps
            minus = loss_at(emissions, crf)
            param[index] = original
            assert grad[index] == pytest.approx((plus - minus) / (2 * eps), abs=1e-3)
