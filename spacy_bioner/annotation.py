"""Which entities a document declares for a head, and how heads share doc.ents.

One pipeline may hold several `bio_ner` heads, each trained on a corpus
annotated for its own labels (JNLPBA: proteins, DNA...; BC5CDR: chemicals and
diseases). A JNLPBA abstract says nothing about chemicals, so it must not
teach the BC5CDR head that its chemicals are "O". The rule:

- A document is annotated for a head when it has ``doc.spans[spans_key]``
  (the converters of this package always write it).
- A document with no span groups at all but with NER annotation (a corpus
  made by ``spacy convert``, say) is annotated through ``doc.ents``.
- Any other document is unannotated for the head: it adds no loss and is
  skipped when the head is scored.
"""

from typing import Dict, Iterable, List, Optional, Tuple

from spacy.tokens import Doc, Span

SCORES_ATTR = "scores"


def gold_spans(doc: Doc, spans_key: str) -> Optional[List[Span]]:
    """The spans `doc` declares for the head with `spans_key`, or None."""
    if spans_key in doc.spans:
        return list(doc.spans[spans_key])
    if not doc.spans and doc.has_annotation("ENT_IOB"):
        return list(doc.ents)
    return None


def is_annotated(doc: Doc, spans_key: str) -> bool:
    return gold_spans(doc, spans_key) is not None


def merge_into_ents(doc: Doc, spans: List[Span], scores: List[float]) -> None:
    """Add a head's spans to doc.ents without overlaps.

    Conflicts are resolved greedily: higher score first, then the longer
    span, then the earlier one. Entities already in doc.ents keep the score
    recorded for them in any span group (another head's); entities set by
    something else (an entity ruler, the user) have no score and always win.
    """
    known_scores: Dict[Tuple[int, int, str], float] = {}
    for group in doc.spans.values():
        group_scores = group.attrs.get(SCORES_ATTR)
        if group_scores is None:
            continue
        for span, score in zip(group, group_scores):
            known_scores[(span.start, span.end, span.label_)] = score
    candidates = [
        (known_scores.get((ent.start, ent.end, ent.label_), float("inf")), ent)
        for ent in doc.ents
    ]
    candidates.extend(zip(scores, spans))
    candidates.sort(key=lambda item: (-item[0], -(item[1].end - item[1].start), item[1].start))
    taken = [False] * len(doc)
    chosen = []
    for _, span in candidates:
        if any(taken[span.start : span.end]):
            continue
        taken[span.start : span.end] = [True] * (span.end - span.start)
        chosen.append(span)
    doc.ents = sorted(chosen, key=lambda span: span.start)


def spans_with_scores(doc: Doc, spans_key: str) -> Iterable[Tuple[Span, float]]:
    group = doc.spans.get(spans_key, [])
    scores = group.attrs.get(SCORES_ATTR, [None] * len(group)) if len(group) else []
    return zip(group, scores)
