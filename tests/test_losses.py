import itertools
import math

import numpy as np
import pytest
from oracle import logsumexp, path_score

from spacy_bioner.layers.crf import CRFTransitions, TagScores
from spacy_bioner.losses import (
    ClassWeightedCrossentropy,
    CostAugmentedCRFLoss,
    CRFLoss,
    compute_class_weights,
)
from spacy_bioner.tags import make_tags, tag_constraints

TAGS = make_tags(["X"])  # O, B-X, I-X
COUNTS = {"O": 8, "B-X": 1, "I-X": 1}


def softmax(x):
    e = [math.exp(v) for v in x]
    return [v / sum(e) for v in e]


def a_token_weighs_one(weights):
    """Scaled so that COUNTS' 10 tokens weigh 10 in all."""
    return [w * 10 / (8 * weights[0] + weights[1] + weights[2]) for w in weights]


# Expected weights for COUNTS, written out by hand (N = 10, C = 3).
WELT = softmax([1 - 8 / 10, 1 - 1 / 10, 1 - 1 / 10])
ENS = [0.1 / (1 - 0.9**8), 0.1 / (1 - 0.9), 0.1 / (1 - 0.9)]
EXPECTED_WEIGHTS = {
    "none": [1.0, 1.0, 1.0],
    "inverse_frequency": [10 / (3 * 8), 10 / 3, 10 / 3],
    "welt": a_token_weighs_one(WELT),
    "ens": a_token_weighs_one(ENS),
}


@pytest.mark.parametrize("scheme", sorted(EXPECTED_WEIGHTS))
def test_class_weights_by_hand(scheme):
    weights = compute_class_weights(COUNTS, scheme, "bio", beta=0.9)
    assert [weights[t] for t in TAGS] == pytest.approx(EXPECTED_WEIGHTS[scheme], rel=1e-6)


@pytest.mark.parametrize("scheme", sorted(EXPECTED_WEIGHTS))
def test_a_training_token_weighs_one_on_average_beside_unseen_tags(scheme):
    """A tag no training token has was counted as one token in the mean: under inverse_frequency
    (its weight ~N), a training token weighed 0.69 on average, the cost-augmented margin as much less."""
    counts = {"O": 90, "B-A": 2, "I-A": 5, "B-B": 8, "I-B": 0, "L-B": 0, "U-B": 0}
    weights = compute_class_weights(counts, scheme, "tag")
    assert sum(weights[tag] * n for tag, n in counts.items()) == pytest.approx(sum(counts.values()))
    assert all(np.isfinite(list(weights.values())))


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
    loss_fn.fit(TAGS, COUNTS)
    w = EXPECTED_WEIGHTS[scheme]
    p0 = softmax(LOGITS[0][0].tolist())[0]
    p1 = softmax(LOGITS[0][1].tolist())[1]
    expected = (-w[0] * math.log(p0) - w[1] * math.log(p1)) / (w[0] + w[1])
    d_scores, loss = loss_fn(TagScores(LOGITS), GOLD)
    assert loss == pytest.approx(expected, rel=1e-5)
    assert np.all(d_scores.emissions[1] == 0), "a token with missing gold must not contribute"
    assert not d_scores.has_transitions


@pytest.mark.parametrize("scheme", sorted(EXPECTED_WEIGHTS))
def test_weighted_crossentropy_gradient_matches_finite_differences(scheme):
    loss_fn = ClassWeightedCrossentropy(scheme=scheme, beta=0.9)
    loss_fn.fit(TAGS, COUNTS)
    grads = loss_fn.get_grad(TagScores(LOGITS), GOLD).emissions
    eps = 1e-3
    for d, doc in enumerate(LOGITS):
        for index in np.ndindex(doc.shape):
            plus = [x.astype("float64").copy() for x in LOGITS]
            minus = [x.astype("float64").copy() for x in LOGITS]
            plus[d][index] += eps
            minus[d][index] -= eps
            numeric = (loss_fn.get_loss(TagScores(plus), GOLD) - loss_fn.get_loss(TagScores(minus), GOLD)) / (2 * eps)
            assert grads[d][index] == pytest.approx(numeric, abs=2e-3)


def crf_params(seed=0, dtype="float64"):
    """Random learned (transitions, start, end), as the CRF layer would hold them."""
    rng = np.random.default_rng(seed)
    return [rng.normal(size=shape).astype(dtype) for shape in ((3, 3), (3,), (3,))]


def crf_loss(weights=None):
    loss = CRFLoss()
    loss.fit(TAGS, COUNTS)
    if weights is not None:
        loss.set_weights(TAGS, weights)
    return loss


def brute_force_nll(params, emissions, gold, tags=TAGS, costs=None):
    """-log p(gold-compatible paths) by enumerating every valid path; with `costs`
    (one per token), each path's partition-function score gains the costs of the
    tokens where it leaves the known gold tag."""
    transitions, start, end = (p + m for p, m in zip(params, tag_constraints(tags)))
    total, compatible = [], []
    for path in itertools.product(range(len(tags)), repeat=len(gold)):
        score = path_score(path, emissions, transitions, start, end)
        cost = sum(c for c, g, k in zip(costs, gold, path) if g >= 0 and g != k) if costs is not None else 0.0
        total.append(score + cost)
        if all(g < 0 or g == k for g, k in zip(gold, path)):
            compatible.append(score)
    return float(logsumexp(np.asarray(total), axis=0) - logsumexp(np.asarray(compatible), axis=0))


def test_crf_nll_equals_enumeration_and_ignores_missing_gold():
    params = crf_params()
    emissions = [np.array([[0.5, 1.0, -0.3], [0.2, 0.1, 0.9], [1.0, -1.0, 0.0]], "float64")]
    for gold in ([0, 1, 2], [1, -1, 0], [-1, -1, -1]):
        _, loss = crf_loss()(TagScores(emissions, *params), [np.array(gold, "i")])
        assert loss * 3 == pytest.approx(brute_force_nll(params, emissions[0], gold), abs=1e-9)
    # With no gold at all, every path is compatible: nothing to learn.
    assert loss == pytest.approx(0.0, abs=1e-9)


def test_biluo_crf_nll_equals_enumeration_over_its_paths():
    tags = make_tags(["X"], "BILUO")  # O, B-X, I-X, L-X, U-X
    loss_fn = CRFLoss()
    loss_fn.fit(tags, {tag: 1 for tag in tags})
    rng = np.random.default_rng(3)
    params = [rng.normal(size=shape) for shape in ((5, 5), (5,), (5,))]
    emissions = [rng.normal(size=(4, 5))]
    # B-X I-X L-X O; a gap the end constraint decides (B-X, then L-X somewhere); none known.
    for gold in ([1, 2, 3, 0], [1, -1, -1, -1], [-1, -1, -1, -1]):
        _, loss = loss_fn(TagScores(emissions, *params), [np.array(gold, "i")])
        assert loss * 4 == pytest.approx(brute_force_nll(params, emissions[0], gold, tags), abs=1e-9)


def cost_augmented_loss(weights, cost_scale, tags=TAGS):
    loss = CostAugmentedCRFLoss(cost_scale=cost_scale)
    loss.set_weights(tags, weights)
    return loss


@pytest.mark.parametrize("gold", [[1, 2, 0, 0], [1, -1, -1, 1], [-1, -1, -1, -1]])
def test_cost_augmented_crf_loss_equals_enumeration(gold):
    """A path's cost: cost_scale times the class weight of each known gold tag it leaves."""
    weights, cost_scale = [1.0, 2.0, 0.5], 0.7
    rng = np.random.default_rng(4)
    params = [rng.normal(size=shape) for shape in ((3, 3), (3,), (3,))]
    emissions = [rng.normal(size=(4, 3))]
    _, loss = cost_augmented_loss(weights, cost_scale)(TagScores(emissions, *params), [np.array(gold, "i")])
    costs = [cost_scale * weights[g] if g >= 0 else 0.0 for g in gold]
    assert loss * 4 == pytest.approx(brute_force_nll(params, emissions[0], gold, costs=costs), abs=1e-9)
    # The costs only widen the partition function: at least the NLL, equal without known tags.
    nll = brute_force_nll(params, emissions[0], gold)
    assert loss * 4 >= nll - 1e-12 and (loss * 4 == pytest.approx(nll, abs=1e-12)) == (max(gold) < 0)


def test_cost_augmented_crf_loss_without_cost_is_the_nll():
    params = crf_params(seed=5)
    emissions = [np.random.default_rng(5).normal(size=(n, 3)) for n in (3, 1, 4)]
    gold = [np.array(g, "i") for g in ([1, 2, 0], [-1], [0, 1, -1, 0])]
    expected_d, expected = crf_loss()(TagScores(emissions, *params), gold)
    d_scores, loss = cost_augmented_loss([1.0, 2.0, 0.5], 0.0)(TagScores(emissions, *params), gold)
    assert loss == pytest.approx(expected, abs=1e-12)
    for got, want in zip(d_scores.emissions + [d_scores.transitions], expected_d.emissions + [expected_d.transitions]):
        np.testing.assert_allclose(got, want, atol=1e-12)


def test_cost_augmented_crf_gradients_are_the_losss():
    """No weighting of the gradient: every score's gradient is the loss's own."""
    params = crf_params(seed=6)
    rng = np.random.default_rng(6)
    emissions = [rng.normal(size=(n, 3)) for n in (2, 3)]
    gold = [np.array([1, 2], "i"), np.array([-1, 0, 1], "i")]
    loss_fn = cost_augmented_loss([0.5, 3.0, 1.5], 1.0)
    d_scores, _ = loss_fn(TagScores(emissions, *params), gold)
    eps = 1e-5
    arrays = emissions + params
    grads = d_scores.emissions + [d_scores.transitions, d_scores.start, d_scores.end]
    mask_transitions = tag_constraints(TAGS).transitions
    for a, (array, grad) in enumerate(zip(arrays, grads)):
        for index in np.ndindex(array.shape):
            if a == len(emissions) and mask_transitions[index] < 0:
                continue
            moved = []
            for step in (eps, -eps):
                shifted = [x.copy() for x in arrays]
                shifted[a][index] += step
                moved.append(loss_fn(TagScores(shifted[: len(emissions)], *shifted[len(emissions):]), gold)[1])
            assert grad[index] == pytest.approx((moved[0] - moved[1]) / (2 * eps), abs=1e-6)


def test_a_negative_cost_is_refused():
    with pytest.raises(ValueError, match="cost_scale"):
        CostAugmentedCRFLoss(cost_scale=-1.0)


def test_crf_loss_needs_transitions():
    with pytest.raises(ValueError, match="crf = true"):
        crf_loss()(TagScores(LOGITS), GOLD)


@pytest.mark.parametrize(
    "gold",
    [
        [[1, 2], [0], [0, 0, 1]],  # fully annotated: the gold path read off directly
        [[1, -1], [0], [-1, 0, -1]],  # missing tags: constrained forward-backward
    ],
)
def test_crf_gradients_match_finite_differences(gold):
    params = crf_params(seed=1)
    emissions = [
        np.array([[0.5, 1.0, -0.3], [0.2, 0.1, 0.9]], "float64"),
        np.array([[0.3, 0.0, 0.1]], "float64"),
        np.array([[0.1, -0.4, 0.6], [1.2, 0.3, -0.2], [0.0, 0.8, 0.4]], "float64"),
    ]
    gold = [np.array(g, "i") for g in gold]
    # Unequal class weights: they scale the emission gradients, not the transitions'.
    loss_fn = crf_loss(weights=[1.0, 2.0, 0.5])
    mask_transitions = tag_constraints(TAGS).transitions

    def loss_at(emissions, params):
        return loss_fn(TagScores(emissions, *params), gold)[1]

    d_scores, _ = loss_fn(TagScores(emissions, *params), gold)
    eps = 1e-5
    for d, doc in enumerate(emissions):
        for index in np.ndindex(doc.shape):
            plus = [e.copy() for e in emissions]
            minus = [e.copy() for e in emissions]
            plus[d][index] += eps
            minus[d][index] -= eps
            numeric = (loss_at(plus, params) - loss_at(minus, params)) / (2 * eps)
            weights = loss_fn.token_weights(gold, missing=np.nan)
            # A missing tag weighs the mean weight of the known ones.
            weights = [np.where(g >= 0, w, np.nanmean(np.concatenate(weights))) for w, g in zip(weights, gold)]
            mean_weight = np.concatenate(weights).mean()
            # The emission gradient is the likelihood's, scaled by the token's class
            # weight relative to the batch's mean token weight.
            assert d_scores.emissions[d][index] == pytest.approx(weights[d][index[0]] / mean_weight * numeric, abs=1e-6)
    for p, name in enumerate(("transitions", "start", "end")):
        grad = getattr(d_scores, name)
        for index in np.ndindex(params[p].shape):
            if name == "transitions" and mask_transitions[index] < 0:
                assert grad[index] == pytest.approx(0.0, abs=1e-12)  # forbidden: never taken
                continue
            plus = [q.copy() for q in params]
            minus = [q.copy() for q in params]
            plus[p][index] += eps
            minus[p][index] -= eps
            numeric = (loss_at(emissions, plus) - loss_at(emissions, minus)) / (2 * eps)
            assert grad[index] == pytest.approx(numeric, abs=1e-6)


def test_crf_layer_passes_its_parameters_and_adds_their_gradients():
    layer = CRFTransitions(nO=len(TAGS))
    layer.initialize()
    emissions = [np.ones((2, 3), "f")]
    scores, backprop = layer(emissions, is_train=True)
    assert scores.has_transitions and scores.emissions is emissions
    d_transitions = np.full((3, 3), 0.5, "f")
    d_emissions = backprop(TagScores([np.full((2, 3), 2.0, "f")], d_transitions, np.ones(3, "f"), np.ones(3, "f")))
    assert np.all(d_emissions[0] == 2.0)
    np.testing.assert_array_equal(layer.get_grad("transitions"), d_transitions)


def test_the_recursion_comes_from_the_config_not_from_the_saved_weights():
    saved = CRFTransitions(nO=len(TAGS), recursion="parallel")
    saved.initialize()
    loaded = CRFTransitions(nO=len(TAGS), recursion="sequential").from_bytes(saved.to_bytes())
    emissions = [np.ones((2, 3), "f")]
    assert loaded.predict(emissions).recursion == "sequential"
    assert saved.copy().predict(emissions).recursion == "parallel"


@pytest.mark.parametrize("loss_class", [CRFLoss, ClassWeightedCrossentropy])
def test_a_loss_before_its_weights_are_fitted_says_to_initialize(loss_class):
    scores = CRFTransitions(nO=len(TAGS))
    scores.initialize()
    with pytest.raises(ValueError, match="initialize the component first"):
        loss_class()(scores.predict([np.zeros((2, 3), "f")]), [np.asarray([1, 2])])


def test_crossentropy_of_a_confidently_wrong_token_is_exact():
    loss = ClassWeightedCrossentropy()
    loss.fit(TAGS, COUNTS)
    logits = np.asarray([[0.0, 60.0, 0.0]], dtype="f")  # gold O, 60 nats below B-X
    _, value = loss(TagScores([logits]), [np.asarray([0])])
    expected = -(0.0 - np.logaddexp.reduce(logits[0].astype("float64")))
    assert value == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("loss_class", [CRFLoss, ClassWeightedCrossentropy])
@pytest.mark.parametrize("first_gold", [[0, 1], [1, -1]], ids=["annotated", "partial"])
def test_neither_other_corpora_nor_the_weights_scale_change_an_update(loss_class, first_gold):
    """A document the head is not trained on, or weights times a constant, leave
    loss and gradients as they are, also where some tags are missing."""
    params = crf_params(seed=2, dtype="f") if loss_class is CRFLoss else []
    gold = [np.array(first_gold, "i"), np.array([-1], "i")]
    unannotated = np.array([[0.4, -0.2, 0.9]] * 5, "f")

    def run(weights, emissions, truths):
        loss_fn = loss_class()
        loss_fn.fit(TAGS, COUNTS)
        loss_fn.set_weights(TAGS, weights)
        d_scores, loss = loss_fn(TagScores(emissions, *params), truths)
        return loss, d_scores

    loss, d_scores = run([1.0, 2.0, 0.5], LOGITS, gold)
    for weights, emissions, truths in (
        ([1.0, 2.0, 0.5], LOGITS + [unannotated], gold + [np.full(5, -1, "i")]),
        ([3.0, 6.0, 1.5], LOGITS, gold),
    ):
        other_loss, other_d = run(weights, emissions, truths)
        assert other_loss == pytest.approx(loss, rel=1e-6)
        assert len(other_d.emissions) == len(emissions)
        for mine, theirs in zip(d_scores.emissions, other_d.emissions):
            np.testing.assert_allclose(theirs, mine, rtol=1e-5, atol=1e-7)
        for unannotated_d in other_d.emissions[len(d_scores.emissions):]:  # no gold: no gradient
            np.testing.assert_array_equal(unannotated_d, 0)
        if loss_class is CRFLoss:
            np.testing.assert_allclose(other_d.transitions, d_scores.transitions, rtol=1e-5, atol=1e-7)


def test_crf_loss_refuses_gold_with_no_allowed_path():
    # B-X then I-X is a path; O then I-X (overlapping spans written in turn) is none.
    loss_fn = crf_loss()
    params = crf_params(dtype="f")
    emissions = [np.zeros((3, 3), "f"), np.zeros((4, 3), "f")]
    _, loss = loss_fn(TagScores(emissions, *params), [np.array([1, 2, -1], "i"), np.array([-1, 2, -1, 0], "i")])
    assert np.isfinite(loss)
    with pytest.raises(ValueError, match=r"document 1 .* token 2 \(\['O', 'I-X'\]\)"):
        loss_fn(TagScores(emissions, *params), [np.array([1, 2, -1], "i"), np.array([-1, 0, 2, 0], "i")])
    with pytest.raises(ValueError, match=r"document 0 .* token 0"):
        loss_fn(TagScores(emissions, *params), [np.array([2, 2, -1], "i"), np.array([0, 0, 0, 0], "i")])


def test_biluo_crf_loss_refuses_gold_that_no_biluo_path_fits():
    tags = make_tags(["X", "Y"], "BILUO")  # O, B-X, B-Y, I-X, I-Y, L-X, L-Y, U-X, U-Y
    loss_fn = CRFLoss()
    loss_fn.fit(tags, {tag: 1 for tag in tags})
    rng = np.random.default_rng(0)
    params = [rng.normal(size=shape).astype("f") for shape in ((9, 9), (9,), (9,))]
    emissions = [np.zeros((5, 9), "f")]
    ids = {tag: i for i, tag in enumerate(tags)}

    def loss_of(*gold):
        truth = np.array([ids[t] if t else -1 for t in gold], "i")
        return loss_fn(TagScores(emissions, *params), [truth])[1]

    # A gap long enough to close X and open Y, and one tag missing at the end: paths exist.
    assert np.isfinite(loss_of("B-X", None, None, "I-Y", "L-Y"))
    assert np.isfinite(loss_of("O", "O", "B-X", "I-X", None))
    # One missing tag cannot both close X and open Y (IOB2 would fill in B-Y).
    with pytest.raises(ValueError, match=r"not a well-formed BILUO sequence at token 2"):
        loss_of("B-X", None, "I-Y", "L-Y", "O")
    # An entity left open at the end of the document.
    with pytest.raises(ValueError, match=r"BILUO sequence at token 4"):
        loss_of("O", "O", "O", "O", "B-X")
    with pytest.raises(ValueError, match=r"BILUO sequence at token 1 .*followed by I-X or L-X"):
        loss_of("B-X", "O", None, None, None)


@pytest.mark.parametrize("make", [CRFLoss, ClassWeightedCrossentropy, None], ids=["crf", "softmax", "weights"])
def test_unknown_weighting_options_are_refused_with_the_known_ones(make):
    build = make or (lambda scheme, granularity: compute_class_weights({"O": 3}, scheme, granularity))
    with pytest.raises(ValueError, match=r"scheme 'balanced': use one of \['none', 'inverse_frequency'"):
        build(scheme="balanced", granularity="bio")
    with pytest.raises(ValueError, match=r"granularity 'label': use one of \['bio', 'tag'\]"):
        build(scheme="none", granularity="label")


@pytest.mark.parametrize("beta", [1.0, 1.5, -0.1])
def test_ens_beta_outside_the_unit_interval_is_refused(beta):
    """At beta = 1 every "ens" weight would be 0 / 0: NaN losses, not an error."""
    with pytest.raises(ValueError, match=r"use 0 <= beta < 1"):
        compute_class_weights(COUNTS, "ens", beta=beta)
    for loss_class in (CRFLoss, ClassWeightedCrossentropy):
        with pytest.raises(ValueError, match=r"use 0 <= beta < 1"):
            loss_class(scheme="ens", beta=beta)


def test_ens_beta_zero_weighs_every_class_one():
    assert compute_class_weights(COUNTS, "ens", beta=0.0) == pytest.approx({tag: 1.0 for tag in COUNTS})
