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
decoder need nothing but the tags. Spans become BILUO tags through spaCy's
`iob_to_biluo`; tags are read back by their prefix alone, so that labels may
hold hyphens ("CELL-LINE").
"""

from typing import Dict, Iterable, List, Literal, NamedTuple, Optional, Sequence, Tuple, Union, get_args

import numpy as np
from spacy.tokens import Span
from spacy.training import iob_to_biluo
from thinc.api import Ops
from thinc.types import Floats1d, Floats2d

from .messages import check_choice

OUTSIDE = "O"
# Added to the scores of forbidden transitions. Finite, so that arithmetic on
# it stays exact, yet far below any reachable score.
FORBIDDEN = -1e4
# A head's tag schemes (BIOES is BILUO under other letters), and the entity-tag prefixes of each,
# in inventory order.
TagScheme = Literal["IOB2", "BILUO"]
TAG_SCHEMES: Dict[str, Tuple[str, ...]] = dict(zip(get_args(TagScheme), [("B", "I"), ("B", "I", "L", "U")]))
# Tags that continue an entity begun before them, and (BILUO) tags after
# which the entity must go on.
_CONTINUES = ("I", "L")
_OPENS = ("B", "I")
# Tags that begin an entity.
_BEGINS = ("B", "U")


def split_tag(tag: str) -> Tuple[str, Optional[str]]:
    """A tag's prefix and label: ("B", "DNA") for B-DNA, ("O", None) for O."""
    prefix, _, label = tag.partition("-")
    return prefix, label or None


class Constraints(NamedTuple):
    """Additive constraints of a tag inventory: 0 where allowed, FORBIDDEN where not.

    transitions (K, K): tag -> next tag; start (K,): the first tag; end (K,): the last.
    """

    transitions: np.ndarray
    start: np.ndarray
    end: np.ndarray

    def on_device(self, ops: Ops, dtype: str) -> Tuple[Floats2d, Floats1d, Floats1d]:
        """The three arrays copied to `ops`' device, in `dtype` (the scores')."""
        transitions, start, end = (ops.asarray(array).astype(dtype) for array in self)
        return transitions, start, end


def check_tag_scheme(scheme: str) -> str:
    """`scheme` if it names one of TAG_SCHEMES, else a ValueError that lists them."""
    return check_choice(scheme, TAG_SCHEMES, "tag scheme", ' (BIOES is BILUO: use "BILUO")')


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
    prefix, label = zip(*map(split_tag, tags)) if tags else ((), ())
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


def continuations(tags: Sequence[str]) -> np.ndarray:
    """(K, K) bool: whether tag j after tag i goes on with i's entity (an I-
    or L- of its label after its B- or I-). In BILUO an entity's last tag
    (L-, U-) has none: its end is in the tag itself; in IOB2 the next tag tells."""
    is_continuation = np.asarray([split_tag(tag)[0] in _CONTINUES for tag in tags], dtype=bool)
    return (tag_constraints(tags).transitions == 0) & is_continuation[None, :]


def spans_to_tags(
    n_tokens: int, spans: Iterable[Union[Span, Tuple[int, int, str]]], scheme: str = "IOB2"
) -> List[str]:
    """The tag of each of `n_tokens` tokens for non-overlapping `spans` (Spans, or (start, end, label)).

    An empty span (`doc[i:i]`, which a SpanGroup accepts) tags no token.
    """
    tags = [OUTSIDE] * n_tokens
    for span in spans:
        start, end, label = (span.start, span.end, span.label_) if isinstance(span, Span) else span
        if start == end:
            continue
        tags[start] = f"B-{label}"
        tags[start + 1 : end] = [f"I-{label}"] * (end - start - 1)
    return iob_to_biluo(tags) if check_tag_scheme(scheme) == "BILUO" else tags


def tags_to_spans(tag_names: Sequence[str]) -> List[Tuple[int, int, str]]:
    """(start, end, label) token spans of a well-formed IOB2 or BILUO sequence.

    B- and U- open an entity; I- and L- of the same label continue it.
    """
    inventory = list(dict.fromkeys([OUTSIDE, *tag_names]))
    index = {tag: i for i, tag in enumerate(inventory)}
    return tag_ids_to_spans(np.asarray([index[tag] for tag in tag_names], dtype="i"), inventory)


def tag_ids_to_spans(tag_ids: np.ndarray, tags: Sequence[str]) -> List[Tuple[int, int, str]]:
    """`tags_to_spans` of the tags that `tag_ids` index in `tags`, visiting
    only the tokens not tagged O (a document's decoded path is mostly O)."""
    ids = np.asarray(tag_ids)
    parts = [split_tag(tag) for tag in tags]
    outside = tags.index(OUTSIDE) if OUTSIDE in tags else -1
    spans = []
    start = label = None
    previous = -1
    # Not spaCy's biluo_to_iob: it rewrites the first "U-" or "L-" anywhere in
    # a tag, so "B-CELL-LINE" would be read as an entity labelled "CELI-LINE".
    for i in np.flatnonzero(ids != outside).tolist():
        prefix, tag_label = parts[ids[i]]
        # An O before token i ends any entity, as does a tag that does not continue it.
        continues = i == previous + 1 and prefix in _CONTINUES and tag_label == label
        if start is not None and not continues:
            spans.append((start, previous + 1, label))
            start = label = None
        if prefix in _BEGINS:
            start, label = i, tag_label
        previous = i
    if start is not None:
        spans.append((start, previous + 1, label))
    return spans


def is_well_formed(tag_names: Sequence[str], scheme: str = "IOB2") -> bool:
    """Whether a tag sequence satisfies the scheme's `tag_constraints`."""
    if not tag_names:
        return True
    # A tag without a label ("B-", "FOO") is in no inventory: skipped here, refused below.
    labels = {label for label in (split_tag(tag)[1] for tag in tag_names) if label is not None}
    inventory = make_tags(labels, scheme)
    if not set(tag_names) <= set(inventory):
        return False
    ids = np.asarray([inventory.index(tag) for tag in tag_names])
    return first_break(ids, tag_constraints(inventory), scheme) is None


def first_break(ids: np.ndarray, constraints: Constraints, scheme: str) -> Optional[int]:
    """The first position at which no path allowed by `constraints` agrees with
    the tag `ids` (-1: unknown, any tag); None if one does.

    In IOB2 an unknown tag can always be filled in (O or B-X fits anywhere,
    and B-X before I-X), so known tags side by side and the first and last
    known tags decide; in BILUO a gap can be too short (B-X, one unknown tag,
    I-Y), so a sequence with unknown tags is followed token by token.
    """
    known = ids >= 0
    if known.all() or scheme == "IOB2":
        pairs = known[:-1] & known[1:]
        bad = np.flatnonzero(pairs & (constraints.transitions[ids[:-1], ids[1:]] != 0))
        if known[0] and constraints.start[ids[0]] != 0:
            return 0
        if bad.size:
            return int(bad[0]) + 1
        if known[-1] and constraints.end[ids[-1]] != 0:
            return len(ids) - 1
        return None
    allowed = constraints.transitions == 0
    # reachable[k]: some allowed path that agrees with the ids so far ends in tag k.
    reachable = constraints.start == 0
    for t, tag in enumerate(ids):
        if t:
            reachable = (reachable[:, None] & allowed).any(axis=0)
        if tag >= 0:
            reachable = reachable & (np.arange(len(reachable)) == tag)
        if not reachable.any():
            return t
    return None if (reachable & (constraints.end == 0)).any() else len(ids) - 1
