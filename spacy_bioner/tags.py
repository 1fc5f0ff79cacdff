"""The IOB2 tag inventory: tags of a label set, valid transitions, spans <-> tags.

A head tags each token O, B-<label> or I-<label>. Only well-formed sequences
have an entity reading (``I-X`` continues an X entity), so decoding searches
those alone: `transition_mask` is the constraint it adds to the scores.
"""

from typing import Iterable, List, Sequence, Tuple

import numpy as np
from spacy.tokens import Span

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


def spans_to_tags(n_tokens: int, spans: Iterable[Span]) -> List[str]:
    """The IOB2 tag of each of `n_tokens` tokens for non-overlapping `spans`."""
    tags = [OUTSIDE] * n_tokens
    for span in spans:
        tags[span.start] = f"B-{span.label_}"
        tags[span.start + 1 : span.end] = [f"I-{span.label_}"] * (len(span) - 1)
    return tags


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
