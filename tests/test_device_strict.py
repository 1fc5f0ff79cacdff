"""The heads' device code (CRF recursions, decoder, losses) on a strict stand-in
for CuPy (tests/strict_device.py): what would call NumPy on a device array,
mix host and device arrays, or wait for the device on a GPU fails or is
counted here, on the CPU. The results must equal the host computation's.
"""

import inspect

import numpy as np
import pytest
from oracle import TOLERANCES, assert_close, random_batch
from strict_device import DEVICE_XP, HOST_NUMPY, SYNCS, TRANSFERS, DeviceArray, on_host, strict_device, to_device
from thinc.api import NumpyOps

from spacy_bioner.decoding import SPAN_SCORES, ConstrainedViterbi
from spacy_bioner.layers import crf
from spacy_bioner.layers.crf import CRFTransitions, TagScores, constrained_statistics, forward_backward, pad, viterbi
from spacy_bioner.losses import ClassWeightedCrossentropy, CostAugmentedCRFLoss, CRFLoss
from spacy_bioner.tags import make_tags, tag_constraints

TAGS = make_tags(["DNA", "protein"])
RECURSIONS = ["sequential", "parallel", "auto"]
TOLERANCE = TOLERANCES["float32"]  # relative to each array's scale


def assert_on_device(*arrays, dtype="float32"):
    for array in arrays:
        assert isinstance(array, DeviceArray), type(array)
        assert array.dtype == np.dtype(dtype)


@pytest.fixture
def device_ops(monkeypatch):
    ops = strict_device(monkeypatch)
    yield ops
    del SYNCS[:], TRANSFERS[:]


BATCHES = [[5, 1, 3, 7, 4], [1, 1], [1], [12, 2]]


def test_the_stand_in_is_strict(device_ops):
    """What CuPy refuses is refused here, and a sync is recorded: else a pass means nothing."""
    x = to_device(np.ones((2, 3), "f"))
    with pytest.raises(TypeError):
        HOST_NUMPY.asarray(x)
    with pytest.raises(TypeError):
        HOST_NUMPY.concatenate([x, x])
    with pytest.raises(TypeError):
        np.concatenate([x, x])  # through __array_function__
    with pytest.raises(TypeError):
        x + np.ones(3, "f")
    with pytest.raises(TypeError):
        DEVICE_XP.where(np.ones((2, 3), bool), x, 0)
    with pytest.raises(TypeError):
        x[0] = np.zeros(3, "f")
    assert isinstance(x.sum(), DeviceArray) and isinstance(x[0, 0], DeviceArray)
    float(x.sum())
    x[x > 0]
    DEVICE_XP.flatnonzero(x)
    assert [what for what, _ in SYNCS] == ["float()", "boolean mask index", "xp.flatnonzero"]
    x.get()
    assert [what for what, _ in TRANSFERS] == [".get()"]
    assert isinstance(DEVICE_XP.asarray(np.ones(2)), DeviceArray)
    assert crf._parallel("auto", DEVICE_XP)  # "auto" is the parallel schedule on the device


def trust_checks(n: int):
    """The syncs of `n` calls of forward_backward: each reads one flag, whether
    some document needs the log-space recursions (none does here)."""
    source, first = inspect.getsourcelines(crf._forward_backward)
    offset = next(i for i, text in enumerate(source) if "bool(trusted.all())" in text)
    return [("bool()", f"crf.py:{first + offset}")] * n


@pytest.mark.parametrize("recursion", RECURSIONS)
@pytest.mark.parametrize("lengths", BATCHES)
def test_recursions_stay_on_the_device(device_ops, recursion, lengths):
    emissions, params, golds = random_batch(lengths, tag_constraints(TAGS), dtype="float32")
    padded, host_lengths = pad(NumpyOps(), emissions)
    host_params = [p + m for p, m in zip(params, tag_constraints(TAGS))]
    host_golds = np.full(padded.shape[:2], -1, dtype="int64")
    for row, gold in enumerate(golds):
        host_golds[row, : len(gold)] = gold
    partial = [row for row, gold in enumerate(golds) if (gold < 0).any()]
    expected_fb = forward_backward(padded, host_lengths, *host_params, recursion="sequential")
    expected_paths = viterbi(padded, host_lengths, *host_params, recursion="sequential")
    expected_gold = constrained_statistics(
        padded, host_lengths, host_golds, partial, *host_params, recursion="sequential"
    )
    del SYNCS[:], TRANSFERS[:]

    device_padded, device_params = to_device(padded), to_device(host_params)
    actual_fb = forward_backward(device_padded, host_lengths, *device_params, recursion=recursion)
    paths = viterbi(device_padded, host_lengths, *device_params, recursion=recursion)
    actual_gold = constrained_statistics(
        device_padded, host_lengths, to_device(host_golds), partial, *device_params, recursion=recursion
    )
    # One flag per forward-backward (whether a document needs the log-space
    # recursions): here, the whole batch's and the partially annotated rows'.
    assert SYNCS == trust_checks(1 + bool(partial)) and TRANSFERS == []
    for actual, expected in zip(actual_fb + actual_gold, expected_fb + expected_gold):
        assert_on_device(actual)
        assert_close(on_host(actual), expected, "float32")
    assert isinstance(paths, DeviceArray) and paths.dtype.kind == "i"
    for row, length in enumerate(host_lengths):
        np.testing.assert_array_equal(on_host(paths)[row, :length], expected_paths[row, :length])


@pytest.mark.parametrize("recursion", ["sequential", "parallel"])
def test_the_log_space_fallback_stays_on_the_device(device_ops, recursion):
    emissions, params, _ = random_batch([40, 7, 1], tag_constraints(TAGS), dtype="float32")
    emissions = [e.copy() for e in emissions]
    emissions[1][:, 3] = 200.0  # an I- tag far ahead everywhere: beyond float32 products
    padded, host_lengths = pad(NumpyOps(), emissions)
    host_params = [p + m for p, m in zip(params, tag_constraints(TAGS))]
    expected = forward_backward(padded, host_lengths, *host_params, recursion=recursion)
    del SYNCS[:], TRANSFERS[:]
    actual = forward_backward(to_device(padded), host_lengths, *to_device(host_params), recursion=recursion)
    assert SYNCS == trust_checks(1) and [what for what, _ in TRANSFERS] == ["to_numpy"]  # which rows to redo
    for array, reference in zip(actual, expected):
        assert_on_device(array)
        assert_close(on_host(array), reference, "float32")


@pytest.mark.parametrize("span_scores", SPAN_SCORES)
@pytest.mark.parametrize("recursion", RECURSIONS)
@pytest.mark.parametrize("with_crf", [True, False])
def test_the_decoder_copies_only_paths_and_confidences_to_the_host(device_ops, recursion, with_crf, span_scores):
    # An empty document too.
    emissions, params, _ = random_batch([5, 1, 0, 3, 7], tag_constraints(TAGS), dtype="float32")
    decoder = ConstrainedViterbi(TAGS, span_scores)
    expected_paths, expected_confidences = decoder(NumpyOps(), TagScores(emissions, *(params if with_crf else [])))
    del SYNCS[:], TRANSFERS[:]
    scores = TagScores(to_device(emissions), *(to_device(params) if with_crf else []), recursion=recursion)
    paths, confidences = decoder(device_ops, scores)
    assert SYNCS == trust_checks(1 if with_crf else 0)
    assert [what for what, _ in TRANSFERS] == ["to_numpy", "to_numpy"]
    for path, confidence, expected_path, expected_confidence in zip(
        paths, confidences, expected_paths, expected_confidences
    ):
        assert type(path) is np.ndarray and type(confidence) is np.ndarray
        np.testing.assert_array_equal(path, expected_path)
        np.testing.assert_allclose(confidence, expected_confidence, rtol=TOLERANCE, atol=TOLERANCE)


@pytest.mark.parametrize("recursion", RECURSIONS)
@pytest.mark.parametrize("loss_class", [CRFLoss, CostAugmentedCRFLoss, ClassWeightedCrossentropy])
def test_the_losses_copy_only_the_loss_to_the_host(device_ops, recursion, loss_class):
    emissions, params, golds = random_batch([5, 1, 3, 7, 4], tag_constraints(TAGS), dtype="float32")
    loss_fn = loss_class(scheme="inverse_frequency")
    loss_fn.fit(TAGS, {tag: 1 + 10 * i for i, tag in enumerate(TAGS)})
    crf = loss_class.needs_transitions
    crf_params = params if crf else []
    expected_d, expected_loss = loss_fn(TagScores(emissions, *crf_params, recursion="sequential"), golds)
    del SYNCS[:], TRANSFERS[:]
    d_scores, loss = loss_fn(TagScores(to_device(emissions), *to_device(crf_params), recursion=recursion), golds)
    # The scalar loss is the one value that reaches the host, beside the CRF's
    # flags (all documents and those partially annotated).
    n_checks = 2 if crf else 0
    assert SYNCS[:n_checks] == trust_checks(n_checks) and [what for what, _ in SYNCS[n_checks:]] == ["float()"]
    assert TRANSFERS == []
    assert type(loss) is float and loss == pytest.approx(expected_loss, rel=TOLERANCE)
    assert len(d_scores.emissions) == len(expected_d.emissions)
    for actual, expected in zip(d_scores.emissions, expected_d.emissions):
        assert_on_device(actual)
        assert_close(on_host(actual), expected, "float32")
    if crf:
        for name in ("transitions", "start", "end"):
            assert_on_device(getattr(d_scores, name))
            assert_close(on_host(getattr(d_scores, name)), getattr(expected_d, name), "float32")


def test_the_crf_layer_keeps_its_parameters_and_gradients_on_the_device(device_ops):
    layer = CRFTransitions(nO=len(TAGS))
    layer.ops = device_ops
    layer.initialize()
    emissions = to_device([np.ones((2, len(TAGS)), "f")])
    scores, backprop = layer(emissions, is_train=True)
    assert_on_device(scores.transitions, scores.start, scores.end)
    d_params = to_device([np.full((len(TAGS), len(TAGS)), 0.5, "f"), np.ones(len(TAGS), "f"), np.ones(len(TAGS), "f")])
    backprop(TagScores(emissions, *d_params))
    backprop(TagScores(emissions, *d_params))
    assert_on_device(layer.get_grad("transitions"), layer.get_grad("start"), layer.get_grad("end"))
    np.testing.assert_array_equal(on_host(layer.get_grad("transitions")), np.full((len(TAGS), len(TAGS)), 1.0))
    assert SYNCS == [] and TRANSFERS == []
