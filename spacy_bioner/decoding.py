"""The IOB2 tag inventory, its transition constraints and constrained decoding.

A softmax tagger decoded with a per-token argmax can emit ``O I-DNA`` or
``B-protein I-DNA``: sequences that no entity reading explains. We decode with
Viterbi over the valid IOB2 transitions only, so every output is well formed;
with a CRF the learned transition scores are added to the same mask.

All functions work on NumPy arrays over a padded batch (B docs, T tokens, K
tags): decoding runs one vectorised step per token position, not per document.
"""

from typing import Iterable, List, Sequence, Tuple

import numpy as np

OUTSIDE = "O"
# Added to the scores of forbidden transitions. Finite, so that arithmetic on
# it stays exact, yet far below any reachable score.
FORBIDDEN = -1e4


def make_tags(labels: Iterable[str]) -> List[str]:
    """The tag inventory for entity labels: O, then B- and I- per label."""
    labels = sorted(labels)
    return [OUTSIDE] + [f"B-{label}" for label in labels] + [f"I-{label}" for label in labels]


def transition_mask(tags: Sequence[str]) -> Tuple[np.ndarray, np.ndarray]:
    """Additive constraints: (K, K) for tag -> next tag and (K,) for the first tag.

    0 where allowed, FORBIDDEN where not. ``I-X`` may only follow ``B-X`` or
    ``I-X``, and may not start a sequence. Any tag may end one (IOB2).
    """
    n_tags = len(tags)
    transitions = np.zeros((n_tags, n_tags), dtype="f")
    start = np.zeros((n_tags,), dtype="f")
    for j, tag in enumerate(tags):
        if not tag.startswith("I-"):
            continue
        label = tag[2:]
        start[j] = FORBIDDEN
        for i, prev in enumerate(tags):
            if prev not in (f"B-{label}", f"I-{label}"):
                transitions[i, j] = FORBIDDEN
    return transitions, start


def pad_batch(arrays: Sequence[np.ndarray]) -> Tuple[np.ndarray, np.ndarray]:
    """Stack (T_i, K) arrays into (B, max T, K) zero-padded, with the lengths."""
    lengths = np.asarray([len(a) for a in arrays], dtype="i")
    n_tags = arrays[0].shape[1] if arrays else 0
    padded = np.zeros((len(arrays), int(lengths.max(initial=0)), n_tags), dtype="f")
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


def log_softmax(scores: np.ndarray) -> np.ndarray:
    shifted = scores - scores.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def tags_to_spans(tag_names: Sequence[str]) -> List[Tuple[int, int, str]]:
    """(start, end, label) token spans of a well-formed IOB2 sequence."""
    spans = []
    start = None
    label = None
    for i, tag in enumerate(list(tag_names) + [OUTSIDE]):
        continues = tag.startswith("I-") and tag[2:] == label
        if start is not None and not continues:
            spans.append((start, i, label))
            start = label = None
        if tag.startswith("B-"):
            start, label = i, tag[2:]
    return spans


def is_well_formed(tag_names: Sequence[str]) -> bool:
    """Whether every I-X continues an X entity (IOB2)."""
    previous = OUTSIDE
    for tag in tag_names:
        if tag.startswith("I-") and previous[2:] != tag[2:]:
            return False
        previous = tag
    return True
