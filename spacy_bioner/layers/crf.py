"""The linear-chain CRF: its thinc layers and its mathematics, on the model's device.

thinc has no CRF layer, and the PyPI CRF packages (pytorch-crf and the like)
are unmaintained and know nothing of spaCy's missing annotation, so the CRF
is written here, small:

- `tag_scores_layer` / `CRFTransitions`: the last layer of a tagger. Both
  return `TagScores`: the per-token emission scores, and with a CRF its
  learned transition, start and end scores. The CRF layer's backprop receives
  the gradients of those scores from the loss and adds them to its
  parameters, as any thinc layer does.
- `forward_backward`, `path_marginals`, `constrained_statistics`, `viterbi`: the recursions,
  written against the array module of the scores (`ops.xp`: NumPy on the
  CPU, CuPy on a GPU) in the scores' own precision, over a padded batch
  (B documents, T tokens, K tags). Nothing is copied to the host but one
  flag per forward-backward. The sums over paths run in probability space
  on `ScaledScores`, in log space where that would underflow.

Each recursion comes in two schedules (`recursion`), equal up to rounding
(documents whose scores exceed the range of probability products are
computed in log space by both; see `forward_backward`):

- "sequential": one vectorised step per token position, about a dozen
  array operations each. On the CPU an operation on (B, K) arrays costs
  microseconds; on a GPU each is a kernel launch, a dozen times T of them
  in a row for every batch (T, the longest document, is hundreds of tokens
  for an abstract).
- "parallel": the same quantities as products of the per-token (K, K)
  transfer matrices, combined by a Hillis-Steele scan: log2(T) rounds of
  batched matrix products (sum-product for the marginals, max-plus for
  Viterbi, whose backpointers are then followed by pointer jumping). More
  arithmetic (T log T K^3) in far fewer operations.
- "auto" (the default): parallel on a GPU, sequential on the CPU.

The likelihood is the *partial-annotation* CRF likelihood: the gold score is
the log-sum over all paths that agree with the gold tags where they are
known. With complete annotation this is the usual CRF NLL; tokens with
missing annotation stay unconstrained: no gold tag is taught there, but
through their neighbours' gold they still get gradients.
"""

import logging
import math
from dataclasses import dataclass
from functools import partial
from typing import Callable, List, Literal, Optional, Sequence, Tuple, get_args

import numpy as np
from thinc.api import Model, Ops, get_array_module
from thinc.backends import get_array_ops
from thinc.types import ArrayXd, Floats1d, Floats2d, Floats3d, Floats4d, Ints1d, Ints2d

from ..messages import check_choice
from ..tags import FORBIDDEN

# DEBUG records of the documents redone in log space (benchmarks/scripts/step_profile.py counts them).
logger = logging.getLogger(__name__)

CRF_PARAMS = ("transitions", "start", "end")


@dataclass
class TagScores:
    """What a tagger scores: emissions per document, and a CRF's learned scores.

    emissions: per document, (n_tokens, n_tags).
    transitions (n_tags, n_tags), start (n_tags,), end (n_tags,): the CRF's
        learned scores, without the tag scheme's constraints; None without a CRF.
    recursion: how sums and maxima over tag paths are computed from these
        scores (see RECURSIONS), set by the layer that made them.
    The gradient of a loss with respect to the scores has the same form.
    """

    emissions: List[Floats2d]
    transitions: Optional[Floats2d] = None
    start: Optional[Floats1d] = None
    end: Optional[Floats1d] = None
    recursion: str = "auto"

    @property
    def has_transitions(self) -> bool:
        """Whether these are a CRF's scores (learned transitions beside the emissions)."""
        return self.transitions is not None

    def path_scores(self, constraints: Tuple[Floats2d, Floats1d, Floats1d]) -> Tuple[Floats2d, Floats1d, Floats1d]:
        """The transition, start and end scores a tag path is scored with: the scheme's
        `constraints` (on the scores' device: `tags.Constraints.on_device`), plus a CRF's learned ones."""
        if not self.has_transitions:
            return constraints
        transitions, start, end = constraints
        return transitions + self.transitions, start + self.start, end + self.end


# `recursion` is bound to the forward function rather than kept in the model's
# attrs: thinc saves attrs with the weights, and a saved value would then
# override the config a pipeline is loaded with.


def tag_scores_layer(recursion: str = "auto") -> Model[List[Floats2d], TagScores]:
    """Wraps emission scores as `TagScores` (a tagger without a CRF)."""
    return Model("tag_scores", partial(_emissions_forward, recursion=check_recursion(recursion)))


def _emissions_forward(model: Model, X: List[Floats2d], is_train: bool, recursion: str) -> Tuple[TagScores, Callable]:
    def backprop(dY: TagScores) -> List[Floats2d]:
        return dY.emissions

    return TagScores(X, recursion=recursion), backprop


def CRFTransitions(nO: Optional[int] = None, recursion: str = "auto") -> Model[List[Floats2d], TagScores]:
    """Learned tag-to-tag, start and end scores, returned beside the emissions."""
    return Model(
        "crf",
        partial(_crf_forward, recursion=check_recursion(recursion)),
        init=_init_crf,
        dims={"nO": nO},
        params={name: None for name in CRF_PARAMS},
    )


def _crf_forward(model: Model, X: List[Floats2d], is_train: bool, recursion: str) -> Tuple[TagScores, Callable]:
    params = (model.get_param(name) for name in CRF_PARAMS)
    scores = TagScores(X, *params, recursion=recursion)

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

Recursion = Literal["auto", "sequential", "parallel"]
RECURSIONS = get_args(Recursion)

# Elements of the max-plus scan's (documents, matrices, K, K, K) intermediate
# computed at once: 64M (256 MB in float32); more go in chunks.
MAX_PLUS_CHUNK = 1 << 26


def check_recursion(recursion: str) -> str:
    """`recursion` if it names one of RECURSIONS, else a ValueError that lists them."""
    return check_choice(recursion, RECURSIONS, "CRF recursion")


def within_documents(xp, lengths: np.ndarray, n_steps: int) -> ArrayXd:
    """(B, T) bool on xp's device: whether each padded position is within its document."""
    return xp.arange(n_steps)[None, :] < xp.asarray(lengths)[:, None]


def _parallel(recursion: str, xp) -> bool:
    return check_recursion(recursion) == "parallel" or (recursion == "auto" and xp is not np)


# How far a token's marginals may sum from 1 in a trusted document: a relative
# error of log Z of that size, plus float32's rounding, which grows along a
# document (about 6e-9 a token with 21 tags on the CPU: 1.2e-3 at 200,000 tokens).
MARGINAL_TOLERANCE = 1e-3
MARGINAL_TOLERANCE_PER_TOKEN = 2e-8

# NumPy's floating-point warnings, off where the probability-space recursions
# check their own range (`_trusted_sequential`, `_trusted_parallel`).
_UNCHECKED = dict(over="ignore", under="ignore", divide="ignore", invalid="ignore")


def forward_backward(
    emissions: Floats3d,
    lengths: np.ndarray,
    transitions: Floats2d,
    start: Floats1d,
    end: Floats1d,
    recursion: str = "sequential",
) -> Tuple[Floats1d, Floats3d, Floats2d]:
    """Log-partition, token marginals and summed pairwise marginals.

    emissions: (B, T, K) padded; lengths (B,) on the host, each >= 1.
    recursion: one of RECURSIONS (module docstring).
    Returns log_z (B,), marginals (B, T, K) (zero on padding) and the
    expected transition counts (K, K) summed over the batch, all on the
    emissions' device and in their precision.

    Both schedules run in probability space: each token's scores are shifted
    by their maximum before exp(), and so are the transition, start and end
    scores (`ScaledScores`), so nothing overflows and forbidden transitions
    (FORBIDDEN) become exact zeros; the shifts are added back to log Z.

    Probability space has the range of the floating-point type: where every
    path allowed through a token scores far below the token's best tag (a
    tag the scheme forbids there, some 40 nats ahead in float32), the
    products underflow. Each schedule reports the documents where that may
    have happened (`_trusted_sequential`, `_trusted_parallel`), and those are
    computed again in log space (`_forward_backward_log`): exact over any
    range and slower, which is why it is the fallback only (a trained head's
    emissions span far less). Asking costs one device synchronisation.
    """
    log_z, marginals, pairwise, _ = _forward_backward(emissions, lengths, transitions, start, end, recursion)
    return log_z, marginals, pairwise


def path_marginals(
    emissions: Floats3d,
    lengths: np.ndarray,
    transitions: Floats2d,
    start: Floats1d,
    end: Floats1d,
    paths: Ints2d,
    recursion: str = "sequential",
) -> Tuple[Floats2d, Floats3d]:
    """Marginals along tag paths: each token's tag on `paths` (B, T), and
    each such tag with every tag of the next token (B, T - 1, K): [b, t, j]
    is the probability of tag paths[b, t] at t and tag j at t + 1. Zero past
    a document's end; on the emissions' device and in their precision.

    By the chain's Markov property, a stretch of a path has the probability
    of its first tag times each next tag's conditional (pair / token
    marginal): decoding.py scores an entity so. Arguments as
    `forward_backward`'s, which runs the same recursions (and reads the same
    one flag on the host).
    """
    _, marginals, _, onward = _forward_backward(emissions, lengths, transitions, start, end, recursion, paths)
    return along(marginals, paths), onward


def along(values: Floats3d, paths: Ints2d) -> Floats2d:
    """values[b, t, paths[b, t]]: (B, T, K) values read along (B, T) tag ids."""
    xp = get_array_module(values)
    return xp.take_along_axis(values, paths[:, :, None].astype("int64"), axis=2)[:, :, 0]


def _onward(before: Floats3d, transitions: ArrayXd, after: Floats3d, paths: Ints2d, inside: ArrayXd) -> Floats3d:
    """before[b, t, i] * transitions[.., i, j] * after[b, t, j] at i = paths[b, t],
    for every j (B, T - 1, K); zero where t + 1 is padding. before, after:
    (B, T - 1, K); transitions: (K, K), or (B, T - 1, K, K), one per pair."""
    xp = get_array_module(before)
    here = paths[:, :-1].astype("int64")
    if transitions.ndim == 2:
        rows = transitions[here]
    else:
        rows = xp.take_along_axis(transitions, here[:, :, None, None], axis=2)[:, :, 0]
    return xp.where(inside[:, 1:, None], along(before, here)[:, :, None] * rows * after, 0)


def _forward_backward(
    emissions: Floats3d,
    lengths: np.ndarray,
    transitions: Floats2d,
    start: Floats1d,
    end: Floats1d,
    recursion: str,
    paths: Optional[Ints2d] = None,
) -> Tuple[Floats1d, Floats3d, Floats2d, Optional[Floats3d]]:
    """`forward_backward`'s results, and with `paths` the marginals of each path
    tag with every next tag (`path_marginals`; None without)."""
    parallel = _parallel(recursion, get_array_module(emissions))
    fast = _forward_backward_parallel if parallel else _forward_backward_sequential
    scaled = ScaledScores.of(emissions, lengths, transitions, start, end)
    # Where products overflow or underflow, NumPy warns; those documents are computed again below.
    with np.errstate(**_UNCHECKED):
        log_z, marginals, pairwise, trusted, onward = fast(scaled, paths)
    trusted = trusted & ~scaled.flushed
    log_z = log_z + scaled.log_shift
    if bool(trusted.all()):
        return log_z, marginals, pairwise, onward
    trusted_host = get_array_ops(trusted).to_numpy(trusted)
    redo, keep = np.flatnonzero(~trusted_host), np.flatnonzero(trusted_host)
    logger.debug("forward-backward: %d of %d documents redone in log space", redo.size, trusted_host.size,
                 extra={"log_space_documents": int(redo.size)})
    xp = get_array_module(emissions)
    redo_rows = xp.asarray(redo)
    # In float64: the unscaled log scores of a long document are large, and
    # float32 would resolve their differences only to about 1e-3.
    wide = [a.astype("float64") for a in (emissions[redo_rows], transitions, start, end)]
    redo_paths = None if paths is None else paths[redo_rows]
    redo_log_z, redo_marginals, pairwise, redo_onward = _forward_backward_log(
        wide[0], lengths[redo], *wide[1:], paths=redo_paths
    )
    log_z[redo_rows] = redo_log_z
    marginals[redo_rows] = redo_marginals
    if onward is not None:
        onward[redo_rows] = redo_onward
    pairwise = pairwise.astype(emissions.dtype)
    if keep.size:
        # The batch's pairwise sum again, over the trusted documents alone.
        kept = ScaledScores.of(emissions[xp.asarray(keep)], lengths[keep], transitions, start, end)
        with np.errstate(**_UNCHECKED):  # a trusted document's products may still underflow harmlessly
            pairwise = pairwise + fast(kept)[2]
    return log_z, marginals, pairwise, onward


@dataclass
class ScaledScores:
    """A padded batch's CRF scores as probabilities, each factor at most 1.

    potentials (B, T, K): exp(emissions - each token's maximum).
    transitions (K, K), first (B, K), final (K,): exp(transitions), the first
        token's potentials times exp(start), and exp(end), each shifted by its
        maximum likewise.
    lengths (B,): on the host; inside (B, T, bool): within the document;
        last (B,): its last token.
    log_shift (B,): what the shifts took off each document's log Z.
    flushed (B,) bool: a score that no constraint forbids became zero in
        exp() (it lies more than the type's range below its maximum), so the
        paths through it are lost to both recursions, whatever they would weigh.
    """

    potentials: Floats3d
    transitions: Floats2d
    first: Floats2d
    final: Floats1d
    lengths: np.ndarray
    inside: ArrayXd
    last: Ints1d
    log_shift: Floats1d
    flushed: ArrayXd

    @classmethod
    def of(
        cls, emissions: Floats3d, lengths: np.ndarray, transitions: Floats2d, start: Floats1d, end: Floats1d
    ) -> "ScaledScores":
        """The scaled scores of padded `emissions` (B, T, K) with host `lengths`."""
        xp = get_array_module(emissions)
        n_steps = emissions.shape[1]
        last = xp.asarray(lengths - 1)
        inside = within_documents(xp, lengths, n_steps)
        shift = emissions.max(axis=2, keepdims=True)
        gap = emissions - shift
        potentials = xp.exp(gap)
        flushed = (_flushed(gap, emissions).any(axis=2) & inside).any(axis=1)
        for scores in (transitions, start, end):
            flushed = flushed | _flushed(scores - scores.max(), scores).any()
        log_shift = (
            xp.where(inside, shift[:, :, 0], 0).sum(axis=1)
            + start.max()
            + end.max()
            + transitions.max() * last.astype(emissions.dtype)
        )
        return cls(
            potentials=potentials,
            transitions=xp.exp(transitions - transitions.max()),
            first=potentials[:, 0] * xp.exp(start - start.max()),
            final=xp.exp(end - end.max()),
            lengths=lengths,
            inside=inside,
            last=last,
            log_shift=log_shift,
            flushed=flushed,
        )


def _flushed(gap: ArrayXd, scores: ArrayXd) -> ArrayXd:
    """Where exp(gap), a score's distance below its maximum, underflows to zero
    (or to a subnormal) though no constraint forbids the score: FORBIDDEN-level
    scores are meant to vanish."""
    xp = get_array_module(gap)
    return (gap < math.log(xp.finfo(gap.dtype).tiny)) & (scores > FORBIDDEN / 2)


def _forward_backward_sequential(
    scores: ScaledScores, paths: Optional[Ints2d] = None
) -> Tuple[Floats1d, Floats3d, Floats2d, ArrayXd, Optional[Floats3d]]:
    """One step per token, each step normalised (the scaled forward-backward
    of HMMs): a (B, K) x (K, K) product per token instead of a log-sum-exp
    over (B, K, K), several times faster. Returns the scaled log Z, which
    documents the result can be trusted for, and with `paths` their onward
    pair marginals (`path_marginals`; None without)."""
    potentials, step_transitions, last = scores.potentials, scores.transitions, scores.last
    xp = get_array_module(potentials)
    dtype = potentials.dtype
    tiny = xp.finfo(dtype).tiny
    n_docs, n_steps, _ = potentials.shape
    docs = xp.arange(n_docs)
    # Padding gets potentials of 1: the recursions run over it unmasked, and
    # what they compute there is never read.
    # alpha[:, t]: forward probabilities, normalised to sum to 1 by scale[:, t].
    alpha = xp.empty_like(potentials)
    scale = xp.empty((n_docs, n_steps), dtype=dtype)
    step = scores.first
    for t in range(n_steps):
        if t:
            step = (alpha[:, t - 1] @ step_transitions) * potentials[:, t]
        scale[:, t] = xp.maximum(step.sum(axis=1), tiny)
        alpha[:, t] = step / scale[:, t, None]
    closing = xp.maximum((alpha[docs, last] * scores.final).sum(axis=1), tiny)
    log_z = xp.where(scores.inside, xp.log(scale), 0).sum(axis=1) + xp.log(closing)
    # beta[:, t]: backward probabilities in alpha's scaling, so that alpha *
    # beta are the token marginals; zero past the end of a document.
    # ahead[:, t]: what stepping into token t contributes to beta[:, t - 1].
    beta = xp.zeros_like(potentials)
    beta[docs, last] = scores.final / closing[:, None]
    potentials = potentials / scale[:, :, None]
    ahead = xp.empty_like(potentials)
    ahead[:, -1] = potentials[:, -1] * beta[:, -1]
    for t in range(n_steps - 2, -1, -1):
        beta[:, t] = xp.where((t < last)[:, None], ahead[:, t + 1] @ step_transitions.T, beta[:, t])
        ahead[:, t] = potentials[:, t] * beta[:, t]
    marginals = alpha * beta
    # Marginals of each (t, t + 1) pair, summed over t and the batch.
    pairwise = step_transitions * xp.einsum("bti,btj->ij", alpha[:, :-1], ahead[:, 1:])
    onward = None if paths is None else _onward(alpha[:, :-1], step_transitions, ahead[:, 1:], paths, scores.inside)
    return log_z, marginals, pairwise, _trusted_sequential(scale, closing, marginals, scores.inside), onward


def _forward_backward_parallel(
    scores: ScaledScores, paths: Optional[Ints2d] = None
) -> Tuple[Floats1d, Floats3d, Floats2d, ArrayXd, Optional[Floats3d]]:
    """The forward and backward probabilities as prefix and suffix products of
    the transfer matrices M_t = transitions * potentials[t] (columns), each
    product kept normalised to a largest entry of 1 beside its log scale. The
    start scores are folded into the first matrix and the end scores into
    each document's last, so that what normalisation flushes to zero is
    negligible against the paths that count. Past a document's end the
    matrices are identities. Returns what `_forward_backward_sequential` does.
    """
    potentials, inside, last, final = scores.potentials, scores.inside, scores.last, scores.final
    xp = get_array_module(potentials)
    dtype = potentials.dtype
    tiny = xp.finfo(dtype).tiny
    n_docs, n_steps, n_tags = potentials.shape
    docs = xp.arange(n_docs)
    # steps[:, t - 1] = M_t, for t = 1 .. T - 1.
    identity = xp.eye(n_tags, dtype=dtype)
    steps = xp.where(inside[:, 1:, None, None], scores.transitions * potentials[:, 1:, None, :], identity)
    into, out_of = steps.copy(), steps.copy()
    if n_steps > 1:
        into[:, 0] *= scores.first[:, :, None]
        closing = np.flatnonzero(scores.lengths >= 2)  # on the host: no device sync
        out_of[xp.asarray(closing), xp.asarray(scores.lengths[closing] - 2)] *= final
    prefix, prefix_log = _scan_products(into, reverse=False)
    suffix, suffix_log = _scan_products(out_of, reverse=True)
    # alpha[:, t] = first @ M_1 ... M_t; beta[:, t] = M_t+1 ... M_last @ final.
    alpha, alpha_log = _normalise(
        xp.concatenate([scores.first[:, None], prefix.sum(axis=2)], axis=1),
        xp.concatenate([xp.zeros((n_docs, 1), dtype=dtype), prefix_log], axis=1),
    )
    beta = xp.concatenate([suffix.sum(axis=3), xp.ones((n_docs, 1, n_tags), dtype=dtype)], axis=1)
    beta_log = xp.concatenate([suffix_log, xp.zeros((n_docs, 1), dtype=dtype)], axis=1)
    beta[docs, last] = final
    beta_log[docs, last] = 0
    beta, beta_log = _normalise(beta, beta_log)
    # alpha[:, t] . beta[:, t] is the partition function at every t.
    joint = alpha * beta
    total = xp.maximum(joint.sum(axis=2), tiny)
    marginals = xp.where(inside[:, :, None], joint / total[:, :, None], 0)
    log_z_at = xp.log(total) + alpha_log + beta_log
    log_z = log_z_at[:, 0]
    # Each (t, t + 1) pair's marginals sum to 1: normalise, then add up.
    pairs = alpha[:, :-1, :, None] * steps * beta[:, 1:, None, :]
    weights = xp.where(inside[:, 1:], 1 / xp.maximum(pairs.sum(axis=(2, 3)), tiny), 0)
    pairwise = xp.einsum("btij,bt->ij", pairs, weights)
    onward = None if paths is None else _onward(alpha[:, :-1], steps, beta[:, 1:], paths, inside) * weights[:, :, None]
    return log_z, marginals, pairwise, _trusted_parallel(log_z_at, total, inside), onward


def _trusted_sequential(scale: Floats2d, closing: Floats1d, marginals: Floats3d, inside: ArrayXd) -> ArrayXd:
    """(B,) bool: no step of a document lost its paths to underflow.

    A step's normaliser is the share of the token's best score that allowed
    paths reach; below the square root of the smallest normal number (about
    e^-44 in float32) the products have lost precision, or everything. A path
    the forward pass flushed while far behind, which later tokens make the
    best, escapes that test but not the backward pass, which starts from the
    end: the tokens' marginals then do not sum to 1 (or are NaN, where the
    backward values overflowed against a flushed zero).
    """
    xp = get_array_module(scale)
    floor = xp.finfo(scale.dtype).tiny ** 0.5
    total = xp.where(inside, marginals.sum(axis=2), 1)
    tolerance = MARGINAL_TOLERANCE + MARGINAL_TOLERANCE_PER_TOKEN * inside.sum(axis=1, keepdims=True)
    consistent = (xp.abs(total - 1) <= tolerance).all(axis=1)  # False where NaN
    return (xp.where(inside, scale, 1).min(axis=1) > floor) & (closing > floor) & consistent


def _trusted_parallel(log_z_at: Floats2d, total: Floats2d, inside: ArrayXd) -> ArrayXd:
    """(B,) bool: alpha . beta did not underflow, and gave the same log Z at
    every token of a document.

    What the scan's normalisations flush to zero differs from token to token,
    so a flushed product shows as a log Z that moves along the document.
    """
    xp = get_array_module(log_z_at)
    floor = xp.finfo(total.dtype).tiny ** 0.5
    first = log_z_at[:, :1]
    drift = xp.where(inside, xp.abs(log_z_at - first), 0).max(axis=1)
    tolerance = 1e-2 + 1e-5 * xp.abs(first[:, 0])
    return (xp.where(inside, total, 1).min(axis=1) > floor) & xp.isfinite(first[:, 0]) & (drift <= tolerance)


def log_softmax(scores: ArrayXd, axis: int = -1) -> ArrayXd:
    """The log of the softmax of `scores` along `axis`, computed from the shifted scores:
    exact for a confidently wrong tag, where the log of a softmax would underflow."""
    xp = get_array_module(scores)
    shifted = scores - scores.max(axis=axis, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))


def _logsumexp(scores: ArrayXd, axis: int) -> ArrayXd:
    xp = get_array_module(scores)
    top = scores.max(axis=axis, keepdims=True)
    top = xp.where(xp.isfinite(top), top, 0)
    return xp.log(xp.exp(scores - top).sum(axis=axis)) + xp.squeeze(top, axis=axis)


def _forward_backward_log(
    emissions: Floats3d,
    lengths: np.ndarray,
    transitions: Floats2d,
    start: Floats1d,
    end: Floats1d,
    paths: Optional[Ints2d] = None,
) -> Tuple[Floats1d, Floats3d, Floats2d, Optional[Floats3d]]:
    """`forward_backward` in log space, one (B, K, K) log-sum-exp per token:
    exact whatever the range of the scores, several times slower. Returns the
    unscaled log Z, and with `paths` their onward pair marginals (None without)."""
    xp = get_array_module(emissions)
    n_docs, n_steps, _ = emissions.shape
    inside = within_documents(xp, lengths, n_steps)
    docs = xp.arange(n_docs)
    last = xp.asarray(lengths - 1)
    # alpha past a document's end keeps its last value; beta there is unused.
    alpha = xp.empty_like(emissions)
    alpha[:, 0] = emissions[:, 0] + start
    for t in range(1, n_steps):
        step = _logsumexp(alpha[:, t - 1, :, None] + transitions, axis=1) + emissions[:, t]
        alpha[:, t] = xp.where(inside[:, t, None], step, alpha[:, t - 1])
    log_z = _logsumexp(alpha[docs, last] + end, axis=1)
    beta = xp.zeros_like(emissions)
    beta[docs, last] = end
    for t in range(n_steps - 2, -1, -1):
        step = _logsumexp(transitions + (emissions[:, t + 1] + beta[:, t + 1])[:, None, :], axis=2)
        beta[:, t] = xp.where((t < last)[:, None], step, beta[:, t])
    # Padding is masked before exp, not after: its scores are no log probabilities and may overflow.
    marginals = xp.exp(xp.where(inside[:, :, None], alpha + beta - log_z[:, None, None], -xp.inf))
    pairs = (
        alpha[:, :-1, :, None] + transitions + (emissions[:, 1:] + beta[:, 1:])[:, :, None, :]
        - log_z[:, None, None, None]
    )
    pairs = xp.exp(xp.where(inside[:, 1:, None, None], pairs, -xp.inf))
    pairwise = pairs.sum(axis=(0, 1))
    if paths is None:
        return log_z, marginals, pairwise, None
    ones = xp.ones_like(emissions[:, :-1])
    return log_z, marginals, pairwise, _onward(ones, pairs, ones, paths, inside)


def _scan_products(matrices: Floats4d, reverse: bool) -> Tuple[Floats4d, Floats2d]:
    """Inclusive prefix products (suffix products if `reverse`) of each
    document's (K, K) matrices, in log2(n) rounds (Hillis-Steele).

    matrices: (B, n, K, K), non-negative. Returns the products, each scaled
    to a largest entry of 1, and the log of each scale, (B, n).
    """
    xp = get_array_module(matrices)
    tiny = xp.finfo(matrices.dtype).tiny
    top = xp.maximum(matrices.max(axis=(2, 3)), tiny)
    products = matrices / top[:, :, None, None]
    log_scale = xp.log(top)
    n_matrices, offset = matrices.shape[1], 1
    while offset < n_matrices:
        combined = products[:, :-offset] @ products[:, offset:]
        top = xp.maximum(combined.max(axis=(2, 3)), tiny)
        scales = log_scale[:, :-offset] + log_scale[:, offset:] + xp.log(top)
        target = slice(0, n_matrices - offset) if reverse else slice(offset, n_matrices)
        products[:, target] = combined / top[:, :, None, None]
        log_scale[:, target] = scales
        offset *= 2
    return products, log_scale


def _normalise(vectors: Floats3d, log_scale: Floats2d) -> Tuple[Floats3d, Floats2d]:
    """Scale each vector (last axis) to sum to 1, adding the log of its sum to `log_scale`."""
    xp = get_array_module(vectors)
    total = xp.maximum(vectors.sum(axis=-1), xp.finfo(vectors.dtype).tiny)
    return vectors / total[..., None], log_scale + xp.log(total)


def constrained_statistics(
    emissions: Floats3d,
    lengths: np.ndarray,
    golds: Ints2d,
    partial: Sequence[int],
    transitions: Floats2d,
    start: Floats1d,
    end: Floats1d,
    recursion: str = "sequential",
) -> Tuple[Floats1d, Floats3d, Floats2d]:
    """`forward_backward` over only the paths that agree with the known gold tags.

    golds: (B, T) gold tag ids on the emissions' device, -1 where missing or
    padding. partial: the rows (host indices) with missing tags. A fully
    annotated document has one such path, whose statistics are read off it
    directly; only the partial rows need the constrained recursions.
    """
    xp = get_array_module(emissions)
    n_docs, n_steps, n_tags = emissions.shape
    inside = within_documents(xp, lengths, n_steps)
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
            recursion=recursion,
        )
        log_z[rows] = sub_log_z
        marginals[rows] = sub_marginals
        pairwise = pairwise + sub_pairwise
    return log_z, marginals, pairwise


def viterbi(
    emissions: Floats3d,
    lengths: np.ndarray,
    transitions: Floats2d,
    start: Floats1d,
    end: Floats1d,
    recursion: str = "sequential",
) -> Ints2d:
    """The best tag sequence of each padded document, (B, T), on the scores' device.

    emissions: (B, T, K) log-probabilities or CRF log-potentials (scores); lengths (B,) on
    the host, each >= 1; transitions (K, K), start (K,), end (K,) are added to
    the path score, -inf entries excluding a transition (the decoder's; a
    FORBIDDEN one only where no score gap outweighs it). Entries past a
    document's end are meaningless. recursion: one of RECURSIONS; the two
    schedules add the same scores in a different order, so they can part only
    where two paths tie to within rounding.
    """
    if _parallel(recursion, get_array_module(emissions)):
        return _viterbi_parallel(emissions, lengths, transitions, start, end)
    return _viterbi_sequential(emissions, lengths, transitions, start, end)


def _viterbi_sequential(
    emissions: Floats3d, lengths: np.ndarray, transitions: Floats2d, start: Floats1d, end: Floats1d
) -> Ints2d:
    """One max-plus step per token, then one backtracking step per token."""
    xp = get_array_module(emissions)
    n_docs, n_steps, n_tags = emissions.shape
    lengths_dev = xp.asarray(lengths)
    backpointers = xp.zeros((n_docs, n_steps, n_tags), dtype="int32")
    best = emissions[:, 0] + start
    for t in range(1, n_steps):
        candidates = best[:, :, None] + transitions[None, :, :]
        backpointers[:, t] = candidates.argmax(axis=1)
        step_best = candidates.max(axis=1) + emissions[:, t]
        # Renormalised (the best path is the same): unnormalised sums grow with
        # the document, and float32 resolves them only to ~1e-7 of their size.
        step_best -= step_best.max(axis=1, keepdims=True)
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


def _viterbi_parallel(
    emissions: Floats3d, lengths: np.ndarray, transitions: Floats2d, start: Floats1d, end: Floats1d
) -> Ints2d:
    """Each token's best score per tag as max-plus prefix products of the
    step matrices W_t = transitions + emissions[t] (columns), the start scores
    folded into the first; then every backpointer at once, and the path by
    composing them (pointer jumping): both in log2(T) rounds.
    """
    xp = get_array_module(emissions)
    dtype = emissions.dtype
    n_docs, n_steps, n_tags = emissions.shape
    docs = xp.arange(n_docs)
    last = xp.asarray(lengths - 1)
    inside = within_documents(xp, lengths, n_steps)
    first = emissions[:, 0] + start
    # The max-plus identity past a document's end.
    identity = xp.where(xp.eye(n_tags, dtype=bool), 0, -xp.inf).astype(dtype)
    steps = xp.where(inside[:, 1:, None, None], transitions + emissions[:, 1:, None, :], identity)
    if n_steps > 1:
        steps[:, 0] += first[:, :, None]
    best = xp.concatenate([first[:, None], _max_plus_prefix(steps).max(axis=2)], axis=1)
    # pointers[:, t][j]: the best tag at t before tag j at t + 1; then, after
    # round r, the tag at t reached from tag j at t + 2^r.
    pointers = (best[:, :-1, :, None] + transitions).argmax(axis=2)
    pointers = xp.where(inside[:, 1:, None], pointers, xp.arange(n_tags))
    offset = 1
    while offset < n_steps - 1:
        pointers[:, :-offset] = xp.take_along_axis(pointers[:, :-offset], pointers[:, offset:], axis=2)
        offset *= 2
    final = (best[docs, last] + end).argmax(axis=1)
    paths = xp.empty((n_docs, n_steps), dtype="int32")
    paths[:, -1] = final
    ends = xp.broadcast_to(final[:, None, None], (n_docs, n_steps - 1, 1))
    paths[:, :-1] = xp.take_along_axis(pointers, ends, axis=2)[:, :, 0]
    return paths


def _max_plus_product(left: ArrayXd, right: ArrayXd) -> ArrayXd:
    """Max-plus matrix products over the last two axes: max over k of left[i, k] + right[k, j]."""
    return (left[..., :, :, None] + right[..., None, :, :]).max(axis=-2)


def _max_plus_prefix(matrices: Floats4d) -> Floats4d:
    """Inclusive max-plus prefix products of each document's (K, K) matrices,
    (B, n, K, K), in log2(n) rounds, each up to a constant of its own: every
    product is renormalised to a largest entry of 0, which changes no argmax
    and keeps long documents' sums within float32's resolution.

    A round's intermediate has K^3 elements per matrix; it is kept under
    MAX_PLUS_CHUNK by taking documents in chunks and, where one document
    alone is longer than that allows (a whole book in `annotate`), its
    matrices in blocks: each block is scanned, then led by the product of
    every matrix before it.
    """
    n_docs, n_matrices, n_tags, _ = matrices.shape
    per_matrix = n_tags**3
    block = max(min(MAX_PLUS_CHUNK // per_matrix, n_matrices), 1)
    chunk = max(MAX_PLUS_CHUNK // (block * per_matrix), 1)
    products = matrices.copy()
    for rows in range(0, n_docs, chunk):
        part = products[rows : rows + chunk]
        for begin in range(0, n_matrices, block):
            piece = part[:, begin : begin + block]
            offset = 1
            while offset < piece.shape[1]:
                piece[:, offset:] = _renormalised(_max_plus_product(piece[:, :-offset], piece[:, offset:]))
                offset *= 2
            if begin:
                piece[...] = _renormalised(_max_plus_product(part[:, begin - 1, None], piece))
    return products


def _renormalised(products: ArrayXd) -> ArrayXd:
    """Max-plus matrices (..., K, K) shifted to a largest entry of 0 each."""
    return products - products.max(axis=(-2, -1), keepdims=True)


def pad(ops: Ops, arrays: Sequence[Floats2d]) -> Tuple[Floats3d, np.ndarray]:
    """(T_i, K) arrays as one zero-padded (B, max T, K) array, and the lengths (host)."""
    return ops.pad(list(arrays)), np.asarray([len(a) for a in arrays], dtype="int64")
