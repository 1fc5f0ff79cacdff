"""Tag schemes: the tags of a label set, their constraints, spans <-> tags.

A head tags each token with one tag of its scheme:

- ``IOB2``: O, B-<label> (first token of an entity), I-<label> (any later one).
- ``BILUO`` (also called BIOES): O, B- (first of several), I- (inside),
  L- (last of several), U- (an entity of one token), spaCy's own scheme.
  Every token knows whether an entity ends at it, at the price of twice the
  entity tags.

Only well-formed sequences have an entity reading, so decoding searches those
alone: `tag_constraints` gives what it adds to the scores (tag to tag, first tag,
last tag). The scheme is read off a tag inventory, so the losses and the
decoder need nothing but the tags. Conversions between the schemes are
spaCy's own (`iob_to_biluo`, `biluo_to_iob`).
"""

from typing import Iterable, List, NamedTuple, Sequence, Tuple

import numpy as np
from spacy.tokens import Span
from spacy.training import biluo_to_iob, iob_to_biluo

OUTSIDE = "O"
# Added to the scores of forbidden transitions. Finite, so that arithmetic on
# it stays exact, yet far below any reachable score.
FORBIDDEN = -1e4
# Entity-tag prefixes of each scheme, in inventory order.
TAG_SCHEMES = {"IOB2": ("B", "I"), "BILUO": ("B", "I", "L", "U")}
# Tags that continue an entity begun before them, and (BILUO) tags after
# which the entity must go on.
_CONTINUES = ("I", "L")
_OPENS = ("B", "I")


class Constraints(NamedTuple):
    """Additive constraints of a tag inventory: 0 where allowed, FORBIDDEN where not.

    transitions (K, K): tag -> next tag; start (K,): the first tag; end (K,): the last.
    """

    transitions: np.ndarray
    start: np.ndarray
    end: np.ndarray


def check_tag_scheme(scheme: str) -> str:
    """`scheme` if it names one of TAG_SCHEMES, else a ValueError that lists them."""
    if scheme not in TAG_SCHEMES:
        raise ValueError(f"Unknown tag scheme {scheme!r}: use one of {list(TAG_SCHEMES)} (BILUO is also called BIOES).")
    return scheme


def make_tags(labels: Iterable[str], scheme: str = "IOB2") -> List[str]:
    """The tag inventory for entity labels: O, then each prefix of the scheme per label."""
    labels = sorted(labels)
    return [OUTSIDE] + [f"{prefix}-{label}" for prefix in TAG_SCHEMES[check_tag_scheme(scheme)] for label in labels]


def scheme_of(tags: Sequence[str]) -> str:
    """The scheme of a tag inventory: BILUO if it has L- or U- tags, else IOB2."""
    return "BILUO" if any(tag[:2] in ("L-", "U-") for tag in tags) else "IOB2"


def tag_constraints(tags: Sequence[str]) -> Constraints:
    """The constraints of a tag inventory (its scheme read off the tags).

    In both schemes I-X (and L-X) may only follow B-X or I-X, and may not
    start a sequence. In BILUO, B-X and I-X must be followed by I-X or L-X
    and may not end a sequence; in IOB2 any tag may end one.
    """
    explicit_ends = scheme_of(tags) == "BILUO"
    n_tags = len(tags)
    transitions = np.zeros((n_tags, n_tags), dtype="f")
    start = np.zeros((n_tags,), dtype="f")
    end = np.zeros((n_tags,), dtype="f")
    prefix = [tag.split("-", 1)[0] for tag in tags]
    label = [tag.split("-", 1)[1] if "-" in tag else None for tag in tags]
    for j in range(n_tags):
        continues = prefix[j] in _CONTINUES
        if continues:
            start[j] = FORBIDDEN
        if explicit_ends and prefix[j] in _OPENS:
            end[j] = FORBIDDEN
        for i in range(n_tags):
            opened = prefix[i] in _OPENS
            same = label[i] == label[j]
            if continues and not (opened and same):
                transitions[i, j] = FORBIDDEN
            if explicit_ends and opened and not (continues and same):
                transitions[i, j] = FORBIDDEN
    return Constraints(transitions, start, end)


def spans_to_tags(n_tokens: int, spans: Iterable[Span], scheme: str = "IOB2") -> List[str]:
    """The tag of each of `n_tokens` tokens for non-overlapping `spans`."""
    tags = [OUTSIDE] * n_tokens
    for span in spans:
        tags[span.start] = f"B-{span.label_}"
        tags[span.start + 1 : span.end] = [f"I-{span.label_}"] * (len(span) - 1)
    return iob_to_biluo(tags) if check_tag_scheme(scheme) == "BILUO" else tags


def tags_to_spans(tag_names: Sequence[str]) -> List[Tuple[int, int, str]]:
    """(start, end, label) token spans of a well-formed IOB2 or BILUO sequence."""
    spans = []
    start = None
    label = None
    for i, tag in enumerate(biluo_to_iob(tag_names) + [OUTSIDE]):
        continues = tag.startswith("I-") and tag[2:] == label
        if start is not None and not continues:
            spans.append((start, i, label))
            start = label = None
        if tag.startswith("B-"):
            start, label = i, tag[2:]
    return spans


def is_well_formed(tag_names: Sequence[str], scheme: str = "IOB2") -> bool:
    """Whether a tag sequence satisfies the scheme's `tag_constraints`."""
    if not tag_names:
        return True
    labels = {tag.split("-", 1)[1] for tag in tag_names if tag != OUTSIDE}
    inventory = make_tags(labels, scheme)
    if not set(tag_names) <= set(inventory):
        return False
    ids = [inventory.index(tag) for tag in tag_names]
    mask = tag_constraints(inventory)
    return bool(
        mask.start[ids[0]] == 0
        and mask.end[ids[-1]] == 0
        and all(mask.transitions[a, b] == 0 for a, b in zip(ids, ids[1:]))
    )
