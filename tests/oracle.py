"""A plain NumPy float64 CRF and Viterbi, one document at a time, as a test oracle.

The package's `layers/crf.py` runs scaled probability-space recursions over a
padded batch, on the model's device, in the scores' precision. This oracle is
the textbook form: log-space forward-backward (log-sum-exp), Viterbi and a
path's score, per document, in float64. The parity tests compare the two on
random batches (`random_batch`, `assert_close`: shared by test_crf_parity.py
and test_device_strict.py).
"""

from typing import List, Sequence, Tuple, Union

import numpy as np

FORBIDDEN = -1e4
# How close the package's results must be to the oracle's, relative to each array's scale.
TOLERANCES = {"float64": 1e-9, "float32": 1e-4}


def assert_close(actual, expected, dtype: str) -> None:
    """`actual` (host values) equals the oracle's float64 `expected` to the
    tolerance of `dtype`, relative to the largest magnitude of `expected`."""
    # A device array (an ndarray subclass) as the reference would compare
    # nothing of the host computation.
    assert not isinstance(expected, np.ndarray) or type(expected) is np.ndarray, type(expected)
    expected = np.asarray(expected, dtype="float64")
    scale = max(float(np.abs(expected).max(initial=0.0)), 1.0)
    tolerance = TOLERANCES[dtype]
    np.testing.assert_allclose(np.asarray(actual, dtype="float64"), expected, rtol=tolerance, atol=tolerance * scale)


def random_batch(lengths: Union[int, Sequence[int]], constraints, seed: int = 0, dtype: str = "float64"):
    """Emissions, learned CRF scores (transitions, start, end) and gold paths
    valid under `constraints` (a tag scheme's masks, `tags.tag_constraints`).

    lengths: each document's (0 for an empty one), or how many documents of
    1 to 13 tokens to draw. Every other document has some tags missing (-1);
    the last has none known (a head not trained on it: the loss skips it).
    """
    rng = np.random.default_rng(seed)
    if isinstance(lengths, int):
        lengths = rng.integers(1, 14, size=lengths)
    masks = [np.asarray(m, dtype="float64") for m in constraints]
    n_tags = len(masks[1])
    emissions = [rng.normal(scale=3.0, size=(n, n_tags)).astype(dtype) for n in lengths]
    params = [rng.normal(size=shape).astype(dtype) for shape in ((n_tags, n_tags), (n_tags,), (n_tags,))]
    golds = [
        viterbi_one(rng.normal(size=(n, n_tags)), *masks).astype("i") if n else np.zeros((0,), "i") for n in lengths
    ]
    for gold in golds[::2]:
        gold[rng.random(len(gold)) < 0.4] = -1
    golds[-1][:] = -1
    return emissions, params, golds


def path_score(path: Sequence[int], emissions: np.ndarray, transitions, start, end) -> float:
    """The unnormalised log score of one tag path through one document's
    emissions (T, K): its start, emission, transition and end scores summed."""
    total = start[path[0]] + end[path[-1]] + sum(emissions[t, k] for t, k in enumerate(path))
    return total + sum(transitions[a, b] for a, b in zip(path, path[1:]))


def logsumexp(scores: np.ndarray, axis: int) -> np.ndarray:
    top = scores.max(axis=axis, keepdims=True)
    return np.squeeze(top, axis=axis) + np.log(np.exp(scores - top).sum(axis=axis))


def forward_backward_one(
    emissions: np.ndarray, transitions: np.ndarray, start: np.ndarray, end: np.ndarray
) -> Tuple[float, np.ndarray, np.ndarray]:
    """log Z, token marginals (T, K) and pairwise marginals summed over t (K, K)."""
    log_z, marginals, pairs = marginals_one(emissions, transitions, start, end)
    return log_z, marginals, pairs.sum(axis=0)


def marginals_one(
    emissions: np.ndarray, transitions: np.ndarray, start: np.ndarray, end: np.ndarray
) -> Tuple[float, np.ndarray, np.ndarray]:
    """log Z, token marginals (T, K) and each pair's marginals (T - 1, K, K):
    [t, i, j], tag i at t and tag j at t + 1."""
    n_steps = len(emissions)
    log_alpha = np.empty_like(emissions, dtype="float64")
    log_beta = np.empty_like(emissions, dtype="float64")
    log_alpha[0] = start + emissions[0]
    for t in range(1, n_steps):
        log_alpha[t] = logsumexp(log_alpha[t - 1][:, None] + transitions, axis=0) + emissions[t]
    log_beta[-1] = end
    for t in range(n_steps - 2, -1, -1):
        log_beta[t] = logsumexp(transitions + (emissions[t + 1] + log_beta[t + 1])[None, :], axis=1)
    log_z = float(logsumexp(log_alpha[-1] + end, axis=0))
    marginals = np.exp(log_alpha + log_beta - log_z)
    pairs = np.exp(
        log_alpha[:-1, :, None] + transitions + (emissions[1:] + log_beta[1:])[:, None, :] - log_z
    )
    return log_z, marginals, pairs


def viterbi_one(emissions: np.ndarray, transitions: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """The best path of one document (emissions (T, K), T >= 1)."""
    best = start + emissions[0]
    pointers = []
    for t in range(1, len(emissions)):
        candidates = best[:, None] + transitions
        pointers.append(candidates.argmax(axis=0))
        best = candidates.max(axis=0) + emissions[t]
    path = [int((best + end).argmax())]
    for back in reversed(pointers):
        path.append(int(back[path[-1]]))
    return np.asarray(path[::-1], dtype="i")


def viterbi(scores: Sequence[np.ndarray], transitions, start, end) -> List[np.ndarray]:
    return [viterbi_one(np.asarray(s, "float64"), transitions, start, end) for s in scores]


def crf_negative_log_likelihood(
    params: Sequence[np.ndarray],
    emissions: Sequence[np.ndarray],
    truths: Sequence[np.ndarray],
    token_weights: Sequence[np.ndarray],
    mask: Tuple[np.ndarray, np.ndarray, np.ndarray],
):
    """The partial-annotation NLL and its gradients, as CRFLoss defines them.

    Over the documents with a known tag only: a token's class weight scales
    its emission gradient, divided by their summed token weight; the loss and
    the transition, start and end gradients are divided by their number of
    tokens. Returns (loss, emission gradients, (d_transitions, d_start, d_end)).
    """
    transitions = np.asarray(params[0], "float64") + mask[0]
    start = np.asarray(params[1], "float64") + mask[1]
    end = np.asarray(params[2], "float64") + mask[2]
    annotated = [(np.asarray(gold) >= 0).any() for gold in truths]
    total_weight = sum(np.asarray(w, "float64").sum() for w, a in zip(token_weights, annotated) if a)
    n_tokens = sum(len(gold) for gold, a in zip(truths, annotated) if a)
    loss = 0.0
    d_emissions = []
    d_transitions = np.zeros_like(transitions)
    d_start, d_end = np.zeros_like(start), np.zeros_like(end)
    for doc, gold, weights in zip(emissions, truths, token_weights):
        doc = np.asarray(doc, "float64")
        if not len(doc):
            d_emissions.append(np.zeros(doc.shape))
            continue
        gold = np.asarray(gold)
        excluded = (gold[:, None] >= 0) & (np.arange(doc.shape[1])[None, :] != gold[:, None])
        log_z, marginals, pairwise = forward_backward_one(doc, transitions, start, end)
        gold_log_z, gold_marginals, gold_pairwise = forward_backward_one(
            doc + np.where(excluded, FORBIDDEN, 0.0), transitions, start, end
        )
        if not (gold >= 0).any():  # the unconstrained and the gold sums are the same
            d_emissions.append(np.zeros(doc.shape))
            continue
        loss += (log_z - gold_log_z) / n_tokens
        difference = marginals - gold_marginals
        d_emissions.append(np.asarray(weights, "float64")[:, None] * difference / total_weight)
        d_transitions += (pairwise - gold_pairwise) / n_tokens
        d_start += difference[0] / n_tokens
        d_end += difference[-1] / n_tokens
    return loss, d_emissions, (d_transitions, d_start, d_end)
