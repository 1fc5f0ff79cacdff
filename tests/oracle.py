"""The NumPy (float64) CRF and Viterbi that the device code replaced, kept as a test oracle.

The package's `layers/crf.py` runs the same recursions on the model's device
in the scores' precision; the parity tests compare the two on random batches.
"""

from typing import List, Sequence, Tuple

import numpy as np

FORBIDDEN = -1e4
_TINY = 1e-300


def pad_batch(arrays: Sequence[np.ndarray]) -> Tuple[np.ndarray, np.ndarray]:
    """Stack (T_i, K) arrays into (B, max T, K) zero-padded, with the lengths."""
    lengths = np.asarray([len(a) for a in arrays], dtype="i")
    n_tags = arrays[0].shape[1] if arrays else 0
    padded = np.zeros((len(arrays), int(lengths.max(initial=0)), n_tags), dtype="float64")
    for i, array in enumerate(arrays):
        padded[i, : len(array)] = array
    return padded, lengths


def viterbi(
    scores: Sequence[np.ndarray],
    transitions: np.ndarray,
    start: np.ndarray,
    end: np.ndarray,
) -> List[np.ndarray]:
    """Best tag sequence per document under additive transition scores.

    scores: per document, (T_i, K) emission scores (log-probabilities or CRF
    potentials). transitions (K, K), start (K,), end (K,): added to the path
    score, with FORBIDDEN entries excluding a transition.
    """
    if not scores:
        return []
    emissions, lengths = pad_batch(scores)
    n_docs, n_steps, n_tags = emissions.shape
    if n_steps == 0:
        return [np.zeros((0,), dtype="i") for _ in scores]
    backpointers = np.zeros((n_docs, n_steps, n_tags), dtype="i")
    best = emissions[:, 0] + start
    for t in range(1, n_steps):
        candidates = best[:, :, None] + transitions[None, :, :]
        backpointers[:, t] = candidates.argmax(axis=1)
        step_best = np.take_along_axis(candidates, backpointers[:, t, None, :], axis=1)[:, 0] + emissions[:, t]
        # Finished documents keep their score; their backpointers are unused.
        active = (t < lengths)[:, None]
        best = np.where(active, step_best, best)
    # Backtrack all documents at once, each from its own last token.
    docs = np.arange(n_docs)
    last = lengths - 1
    paths = np.zeros((n_docs, n_steps), dtype="i")
    paths[docs, last] = (best + end).argmax(axis=1)
    for t in range(n_steps - 1, 0, -1):
        previous = backpointers[docs, t, paths[:, t]]
        paths[:, t - 1] = np.where(t <= last, previous, paths[:, t - 1])
    return [paths[i, :length] for i, length in enumerate(lengths)]


def forward_backward(
    emissions: np.ndarray,
    lengths: np.ndarray,
    transitions: np.ndarray,
    start: np.ndarray,
    end: np.ndarray,
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Log-partition, token marginals and summed pairwise marginals.

    emissions: (B, T, K) padded; lengths (B,), each >= 1.
    Returns log_z (B,), marginals (B, T, K) (zero on padding) and the
    expected transition counts (K, K) summed over the batch.

    The recursions run in probability space, each step normalised (the
    scaled forward-backward of HMMs): a (B, K) x (K, K) product per token
    instead of a log-sum-exp over (B, K, K), 6 times faster on a JNLPBA-sized
    batch. It matters: the CRF runs on the CPU even when the encoder is on a
    GPU, once per training step and once per predicted batch. Forbidden
    transitions (FORBIDDEN) become exact zeros.
    """
    n_docs, n_steps, _ = emissions.shape
    docs = np.arange(n_docs)
    last = lengths - 1
    inside = np.arange(n_steps)[None, :] < lengths[:, None]
    # Each token's scores shifted by their maximum, so that exp() cannot
    # overflow; the shifts go back into log_z. Padding (zeros) gets
    # potentials of 1: the recursions run over it unmasked, and what they
    # compute there is never read.
    shift = emissions.max(axis=2, keepdims=True)
    potentials = np.exp(emissions - shift)
    step_transitions = np.exp(transitions - transitions.max())
    # alpha[:, t]: forward probabilities, normalised to sum to 1 by scale[:, t].
    alpha = np.empty_like(emissions)
    scale = np.empty((n_docs, n_steps))
    step = potentials[:, 0] * np.exp(start - start.max())
    for t in range(n_steps):
        if t:
            step = (alpha[:, t - 1] @ step_transitions) * potentials[:, t]
        scale[:, t] = np.maximum(step.sum(axis=1), _TINY)
        alpha[:, t] = step / scale[:, t, None]
    final = np.exp(end - end.max())
    closing = np.maximum((alpha[docs, last] * final).sum(axis=1), _TINY)
    log_z = (
        np.where(inside, np.log(scale) + shift[:, :, 0], 0.0).sum(axis=1)
        + np.log(closing)
        + start.max()
        + end.max()
        + transitions.max() * last
    )
    # beta[:, t]: backward probabilities in alpha's scaling, so that alpha *
    # beta are the token marginals; zero past the end of a document.
    # ahead[:, t]: what stepping into token t contributes to beta[:, t - 1].
    beta = np.zeros_like(emissions)
    beta[docs, last] = final / closing[:, None]
    potentials /= scale[:, :, None]
    ahead = np.empty_like(emissions)
    ahead[:, -1] = potentials[:, -1] * beta[:, -1]
    for t in range(n_steps - 2, -1, -1):
        beta[:, t] = np.where((t < last)[:, None], ahead[:, t + 1] @ step_transitions.T, beta[:, t])
        ahead[:, t] = potentials[:, t] * beta[:, t]
    marginals = alpha * beta
    # Marginals of each (t, t + 1) pair, summed over t and the batch.
    pairwise = step_transitions * np.einsum("bti,btj->ij", alpha[:, :-1], ahead[:, 1:])
    return log_z, marginals, pairwise


def crf_negative_log_likelihood(
    params: Tuple[np.ndarray, np.ndarray, np.ndarray],
    emissions: Sequence[np.ndarray],
    truths: Sequence[np.ndarray],
    token_weights: Sequence[np.ndarray],
    mask: Tuple[np.ndarray, np.ndarray],
):
    """Partial-annotation CRF NLL, its emission gradients and the (transitions, start, end) gradients.

    truths: per document, the gold tag id per token, -1 where missing.
    token_weights: per document, a weight per token (class weights of the gold
    tag, 1 where missing). A sequence likelihood does not split into
    per-token terms, so class weights scale each token's emission gradient;
    the transition gradient is left unweighted. Loss and gradients are
    divided by the total token weight, as the softmax loss is.
    Returns the loss and the gradient per document w.r.t. the emissions.
    """
    learned_transitions, learned_start, learned_end = (np.asarray(p, dtype="float64") for p in params)
    transitions, start, end = learned_transitions + mask[0], learned_start + mask[1], learned_end
    gradients = [np.zeros(e.shape) for e in emissions]
    keep = [i for i, e in enumerate(emissions) if e.shape[0]]
    if not keep:
        return 0.0, gradients, None
    free, lengths = pad_batch([np.asarray(emissions[i], dtype="float64") for i in keep])
    golds = [np.asarray(truths[i]) for i in keep]
    log_z, marginals, pairwise = forward_backward(free, lengths, transitions, start, end)
    log_z_gold, gold_marginals, gold_pairwise = _gold_statistics(free, lengths, golds, transitions, start, end)
    weights, _ = pad_batch([np.asarray(token_weights[i], dtype="float64")[:, None] for i in keep])
    normalizer = max(float(weights.sum()), 1.0)
    d_emissions = weights * (marginals - gold_marginals) / normalizer
    first = marginals[:, 0] - gold_marginals[:, 0]
    last_index = (np.arange(len(keep)), lengths - 1)
    final = marginals[last_index] - gold_marginals[last_index]
    param_grads = ((pairwise - gold_pairwise) / normalizer, first.sum(axis=0) / normalizer, final.sum(axis=0) / normalizer)
    for row, i in enumerate(keep):
        gradients[i] = d_emissions[row, : lengths[row]]
    loss = float((log_z - log_z_gold).sum()) / normalizer
    return loss, gradients, param_grads


def _gold_statistics(
    emissions: np.ndarray,
    lengths: np.ndarray,
    golds: Sequence[np.ndarray],
    transitions: np.ndarray,
    start: np.ndarray,
    end: np.ndarray,
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """forward_backward over the paths that agree with the known gold tags.

    A fully annotated document has one such path, whose statistics are read
    off directly; only documents with missing tags need the constrained
    forward-backward pass.
    """
    log_z = np.zeros((len(golds),))
    marginals = np.zeros_like(emissions)
    pairwise = np.zeros_like(transitions)
    partial = [row for row, gold in enumerate(golds) if (gold < 0).any()]
    for row, gold in enumerate(golds):
        if (gold < 0).any():
            continue
        steps = np.arange(len(gold))
        log_z[row] = (
            emissions[row, steps, gold].sum() + start[gold[0]] + end[gold[-1]] + transitions[gold[:-1], gold[1:]].sum()
        )
        marginals[row, steps, gold] = 1.0
        np.add.at(pairwise, (gold[:-1], gold[1:]), 1.0)
    if partial:
        # Tags other than the known gold one are excluded where it is known.
        allowed = np.zeros((len(partial),) + emissions.shape[1:])
        for subrow, row in enumerate(partial):
            known = np.flatnonzero(golds[row] >= 0)
            allowed[subrow, known] = FORBIDDEN
            allowed[subrow, known, golds[row][known]] = 0.0
        sub_log_z, sub_marginals, sub_pairwise = forward_backward(
            emissions[partial] + allowed, lengths[partial], transitions, start, end
        )
        log_z[partial] = sub_log_z
        marginals[partial] = sub_marginals
        pairwise += sub_pairwise
    return log_z, marginals, pairwise
