"""thinc layers: the linear-chain CRF transition scores and its likelihood.

thinc has no CRF layer, and the PyPI CRF packages (pytorch-crf and the like)
are unmaintained and know nothing of spaCy's missing annotation. The CRF here
is small: a layer holding the transition parameters, which passes the
per-token emission scores through unchanged, and a forward-backward pass that
gives the negative log-likelihood and its gradients.

The likelihood is the *partial-annotation* CRF likelihood: the gold score is
the log-sum over all valid paths that agree with the gold tags where they are
known. With complete annotation this is the usual CRF NLL; tokens with missing
annotation simply stay unconstrained, so they teach nothing.
"""

from typing import List, Optional, Sequence, Tuple

import numpy as np
from thinc.api import Model
from thinc.types import Floats2d, Ints1d

from .decoding import FORBIDDEN, pad_batch

CRF_PARAMS = ("transitions", "start", "end")
# Floor of a normaliser: a token whose every tag is excluded (an impossible
# gold sequence) gives a huge but finite loss instead of a NaN.
_TINY = 1e-300


def CRFTransitions(nO: Optional[int] = None) -> Model[List[Floats2d], List[Floats2d]]:
    """Learned tag-to-tag, start and end scores; the forward pass is identity.

    The parameters are read by decoding and trained through
    :func:`crf_negative_log_likelihood`, which adds their gradients.
    """
    return Model(
        "crf",
        _identity_forward,
        init=_init_crf,
        dims={"nO": nO},
        params={name: None for name in CRF_PARAMS},
    )


def _identity_forward(model: Model, X: List[Floats2d], is_train: bool):
    return X, lambda dY: dY


def _init_crf(model: Model, X=None, Y=None) -> None:
    if Y is not None and Y and model.get_dim("nO") is None:
        model.set_dim("nO", Y[0].shape[1])
    n_tags = model.get_dim("nO")
    model.set_param("transitions", model.ops.alloc2f(n_tags, n_tags))
    model.set_param("start", model.ops.alloc1f(n_tags))
    model.set_param("end", model.ops.alloc1f(n_tags))


def crf_scores(
    model: Model, mask: Tuple[np.ndarray, np.ndarray]
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(transitions, start, end) as NumPy arrays, with the IOB2 mask added."""
    mask_transitions, mask_start = mask
    transitions, start, end = (model.ops.to_numpy(model.get_param(p)) for p in CRF_PARAMS)
    return transitions + mask_transitions, start + mask_start, end


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
    model: Model,
    emissions: Sequence[Floats2d],
    truths: Sequence[Ints1d],
    token_weights: Sequence[np.ndarray],
    mask: Tuple[np.ndarray, np.ndarray],
) -> Tuple[float, List[Floats2d]]:
    """Partial-annotation CRF NLL; adds the CRF parameter gradients to `model`.

    truths: per document, the gold tag id per token, -1 where missing.
    token_weights: per document, a weight per token (class weights of the gold
    tag, 1 where missing). A sequence likelihood does not split into
    per-token terms, so class weights scale each token's emission gradient;
    the transition gradient is left unweighted. Loss and gradients are
    divided by the total token weight, as the softmax loss is.
    Returns the loss and the gradient per document w.r.t. the emissions.
    """
    ops = model.ops
    transitions, start, end = crf_scores(model, mask)
    gradients = [ops.alloc2f(*e.shape) for e in emissions]
    keep = [i for i, e in enumerate(emissions) if e.shape[0]]
    if not keep:
        return 0.0, gradients
    free, lengths = pad_batch([ops.to_numpy(emissions[i]).astype("float64") for i in keep])
    golds = [ops.to_numpy(truths[i]) for i in keep]
    log_z, marginals, pairwise = forward_backward(free, lengths, transitions, start, end)
    log_z_gold, gold_marginals, gold_pairwise = _gold_statistics(free, lengths, golds, transitions, start, end)
    weights, _ = pad_batch([np.asarray(token_weights[i], dtype="f")[:, None] for i in keep])
    normalizer = max(float(weights.sum()), 1.0)
    d_emissions = weights * (marginals - gold_marginals) / normalizer
    first = marginals[:, 0] - gold_marginals[:, 0]
    last_index = (np.arange(len(keep)), lengths - 1)
    final = marginals[last_index] - gold_marginals[last_index]
    model.inc_grad("transitions", ops.asarray2f((pairwise - gold_pairwise) / normalizer))
    model.inc_grad("start", ops.asarray1f(first.sum(axis=0) / normalizer))
    model.inc_grad("end", ops.asarray1f(final.sum(axis=0) / normalizer))
    for row, i in enumerate(keep):
        gradients[i] = ops.asarray2f(d_emissions[row, : lengths[row]])
    loss = float((log_z - log_z_gold).sum()) / normalizer
    return loss, gradients


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
