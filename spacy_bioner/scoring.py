"""Registered scorer for `bio_ner` heads."""

from typing import Any, Callable, Dict, Iterable

from spacy.scorer import Scorer, get_ner_prf
from spacy.training import Example
from spacy.util import registry

from .annotation import gold_spans, is_annotated, taggable_spans


def score_bio_ner(examples: Iterable[Example], *, spans_key: str, **kwargs) -> Dict[str, Any]:
    """spaCy's NER scores (ents_p/r/f/per_type) plus the head's own.

    The head's scores, ``spans_<key>_p/r/f/per_type``, count only documents
    annotated for the head (see annotation.py), so that in a multi-corpus
    pipeline each head is judged on its own corpus. Its gold is what a
    tagger can reproduce (`annotation.taggable_spans`: overlapping entities
    reduced to the longest, empty ones left out), as the head learns it and
    as seqeval scores it (evaluation.py). ``ents_*`` score the union in
    doc.ents against the reference doc.ents, as spaCy's `ner` does.
    """
    examples = list(examples)
    scores = Scorer.score_spans(
        examples,
        attr=f"spans_{spans_key}",
        getter=lambda doc, attr: taggable_spans(gold_spans(doc, spans_key) or []),
        has_annotation=lambda doc: is_annotated(doc, spans_key),
        allow_overlap=False,
    )
    scores.update(get_ner_prf(examples))
    return scores


@registry.scorers("spacy_bioner.bio_ner_scorer.v1")
def make_bio_ner_scorer() -> Callable[..., Dict[str, Any]]:
    """The scorer of `bio_ner` heads, named in their config (`score_bio_ner`)."""
    return score_bio_ner
