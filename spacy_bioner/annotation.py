"""Heads and their spans: which heads a pipeline has, which entities a document
declares for a head, and how heads share doc.ents without overlaps.

One pipeline may hold several `bio_ner` heads, each trained on a corpus
annotated for its own labels (JNLPBA: proteins, DNA...; BC5CDR: chemicals and
diseases). A JNLPBA abstract says nothing about chemicals, so it must not
teach the BC5CDR head that its chemicals are "O". The rule:

- A document is annotated for a head when it has ``doc.spans[spans_key]``
  (the converters of this package always write it).
- A document with no span groups at all but with NER annotation (a corpus
  made by ``spacy convert``, say) is annotated through ``doc.ents``.
- Any other document is unannotated for the head: it adds no loss and is
  skipped when the head is scored. A document whose ``doc.ents`` go unused
  because it carries other span groups is counted and reported when the
  head is initialised (`span_groups_hiding_ents`).

Within an annotated document:

- Overlapping gold spans (nested GENIA entities, a spancat-style group) are
  made non-overlapping as spaCy's ``filter_spans`` does: the longest first,
  then the earliest. The head warns about the dropped ones.
- Tokens whose gold is unknown are unannotated (no loss): those of entities
  outside the head's labels, those of entities that cannot be projected onto
  the pipeline's tokens, and, when the gold comes from ``doc.ents``, tokens
  whose NER annotation is missing (``ent_iob == 0``), as in spaCy's
  ``Example.get_aligned_ner``.
"""

import math
from typing import AbstractSet, Any, Callable, Dict, Iterable, List, Optional, Sequence, Set, Tuple

import numpy as np
from spacy.language import Language
from spacy.tokens import Doc, Span, SpanGroup
from spacy.training import Example

SCORES_ATTR = "scores"
# What tells a head's span group from another scored one (spaCy's spancat writes "scores" too):
# the name of the head that wrote it (true in groups written before the mark named the head).
HEAD_ATTR = "bio_ner"
# In a head's group: the entities (start_char, end_char, label) that doc.ents held on exactly one of
# its spans before the head ran, and no head had placed (an entity ruler's, the user's): set by
# something else, though a head predicted them too (`set_before_heads`).
SET_BEFORE_ATTR = "ents_set_before"
_TOKEN_ATTRS = ["ORTH", "SPACY"]


def token_array(doc: Doc) -> np.ndarray:
    """`doc`'s tokens as an array: each token's text and whether a space follows it."""
    return doc.to_array(_TOKEN_ATTRS)


def select_non_overlapping(
    spans: Sequence[Span], priority: Callable[[Span], Any]
) -> Tuple[List[Span], List[Tuple[Span, Span]]]:
    """Greedy selection of non-overlapping spans, best `priority` (lowest) first.

    Returns the kept spans in document order, and each dropped span with the
    kept span it clashes with. spaCy's `filter_spans` is the special case
    `priority=lambda s: (-len(s), s.start)` without the clashes.
    """
    owner: Dict[int, Span] = {}
    kept: List[Span] = []
    dropped: List[Tuple[Span, Span]] = []
    for span in sorted(spans, key=priority):
        clash = next((owner[i] for i in range(span.start, span.end) if i in owner), None)
        if clash is not None:
            dropped.append((span, clash))
            continue
        kept.append(span)
        owner.update((i, span) for i in range(span.start, span.end))
    kept.sort(key=lambda span: span.start)
    return kept, dropped


def longest_first(span: Span) -> Tuple[int, int]:
    """spaCy's `filter_spans` order, for `select_non_overlapping`: the longer span, then the earlier."""
    return (-len(span), span.start)


def taggable_spans(spans: Iterable[Span]) -> List[Span]:
    """The spans a token tagger can reproduce, in document order: empty ones
    left out and overlaps resolved `longest_first`, as a head's gold and
    seqeval's tag sequences (evaluation.py) have them."""
    kept, _ = select_non_overlapping([span for span in spans if len(span)], priority=longest_first)
    return kept


def same_tokens(example: Example) -> bool:
    """Whether both sides of `example` have the same tokens and whitespace.

    Then spans need no alignment. spaCy rebuilds an example's alignment
    (token by token, in Python) every time examples are copied, i.e. on every
    update: a sizeable share of a training step on a GPU.
    """
    x, y = example.predicted, example.reference
    return len(x) == len(y) and np.array_equal(token_array(x), token_array(y))


def spans_of(doc: Doc, spans_key: Optional[str]) -> Sequence[Span]:
    """`doc.spans[spans_key]` (empty if absent), or `doc.ents` when the key is None."""
    if spans_key is None:
        return doc.ents
    return doc.spans[spans_key] if spans_key in doc.spans else []


def gold_spans(doc: Doc, spans_key: str) -> Optional[List[Span]]:
    """The spans `doc` declares for the head with `spans_key`, or None."""
    if spans_key in doc.spans:
        return list(doc.spans[spans_key])
    if gold_in_ents_alone(doc):
        return list(doc.ents)
    return None


def gold_in_ents_alone(doc: Doc) -> bool:
    """Whether `doc`'s gold is its doc.ents, no span group beside them: every head's (`gold_spans`)."""
    return not doc.spans and doc.has_annotation("ENT_IOB")


def span_groups_hiding_ents(doc: Doc, spans_key: str) -> List[str]:
    """The span groups that keep `doc`'s NER annotation in doc.ents from being
    the head's gold: those of a document with doc.ents annotation and span
    groups, none of them `spans_key`. Empty for any other document."""
    if spans_key in doc.spans or not doc.spans or not doc.has_annotation("ENT_IOB"):
        return []
    return list(doc.spans)


def is_annotated(doc: Doc, spans_key: str) -> bool:
    """Whether `doc` declares gold entities for the head with `spans_key` (see `gold_spans`)."""
    return gold_spans(doc, spans_key) is not None


def merge_into_ents(
    doc: Doc, spans: Sequence[Span], scores: Sequence[float], replacing: AbstractSet[Tuple[int, int, str]] = frozenset()
) -> None:
    """Add a head's spans to doc.ents without overlaps, in place of the heads'
    entities `replacing` ((start, end, label) of doc.ents: a head's earlier
    output on a doc it annotates again, or corrected away).

    Conflicts are resolved greedily: higher score first, then the longer
    span, then the earlier one (an order chosen on dev), then the label.
    Entities a head placed keep their scores (`head_ents`); entities set by
    something else (an entity ruler, the user) have no score and always win,
    those on exactly a head's span and label too where the head found them
    there before it (`set_before_heads`). The spans of scored head groups
    that lost their place in doc.ents to an entity there (one of theirs
    overlaps it) compete again, so that doc.ents is the same whichever order
    the heads run in: another head's surer span may take the place of the one
    that displaced them. A span out of doc.ents with no entity on its tokens
    was taken out by something else (a confidence filter) and stays out.
    """
    placed = head_ents(doc)
    ents = list(doc.ents)
    held = np.zeros(len(doc), dtype=bool)
    for ent in ents:
        held[ent.start : ent.end] = True
    kept = [ent for ent in ents if (ent.start, ent.end, ent.label_) not in replacing]
    in_ents = {(ent.start, ent.end, ent.label_) for ent in kept}
    offered = [(ent, placed.get((ent.start, ent.end, ent.label_), math.inf)) for ent in kept]
    if held.any():
        offered += [
            (span, score)
            for key in scored_keys(doc)
            for span, score in spans_with_scores(doc, key)
            if (span.start, span.end, span.label_) not in in_ents and held[span.start : span.end].any()
        ]
    offered += zip(spans, scores)
    score_of = {id(span): score for span, score in offered}
    doc.ents, _ = select_non_overlapping(
        [span for span, _ in offered],
        priority=lambda span: (-score_of[id(span)], -len(span), span.start, span.label_),
    )


def head_placed_ents(doc: Doc, spans_key: str) -> Set[Tuple[int, int, str]]:
    """The entities of doc.ents that the head writing `spans_key` placed (those
    of its group, by `head_ents`): those it replaces when it annotates `doc`
    again (`merge_into_ents`), where the old ones, whose group is gone, would
    count as set by something else and always win. Empty where no head wrote
    the group (a span_ruler with the key, gold read with the document): its
    entities were set by something else."""
    if spans_key not in doc.spans or not is_head_group(doc.spans[spans_key]):
        return set()
    return set(head_ents(doc, [spans_key]))


def head_ents(doc: Doc, spans_keys: Optional[Sequence[str]] = None) -> Dict[Tuple[int, int, str], float]:
    """(start, end, label) -> score of the entities of doc.ents that a head placed.

    An entity is a head's where a head's scored span group (`is_head_group`)
    holds a span of its tokens and label, and it has neither a kb_id nor an
    id: a head sets neither, an entity ruler's pattern with an "id" sets the
    id, an entity linker the kb_id. Any other entity was set by something
    else, and so was one the head found in doc.ents before it placed its
    spans (`set_before_heads`); one set after the heads ran, on exactly a
    head's span and label, is taken for the head's. Read off the doc, not
    kept aside, so that it holds for docs copied or read back from a DocBin;
    `Doc.from_docs` keeps span groups but not their scores, so a merged
    doc's entities count as set by something else.

    With `spans_keys`, the heads are those that write these keys, scores or
    not (a group changed after its head scored it has none: its spans count
    with a score of 0).
    """
    ents = doc.ents
    if not ents:
        return {}
    set_before = set_before_heads(doc)
    candidates = [(ent.start, ent.end, ent.label_) for ent in ents if may_be_head_ent(ent, set_before)]
    if not candidates:
        return {}
    scored: Dict[Tuple[int, int, str], float] = {}
    for key, group in doc.spans.items():
        if spans_keys is None:
            scores = (group_scores(group) if is_head_group(group) else None) or ()
        elif key in spans_keys:
            scores = group_scores(group) or [0.0] * len(group)
        else:
            continue
        for span, score in zip(group, scores):
            scored[(span.start, span.end, span.label_)] = score
    return {triple: scored[triple] for triple in candidates if triple in scored}


def may_be_head_ent(ent: Span, set_before: AbstractSet[Tuple[int, int, str]] = frozenset()) -> bool:
    """Whether an entity of doc.ents may be one a head placed: a head sets
    neither a kb_id nor an id (`head_ents`), and the heads found it there
    before them, set by something else, where it is in `set_before`
    (`set_before_heads`)."""
    return not ent.kb_id and not ent.id and (ent.start_char, ent.end_char, ent.label_) not in set_before


def set_before_heads(doc: Doc) -> Set[Tuple[int, int, str]]:
    """(start_char, end_char, label) of the entities that a head found in doc.ents on exactly
    one of its spans, set by something else (an entity ruler before the heads, the user):
    they stay set by something else, though a head's group holds their tokens and label."""
    return {
        (int(start), int(end), str(label))
        for group in doc.spans.values() if is_head_group(group)
        for start, end, label in group.attrs.get(SET_BEFORE_ATTR, ())
    }


def head_group(doc: Doc, key: str, spans: Sequence[Span], scores: Sequence[float], head: str) -> SpanGroup:
    """A head's span group: `spans` with their `scores`, marked as written by the component
    named `head` (HEAD_ATTR), and with the entities of doc.ents on exactly one of its spans
    that no head placed (SET_BEFORE_ATTR): it is made before the head adds its spans to
    doc.ents."""
    placed = head_ents(doc)
    own = {(span.start, span.end, span.label_) for span in spans}
    set_before = [
        [ent.start_char, ent.end_char, ent.label_]
        for ent in doc.ents
        if (triple := (ent.start, ent.end, ent.label_)) in own and triple not in placed and may_be_head_ent(ent)
    ]
    attrs: Dict[str, Any] = {SCORES_ATTR: list(scores), HEAD_ATTR: head}
    if set_before:
        attrs[SET_BEFORE_ATTR] = set_before
    return SpanGroup(doc, name=key, spans=list(spans), attrs=attrs)


def group_head(group: SpanGroup) -> Optional[str]:
    """The name of the head that wrote `group`, where it is recorded (see HEAD_ATTR)."""
    head = group.attrs.get(HEAD_ATTR)
    return head if isinstance(head, str) else None


def regrouped(doc: Doc, key: str, group: SpanGroup, spans: Sequence[Span],
              scores: Optional[Sequence[float]]) -> SpanGroup:
    """`group` with `spans` on `doc` in place of its own, its other attributes kept (a head's mark
    among them): with `scores` in place of its scores, or without scores where None."""
    attrs = {name: value for name, value in group.attrs.items() if name != SCORES_ATTR}
    if scores is not None:
        attrs[SCORES_ATTR] = list(scores)
    return SpanGroup(doc, name=key, spans=list(spans), attrs=attrs)


def is_head_group(group: SpanGroup) -> bool:
    """Whether a head wrote `group` (`head_group`), not another component (spaCy's spancat scores its groups too)."""
    return bool(group.attrs.get(HEAD_ATTR))


def group_scores(group: SpanGroup) -> Optional[List[float]]:
    """The scores a head wrote for the spans of `group`, or None: none written,
    or the group changed since (a span added or removed), so that which score
    is whose is unknown."""
    scores = group.attrs.get(SCORES_ATTR)
    return list(scores) if scores is not None and len(scores) == len(group) else None


def scored_keys(doc: Doc) -> List[str]:
    """The keys of `doc`'s span groups that a head wrote and scored (`is_head_group`, `group_scores`):
    the heads that annotated it."""
    return [key for key, group in doc.spans.items() if is_head_group(group) and group_scores(group) is not None]


def spans_with_scores(doc: Doc, spans_key: str) -> List[Tuple[Span, Optional[float]]]:
    """Each span of `doc.spans[spans_key]` with its score (None where `group_scores` has none)."""
    group = doc.spans.get(spans_key, [])
    scores = group_scores(group) if len(group) else None
    return list(zip(group, scores or [None] * len(group)))


def head_keys(nlp: Language, include_disabled: bool = False) -> Dict[str, str]:
    """spans_key -> component name, for the pipeline's NER heads (components
    with a `spans_key` and tags, as `bio_ner` has); the enabled ones unless
    `include_disabled`."""
    keys = {}
    for name, pipe in nlp.components if include_disabled else nlp.pipeline:
        key = getattr(pipe, "spans_key", None)
        if key is not None and hasattr(pipe, "tags"):
            keys[key] = name
    return keys
