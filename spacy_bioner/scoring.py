"""Registered scorer for `bio_ner` heads."""

import warnings
from typing import Any, Callable, Dict, Iterable, List, Optional, Set, Tuple

from spacy.scorer import Scorer, get_ner_prf
from spacy.tokens import Doc, Span
from spacy.training import Example
from spacy.util import registry
from spacy.vocab import Vocab

from .annotation import (
    gold_in_ents_alone,
    gold_spans,
    head_ents,
    is_annotated,
    same_tokens,
    scored_keys,
    span_groups_hiding_ents,
    taggable_spans,
)
from .evaluation import on_reference_tokens, unplaced_predictions


def score_bio_ner(
    examples: Iterable[Example], *, spans_key: str, labels: Optional[Iterable[str]] = None, **kwargs
) -> Dict[str, Any]:
    """spaCy's NER scores (ents_p/r/f/per_type) plus the head's own.

    The head's scores, ``spans_<key>_p/r/f/per_type``, count only documents
    annotated for the head (see annotation.py), so that in a multi-corpus
    pipeline each head is judged on its own corpus. Its gold is what a
    tagger can reproduce (`annotation.taggable_spans`: overlapping entities
    reduced to the longest, empty ones left out), as the head learns it and
    as seqeval scores it (evaluation.py). Where the gold is doc.ents, which
    may hold every head's entities, and the head's `labels` are given (the
    component passes its own), gold entities of other labels are left out,
    and so are the head's predictions that overlap one: the head learns
    those tokens as unannotated (`BioNER.gold_tags`), as it does the tokens
    whose NER annotation is missing there (spaCy's `get_ner_prf` leaves
    predictions there out too). In the head's own span group every entity
    is the head's to find: one of a label it lacks is a miss, as in seqeval
    (though the head learns its tokens as unannotated).
    The head's predictions are scored on the gold tokens, each widened to
    the gold tokens it touches (`evaluation.on_reference_tokens`), as
    `evaluate` scores them with seqeval and `ents_*` do: spaCy's span
    alignment alone would leave out one whose edge falls inside a gold
    token. Those the gold tokens cannot hold beside another (two halves of
    one gold token) are each a false positive, as in `evaluate` and as
    spaCy's NER scorer counts a second prediction on a matched entity.
    (seqeval, on tags, also cuts an entity at a gold sentence boundary;
    spans here are not cut.)
    ``ents_*`` score doc.ents against the reference doc.ents, as spaCy's `ner`
    does, but for the entities of heads the reference is not annotated for
    (`ents_of_annotated_heads`): on a test set of one corpus, `spacy evaluate`'s
    NER scores are those of its heads, not lowered by every entity of
    another's. A reference without NER annotation is scored on its heads'
    gold span groups (`heads_gold_as_ents`).
    """
    examples = list(examples)
    unread = {id(eg) for eg in _check_unread_gold(examples)}
    if labels:
        _warn_of_gold_without_the_head_s_labels(examples, spans_key, set(labels))
    ents_scores = get_ner_prf(
        [ents_of_annotated_heads(heads_gold_as_ents(eg)) for eg in examples if id(eg) not in unread]
    )
    examples = [_on_gold_tokens(eg) if is_annotated(eg.reference, spans_key) else eg for eg in examples]
    unplaced = unplaced_predictions((eg.predicted for eg in examples), spans_key)
    known = set(labels) if labels else None
    # The reference docs whose gold for the head is their doc.ents.
    gold_in_ents = {id(eg.reference) for eg in examples if spans_key not in eg.reference.spans}
    # The tokens of each predicted doc without gold for the head, where the gold is doc.ents:
    # under entities of other labels, or without NER annotation.
    unannotated: Dict[int, List[Tuple[int, int]]] = {}
    for eg in examples:
        if id(eg.reference) not in gold_in_ents or not is_annotated(eg.reference, spans_key):
            continue
        others = [span for span in eg.reference.ents if known is not None and span.label_ not in known]
        others += _missing_annotation(eg.reference)
        aligned = eg.get_aligned_spans_y2x(others, allow_overlap=True) if others else []
        unannotated[id(eg.predicted)] = [(span.start, span.end) for span in aligned]

    def head_spans(doc: Doc, attr: str) -> List[Span]:
        skip = unannotated.get(id(doc), [])
        return taggable_spans(
            span
            for span in gold_spans(doc, spans_key) or []
            if (known is None or id(doc) not in gold_in_ents or span.label_ in known)
            and not any(span.start < end and start < span.end for start, end in skip)
        )

    scores = Scorer.score_spans(
        examples + _false_positives(examples[0].predicted.vocab, spans_key, unplaced) if unplaced else examples,
        attr=f"spans_{spans_key}",
        getter=head_spans,
        has_annotation=lambda doc: is_annotated(doc, spans_key),
        allow_overlap=False,
    )
    scores.update(ents_scores)
    return scores


def _check_unread_gold(examples: List[Example]) -> List[Example]:
    """The gold documents that hold entities in doc.ents beside span groups that no head of
    the pipeline reads (`convert iob` without --spans-key writes doc.spans["ents"]), warned
    about: no head is annotated for them, so they are left out of `ents_*` (their entities
    would be misses of heads whose entities in them are not scored). Where that is every
    document, raise: every score would be 0, and `spacy train` would choose model-best on
    nothing, to the end of its run."""
    unread = [
        eg for eg in examples
        if (keys := scored_keys(eg.predicted)) and all(span_groups_hiding_ents(eg.reference, key) for key in keys)
    ]
    if unread:
        groups = sorted({key for eg in unread for key in eg.reference.spans})
        heads = sorted(scored_keys(unread[0].predicted))
        message = (
            f"{len(unread)} of {len(examples)} gold documents hold entities in doc.ents beside span groups "
            f"{groups}, which no head of the pipeline reads (heads: {heads}): their entities are not scored "
            "for any head, nor their doc.ents against the heads' entities. Convert such a corpus with the "
            "head's key (python -m spacy_bioner convert ... --spans-key KEY)"
        )
        if len(unread) == len(examples):
            raise ValueError(f"{message}. No document is scored: every score would be 0")
        warnings.warn(message)
    return unread


def _warn_of_gold_without_the_head_s_labels(examples: List[Example], spans_key: str, labels: Set[str]) -> None:
    """Warn where gold documents whose gold is doc.ents alone, and which hold none of the
    head's labels, have entities of the head: such a document is annotated for every
    head (`annotation.gold_spans`), so they count as false positives, where the gold is
    most likely another corpus's (spaCy's Corpus with gold_preproc drops span groups;
    `Example.from_dict` writes doc.ents)."""
    ents_alone = [eg for eg in examples if gold_in_ents_alone(eg.reference)]
    if any(ent.label_ in labels for eg in ents_alone for ent in eg.reference.ents):
        return
    entities = sum(len(eg.predicted.spans[spans_key]) for eg in ents_alone if spans_key in eg.predicted.spans)
    if entities:
        warnings.warn(
            f"{len(ents_alone)} of {len(examples)} gold documents have their gold in doc.ents alone, with "
            f"none of the labels of head {spans_key!r} ({', '.join(sorted(labels))}): such a document is "
            f"every head's, so the head's {entities} entities in them count as false positives in ents_* "
            f"(and in spans_{spans_key}_*, those not on a gold entity). If they are another corpus's, put "
            "their gold in that head's span group (doc.spans[KEY]), or score a pipeline without this head"
        )


def heads_gold_as_ents(example: Example) -> Example:
    """`example`, where its reference has no NER annotation but gold span groups of heads
    that annotated the predicted doc (a corpus of span groups alone), with that gold as its
    doc.ents (the longest of overlapping spans, `taggable_spans`; the other tokens outside
    any entity). spaCy's NER scores skip a reference without NER annotation, so `ents_*`
    would be missing, and `spacy train`, which weighs `ents_f` by default, would score 0 at
    every evaluation and stop at its patience."""
    reference = example.reference
    if reference.has_annotation("ENT_IOB"):
        return example
    keys = [key for key in scored_keys(example.predicted) if key in reference.spans]
    if not keys:
        return example
    gold = reference.copy()
    gold.set_ents(taggable_spans(span for key in keys for span in gold.spans[key]), default="outside")
    return Example(example.predicted, gold)


def ents_of_annotated_heads(example: Example) -> Example:
    """`example` with the predicted doc.ents left without the entities of the
    heads (the scored span groups, `head_ents`) that its reference is not
    annotated for (`is_annotated`): a document of one corpus has no gold for
    another's labels, and would count each of that head's entities as wrong.
    Entities set by something else (an entity ruler) stay."""
    predicted, reference = example.predicted, example.reference
    heads = scored_keys(predicted)
    others = [key for key in heads if not is_annotated(reference, key)]
    if not others:
        return example
    kept = head_ents(predicted, [key for key in heads if key not in others])
    dropped = set(head_ents(predicted, others)) - set(kept)
    if not dropped:
        return example
    doc = predicted.copy()
    doc.ents = [ent for ent in doc.ents if (ent.start, ent.end, ent.label_) not in dropped]
    return Example(doc, reference)


def _false_positives(vocab: Vocab, spans_key: str, labels: Iterable[str]) -> List[Example]:
    """An example for each label: one token predicted as an entity of it, the gold annotated
    for the head and without entities, which spaCy's span scorer counts as a false positive."""
    examples = []
    for label in labels:
        predicted, reference = Doc(vocab, words=["-"]), Doc(vocab, words=["-"])
        predicted.spans[spans_key] = [Span(predicted, 0, 1, label=label)]
        reference.spans[spans_key] = []
        examples.append(Example(predicted, reference))
    return examples


def _on_gold_tokens(example: Example) -> Example:
    """`example` with its predictions laid on the reference's tokens, where the two
    tokenize the same text differently (with the same tokens, or another text, as it is)."""
    predicted, reference = example.predicted, example.reference
    if predicted.text != reference.text or same_tokens(example):
        return example
    return Example(on_reference_tokens(predicted, reference), reference)


def _missing_annotation(doc: Doc) -> List[Span]:
    """The runs of tokens of `doc` whose NER annotation is missing (ENT_IOB 0)."""
    missing = doc.to_array("ENT_IOB") == 0
    runs, start = [], None
    for i, flag in enumerate([*missing, False]):
        if flag and start is None:
            start = i
        elif not flag and start is not None:
            runs.append(doc[start:i])
            start = None
    return runs


@registry.scorers("spacy_bioner.bio_ner_scorer.v1")
def make_bio_ner_scorer() -> Callable[..., Dict[str, Any]]:
    """The scorer of `bio_ner` heads, named in their config (`score_bio_ner`)."""
    return score_bio_ner
