"""The linear-chain CRF: its thinc layers and its mathematics, on the model's device.

thinc has no CRF layer, and the PyPI CRF packages (pytorch-crf and the like)
are unmaintained and know nothing of spaCy's missing annotation, so the CRF
is written here, small:

- `tag_scores_layer` / `CRFTransitions`: the last layer of a tagger. Both
  return `TagScores`: the per-token emission scores, and with a CRF its
  learned transition, start and end scores. The CRF layer's backprop receives
  the gradients of those scores from the loss and adds them to its
  parameters, as any thinc layer does.
- `forward_backward`, `constrained_statistics`, `viterbi`: the recursions,
  written against the array module of the scores (`ops.xp`: NumPy on the
  CPU, CuPy on a GPU) in the scores' own precision, over a padded batch
  (B documents, T tokens, K tags): one vectorised step per token position.
  Nothing is copied to the host.

The likelihood is the *partial-annotation* CRF likelihood: the gold score is
the log-sum over all paths that agree with the gold tags where they are
known. With complete annotation this is the usual CRF NLL; tokens with
missing annotation stay unconstrained, so they teach nothing.
"""

from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np
from thinc.api import Model, get_array_module
from thinc.types import Floats1d, Floats2d, Floats3d, Ints2d

from ..tags import FORBIDDEN

CRF_PARAMS = ("transitions", "start", "end")


@dataclass
class TagScores:
    """What a tagger scores: emissions per document, and a CRF's learned scores.

    emissions: per document, (n_tokens, n_tags).
    transitions (n_tags, n_tags), start (n_tags,), end (n_tags,): the CRF's
        learned scores, without the IOB2 constraints; None without a CRF.
    The gradient of a loss with respect to the scores has the same form.
    """

    emissions: List[Floats2d]
    transitions: Optional[Floats2d] = None
    start: Optional[Floats1d] = None
    end: Optional[Floats1d] = None

    @property
    def has_transitions(self) -> bool:
        """Whether these are a CRF's scores (learned transitions beside the emissions)."""
        return self.transitions is not None


def tag_scores_layer() -> Model[List[Floats2d], TagScores]:
    """Wraps emission scores as `TagScores` (a tagger without a CRF)."""
    return Model("tag_scores", _emissions_forward)


def _emissions_forward(model: Model, X: List[Floats2d], is_train: bool) -> Tuple[TagScores, Callable]:
    def backprop(dY: TagScores) -> List[Floats2d]:
        return dY.emissions

    return TagScores(X), backprop


def CRFTransitions(nO: Optional[int] = None) -> Model[List[Floats2d], TagScores]:
    """Learned tag-to-tag, start and end scores, returned beside the emissions."""
    return Model(
        "crf",
        _crf_forward,
        init=_init_crf,
        dims={"nO": nO},
        params={name: None for name in CRF_PARAMS},
    )


def _crf_forward(model: Model, X: List[Floats2d], is_train: bool) -> Tuple[TagScores, Callable]:
    scores = TagScores(X, *(model.get_param(name) for name in CRF_PARAMS))

    def backprop(dY: TagScores) -> List[Floats2d]:
        if dY.has_transitions:
            for name in CRF_PARAMS:
                model.inc_grad(name, getattr(dY, name))
        return dY.emissions

    return scores, backprop


def _init_crf(model: Model, X=None, Y=None) -> None:
    n_tags = model.get_dim("nO")
    model.set_param("transitions", model.ops.alloc2f(n_tags, n_tags))
    model.set_param("start", model.ops.alloc1f(n_tags))
    model.set_param("end", model.ops.alloc1f(n_tags))


# ---------------------------------------------------------------------------
# The recursions


def forward_backward(
    emissions: Floats3d, lengths: np.ndarray, transitions: Floats2d, start: Floats1d, end: Floats1d
) -> Tuple[Floats1d, Floats3d, Floats2d]:
    """Log-partition, token marginals and summed pairwise marginals.

    emissions: (B, T, K) padded; lengths (B,) on the host, each >= 1.
    Returns log_z (B,), marginals (B, T, K) (zero on padding) and the
    expected transition counts (K, K) summed over the batch, all on the
    emissions' device and in their precision.

    The recursions run in probability space, each step normalised (the
    scaled forward-backward of HMMs): a (B, K) x (K, K) product per token
    instead of a log-sum-exp over (B, K, K), several times faster. Each
    token's scores are shifted by their maximum before exp(), so nothing
    overflows; forbidden transitions (FORBIDDEN) become exact zeros.
    """
    xp = get_array_module(emissions)
    dtype = emissions.dtype
    tiny = xp.finfo(dtype).tiny
    n_docs, n_steps, _ = emissions.shape
    docs = xp.arange(n_docs)
    last = xp.asarray(lengths - 1)
    inside = xp.arange(n_steps)[None, :] < xp.asarray(lengths)[:, None]
    # Padding gets potentials of 1: the recursions run over it unmasked, and
    # what they compute there is never read.
    shift = emissions.max(axis=2, keepdims=True)
    potentials = xp.exp(emissions - shift)
    step_transitions = xp.exp(transitions - transitions.max())
    # alpha[:, t]: forward probabilities, normalised to sum to 1 by scale[:, t].
    alpha = xp.empty_like(emissions)
    scale = xp.empty((n_docs, n_steps), dtype=dtype)
    step = potentials[:, 0] * xp.exp(start - start.max())
    for t in range(n_steps):
        if t:
            step = (alpha[:, t - 1] @ step_transitions) * potentials[:, t]
        scale[:, t] = xp.maximum(step.sum(axis=1), tiny)
        alpha[:, t] = step / scale[:, t, None]
    final = xp.exp(end - end.max())
    closing = xp.maximum((alpha[docs, last] * final).sum(axis=1), tiny)
    log_z = (
        xp.where(inside, xp.log(scale) + shift[:, :, 0], 0).sum(axis=1)
        + xp.log(closing)
        + start.max()
        + end.max()
        + transitions.max() * last.astype(dtype)
    )
    # beta[:, t]: backward probabilities in alpha's scaling, so that alpha *
    # beta are the token marginals; zero past the end of a document.
    # ahead[:, t]: what stepping into token t contributes to beta[:, t - 1].
    beta = xp.zeros_like(emissions)
    beta[docs, last] = final / closing[:, None]
    potentials /= scale[:, :, None]
    ahead = xp.empty_like(emissions)
    ahead[:, -1] = potentials[:, -1] * beta[:, -1]
    for t in range(n_steps - 2, -1, -1):
        beta[:, t] = xp.where((t < last)[:, None], ahead[:, t + 1] @ step_transitions.T, beta[:, t])
        ahead[:, t] = potentials[:, t] * beta[:, t]
    marginals = alpha * beta
    # Marginals of each (t, t + 1) pair, summed over t and the batch.
    pairwise = step_transitions * xp.einsum("bti,btj->ij", alpha[:, :-1], ahead[:, 1:])
    return log_z, marginals, pairwise


def constrained_statistics(
    emissions: Floats3d,
    lengths: np.ndarray,
    golds: Ints2d,
    partial: Sequence[int],
    transitions: Floats2d,
    start: Floats1d,
    end: Floats1d,
) -> Tuple[Floats1d, Floats3d, Floats2d]:
    """`forward_backward` over only the paths that agree with the known gold tags.

    golds: (B, T) gold tag ids on the emissions' device, -1 where missing or
    padding. partial: the rows (host indices) with missing tags. A fully
    annotated document has one such path, whose statistics are read off it
    directly; only the partial rows need the constrained recursions.
    """
    xp = get_array_module(emissions)
    n_docs, n_steps, n_tags = emissions.shape
    inside = xp.arange(n_steps)[None, :] < xp.asarray(lengths)[:, None]
    one_hot = (golds[:, :, None] == xp.arange(n_tags)[None, None, :]).astype(emissions.dtype)
    known = golds >= 0
    safe = xp.where(known, golds, 0)
    docs = xp.arange(n_docs)
    last = xp.asarray(lengths - 1)
    gold_emissions = xp.where(known, xp.take_along_axis(emissions, safe[:, :, None], axis=2)[:, :, 0], 0)
    pair = known[:, :-1] & known[:, 1:]
    gold_transitions = xp.where(pair, transitions[safe[:, :-1], safe[:, 1:]], 0)
    log_z = gold_emissions.sum(axis=1) + gold_transitions.sum(axis=1) + start[safe[:, 0]] + end[safe[docs, last]]
    marginals = one_hot * inside[:, :, None]
    if len(partial) < n_docs:
        complete = xp.ones((n_docs,), dtype=emissions.dtype)
        complete[xp.asarray(list(partial), dtype="int64")] = 0
        path = one_hot * complete[:, None, None]
        pairwise = xp.einsum("bti,btj->ij", path[:, :-1], path[:, 1:])
    else:
        pairwise = xp.zeros_like(transitions)
    if partial:
        rows = xp.asarray(list(partial), dtype="int64")
        # Where the gold tag is known, every other tag is excluded.
        allowed = ~known[rows, :, None] | (one_hot[rows] > 0)
        sub_log_z, sub_marginals, sub_pairwise = forward_backward(
            emissions[rows] + xp.where(allowed, 0, FORBIDDEN).astype(emissions.dtype),
            lengths[list(partial)],
            transitions,
            start,
            end,
        )
        log_z[rows] = sub_log_z
        marginals[rows] = sub_marginals
        pairwise = pairwise + sub_pairwise
    return log_z, marginals, pairwise


def viterbi(
    emissions: Floats3d, lengths: np.ndarray, transitions: Floats2d, start: Floats1d, end: Floats1d
) -> Ints2d:
    """The best tag sequence of each padded document, (B, T), on the scores' device.

    emissions: (B, T, K) log-probabilities or CRF potentials; lengths (B,) on
    the host, each >= 1; transitions (K, K), start (K,), end (K,) are added to
    the path score, FORBIDDEN entries excluding a transition. Entries past a
    document's end are meaningless.
    """
    xp = get_array_module(emissions)
    n_docs, n_steps, n_tags = emissions.shape
    lengths_dev = xp.asarray(lengths)
    backpointers = xp.zeros((n_docs, n_steps, n_tags), dtype="int32")
    best = emissions[:, 0] + start
    for t in range(1, n_steps):
        candidates = best[:, :, None] + transitions[None, :, :]
        backpointers[:, t] = candidates.argmax(axis=1)
        step_best = candidates.max(axis=1) + emissions[:, t]
        # Finished documents keep their score; their backpointers are unused.
        best = xp.where((t < lengths_dev)[:, None], step_best, best)
    # Backtrack all documents at once, each from its own last token.
    docs = xp.arange(n_docs)
    last = lengths_dev - 1
    paths = xp.zeros((n_docs, n_steps), dtype="int32")
    paths[docs, last] = (best + end).argmax(axis=1)
    for t in range(n_steps - 1, 0, -1):
        previous = backpointers[docs, t, paths[:, t]]
        paths[:, t - 1] = xp.where(t <= last, previous, paths[:, t - 1])
    return paths


def pad(ops, arrays: Sequence[Floats2d]) -> Tuple[Floats3d, np.ndarray]:
    """(T_i, K) arrays as one zero-padded (B, max T, K) array, and the lengths (host)."""
    return ops.pad(list(arrays)), np.asarray([len(a) for a in arrays], dtype="int64")
