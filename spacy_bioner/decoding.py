"""Decoding: tag scores to well-formed tag paths, each tag with a confidence.

A softmax tagger decoded with a per-token argmax can emit ``O I-DNA`` or
``B-protein I-DNA``: sequences that no entity reading explains. The decoder
runs Viterbi over the valid paths of the tag scheme only (IOB2 or BILUO:
tags.py), so every output is well formed; with a CRF the learned transition
scores are added to the same constraints. It runs on the scores' device;
only the integer paths and the confidences are copied to the host.
"""

from typing import List, Sequence, Tuple

import numpy as np
from thinc.api import Ops

from .layers.crf import TagScores, forward_backward, log_softmax, pad, viterbi
from .tags import tag_constraints


class ConstrainedViterbi:
    """The best well-formed tag path of each document, and each tag's confidence.

    Without learned transitions the tokens' log-softmax scores are decoded
    under the scheme's constraints, and a tag's confidence is its softmax
    probability. With them (a CRF) the emissions are decoded with the learned
    scores plus the constraints, and a tag's confidence is its CRF marginal
    probability.
    """

    def __init__(self, tags: Sequence[str]) -> None:
        self.tags = list(tags)
        self.mask = tag_constraints(self.tags)

    def __call__(self, ops: Ops, scores: TagScores) -> Tuple[List[np.ndarray], List[np.ndarray]]:
        """Per document: the tag id of each token, and its confidence in [0, 1] (host arrays)."""
        emissions = scores.emissions
        paths = [np.zeros((len(e),), dtype="i") for e in emissions]
        confidences = [np.ones((len(e),), dtype="f") for e in emissions]
        keep = [i for i, e in enumerate(emissions) if len(e)]
        if not keep:
            return paths, confidences
        padded, lengths = pad(ops, [emissions[i] for i in keep])
        xp, dtype = ops.xp, padded.dtype
        transitions, start, end = self.mask.on_device(ops, dtype)
        if scores.has_transitions:
            transitions = transitions + scores.transitions
            start = start + scores.start
            end = end + scores.end
            best = viterbi(padded, lengths, transitions, start, end, scores.recursion)
            _, marginals, _ = forward_backward(padded, lengths, transitions, start, end, scores.recursion)
            chosen = xp.take_along_axis(marginals, best[:, :, None].astype("int64"), axis=2)[:, :, 0]
        else:
            log_probs = log_softmax(padded, axis=2)
            best = viterbi(log_probs, lengths, transitions, start, end, scores.recursion)
            chosen = xp.exp(xp.take_along_axis(log_probs, best[:, :, None].astype("int64"), axis=2)[:, :, 0])
        # Float32 marginals can exceed 1 by a rounding error; a confidence is a probability.
        chosen = xp.clip(chosen, 0.0, 1.0)
        best_host = ops.to_numpy(best)
        chosen_host = ops.to_numpy(chosen).astype("f")
        for row, i in enumerate(keep):
            paths[i] = best_host[row, : lengths[row]]
            confidences[i] = chosen_host[row, : lengths[row]]
        return paths, confidences
