"""Decoding: tag scores to well-formed tag paths, each tag with a confidence.

A softmax tagger decoded with a per-token argmax can emit ``O I-DNA`` or
``B-protein I-DNA``: sequences that no entity reading explains. The decoder
runs Viterbi over the valid paths of the tag scheme only (IOB2 or BILUO:
tags.py), so every output is well formed; with a CRF the learned transition
scores are added to the same constraints. It runs on the scores' device;
only the integer paths and the confidences are copied to the host.

A predicted entity's score (`span_scores`) is either the probability of its
stretch of the path, the same for each of its tokens ("segment"), or the
mean of its tokens' own confidences ("token_mean"). The first is what a
score should say: each token of a three-token entity can be inside an entity
with probability 0.9 while the reading of exactly those three tokens as one
entity of that label is far less likely, where the model is unsure where
the entity begins or ends.

Documents are decoded as one padded batch, or, where one long document would
pad the others past a memory budget (`padded_groups`; `annotate` may batch a
book with abstracts), in groups of similar length.
"""

from typing import List, Literal, Sequence, Tuple, get_args

import numpy as np
from thinc.api import Ops
from thinc.types import Floats2d, Floats3d, Ints2d

from .layers.crf import TagScores, along, forward_backward, log_softmax, pad, path_marginals, viterbi, within_documents
from .messages import check_choice
from .tags import continuations, tag_constraints

# How an entity is scored (a Literal, so that spaCy's config check names a wrong one).
SpanScores = Literal["segment", "token_mean"]
SPAN_SCORES = get_args(SpanScores)


def check_span_scores(span_scores: str) -> str:
    """`span_scores` if it names one of SPAN_SCORES, else a ValueError that lists them."""
    return check_choice(span_scores, SPAN_SCORES, "span_scores")


# The most padded (token, tag, tag) cells one batch of the decoder holds at a
# time: the parallel schedule keeps several (B, T, K, K) arrays (`layers/crf.py`).
DECODE_CELLS = 1 << 24


def padded_groups(lengths: Sequence[int], cells_per_token: int, budget: int = DECODE_CELLS) -> List[List[int]]:
    """The non-empty documents' indices in batches whose padded size (documents
    times the longest one's tokens, times `cells_per_token`) stays within
    `budget`, or of one document where it alone is larger: one batch as
    given where all fit, so that abstracts decode together; otherwise by
    length, so that one long document does not pad every other to its length."""
    keep = [i for i, n in enumerate(lengths) if n]
    if len(keep) * max((lengths[i] for i in keep), default=0) * cells_per_token <= budget:
        return [keep] if keep else []
    groups: List[List[int]] = [[]]
    for i in sorted(keep, key=lambda i: lengths[i]):
        if groups[-1] and (len(groups[-1]) + 1) * lengths[i] * cells_per_token > budget:
            groups.append([])
        groups[-1].append(i)
    return groups


class ConstrainedViterbi:
    """The best well-formed tag path of each document, and each tag's confidence.

    Without learned transitions the tokens' log-softmax scores are decoded
    under the scheme's constraints, and a tag's probability is its softmax
    probability (the tokens independent). With them (a CRF) the emissions are
    decoded with the learned scores plus the constraints, and a tag's
    probability is its CRF marginal.

    span_scores: "token_mean": each token's confidence is its tag's
    probability. "segment": the tokens of an entity on the path each get the
    probability that the entity is exactly that one (these tokens, this
    label): its first tag's probability, times each next tag's conditional
    probability given the one before (the CRF's pair marginal over the token
    marginal), times, in IOB2, the probability that the next token does not
    go on with it; a token outside any entity, its tag's probability.

    max_cells: the most padded (token, tag, tag) cells decoded at once
    (`padded_groups`): a bound on the memory that padding documents to one
    length takes; a document larger alone is decoded by itself, whatever its size.
    """

    def __init__(self, tags: Sequence[str], span_scores: str = "token_mean", max_cells: int = DECODE_CELLS) -> None:
        self.tags = list(tags)
        self.max_cells = max_cells
        self.constraints = tag_constraints(self.tags)
        self.span_scores = check_span_scores(span_scores)
        self.continuations = continuations(self.tags)

    def __call__(self, ops: Ops, scores: TagScores) -> Tuple[List[np.ndarray], List[np.ndarray]]:
        """Per document: the tag id of each token, and its confidence in [0, 1] (host arrays)."""
        emissions = scores.emissions
        paths = [np.zeros((len(e),), dtype="i") for e in emissions]
        confidences = [np.ones((len(e),), dtype="f") for e in emissions]
        for group in padded_groups([len(e) for e in emissions], len(self.tags) ** 2, self.max_cells):
            best, chosen, lengths = self._decode(ops, [emissions[i] for i in group], scores)
            for row, i in enumerate(group):
                paths[i] = best[row, : lengths[row]]
                confidences[i] = chosen[row, : lengths[row]]
        return paths, confidences

    def _decode(
        self, ops: Ops, emissions: Sequence[Floats2d], scores: TagScores
    ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The paths and confidences of documents padded into one batch (host, (B, T)), and their lengths."""
        padded, lengths = pad(ops, emissions)
        xp = ops.xp
        segments = self.span_scores == "segment"
        constraints = self.constraints.on_device(ops, padded.dtype)
        transitions, start, end = scores.path_scores(constraints)
        # Viterbi excludes what the scheme forbids outright: the finite penalty that the sums
        # need loses to a token's score gap beyond it (scores of a diverged model).
        excluded = [xp.where(constraint < 0, -xp.inf, score).astype(padded.dtype)
                    for constraint, score in zip(constraints, (transitions, start, end))]
        if scores.has_transitions:
            best = viterbi(padded, lengths, *excluded, scores.recursion)
            if segments:
                chosen, pairs = path_marginals(padded, lengths, transitions, start, end, best, scores.recursion)
                # The next token's tags given the path's tag: pair over token marginal.
                following = pairs / xp.maximum(chosen[:, :-1, None], xp.finfo(padded.dtype).tiny)
            else:
                _, marginals, _ = forward_backward(padded, lengths, transitions, start, end, scores.recursion)
                chosen = along(marginals, best)
        else:
            log_probs = log_softmax(padded, axis=2)
            best = viterbi(log_probs, lengths, *excluded, scores.recursion)
            chosen = xp.exp(along(log_probs, best))
            if segments:
                following = xp.exp(log_probs[:, 1:])  # the tokens are independent
        # Float32 marginals can exceed 1 by a rounding error; a confidence is a probability.
        chosen = xp.clip(chosen, 0.0, 1.0)
        if segments:
            chosen = self._segment_probabilities(ops, chosen, xp.clip(following, 0.0, 1.0), best, lengths)
        return ops.to_numpy(best), ops.to_numpy(chosen).astype("f"), lengths

    def _segment_probabilities(
        self, ops: Ops, chosen: Floats2d, following: Floats3d, paths: Ints2d, lengths: np.ndarray
    ) -> Floats2d:
        """Each token's probability of its stretch of the path: an entity's
        tokens, or one token outside any (B, T), from the probabilities of the
        path's tags (B, T) and of each next tag given the path's (B, T - 1, K)."""
        xp = ops.xp
        inside = within_documents(xp, lengths, chosen.shape[1])
        goes_on_with = ops.asarray(self.continuations)
        here, there = paths[:, :-1].astype("int64"), paths[:, 1:].astype("int64")
        # joined[:, t]: the path's tag at t + 1 goes on with the entity of its tag at t.
        joined = goes_on_with[here, there] & inside[:, 1:]
        factors = chosen.copy()
        factors[:, 1:] = xp.where(joined, along(following, there), chosen[:, 1:])
        # Where the path's entity ends though the next token could go on with
        # it (IOB2's B- or I- before O or B-): times the chance that it does not,
        # summed over the tags that do not (1 - the others would cancel in float32).
        open_ended = goes_on_with.any(axis=1)[here] & ~joined & inside[:, 1:]
        stops = (following * ~goes_on_with[here]).sum(axis=2)
        factors[:, :-1] *= xp.where(open_ended, xp.clip(stops, 0.0, 1.0), 1)
        log_factors = xp.where(inside, xp.log(xp.maximum(factors, xp.finfo(chosen.dtype).tiny)), 0)
        # Stretches numbered over the flattened batch, each starting where the
        # path is not joined; the ids are sorted, so a stretch's first and last
        # position are found by binary search (bincount would wait for the host
        # on CuPy), and its log-probability is a difference of running sums.
        starts = xp.ones(chosen.shape, dtype=bool)
        starts[:, 1:] = ~joined
        stretch = xp.cumsum(starts.ravel()) - 1
        running = xp.cumsum(log_factors.ravel().astype("float64"))
        first = xp.searchsorted(stretch, stretch, side="left")
        last = xp.searchsorted(stretch, stretch, side="right") - 1
        log_probabilities = running[last] - running[first] + log_factors.ravel()[first]
        return xp.exp(log_probabilities).reshape(chosen.shape).astype(chosen.dtype)
