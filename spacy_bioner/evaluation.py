"""Test-set evaluation on the gold tokens: seqeval and spaCy's scorer.

Each corpus is scored on the head whose span key its documents carry
(JNLPBA -> doc.spans["jnlpba"], both BC5CDR forms -> doc.spans["bc5cdr"]).
The pipeline reads each document's text with its own tokenizer, as it was
trained (`gold_tokens = false` in the configs) and as it reads raw text;
its entities are then laid on the gold tokens, each widened to the tokens
it touches (`on_reference_tokens`), and scored there, as the head's scorer
(scoring.py), which gives the dev scores of training, does too. Where two
widened entities overlap (the halves of one gold token, "NF" and "kappa B"
on "NF-kappa B"), gold tokens hold only one: the others are dropped from the
tags but scored as false positives (`unplaced_predictions`), as spaCy's NER
scorer counts them; the pipeline gave them to its user. The result counts
the entities so widened and so dropped (`laid_on_gold_tokens`).
`gold_tokens=True` runs the pipeline on copies of the gold tokens instead:
a head trained on its own tokens then meets tokens it never saw ("IL-2"
whole where it learnt "IL", "-", "2"), 6% of JNLPBA's test tokens. Entity-level scores use seqeval's
default (conlleval-compatible) mode: it is what the published
JNLPBA/BC5CDR numbers and the Hugging Face ``run_ner.py`` recipe report.
spaCy's own scorer (``spans_<key>_*``) is reported next to them.

Beside them, how well the head's entity scores tell right from wrong
(`score_quality`): an entity is right where the gold holds one with its
tokens and label; scikit-learn gives the Brier score and the ROC AUC.
"""

import itertools
import json
import statistics
import time
from collections import Counter
import warnings
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy as np
from sklearn.metrics import brier_score_loss, roc_auc_score
from spacy.language import Language
from spacy.scorer import Scorer
from spacy.tokens import Doc, Span
from spacy.training import Example

from .annotation import (
    gold_spans,
    group_scores,
    head_keys,
    is_annotated,
    regrouped,
    spans_of,
    spans_with_scores,
    taggable_spans,
)
from .corpora.docbin import gold_token_doc, load_docs
from .files import atomic_write_all
from .messages import counted
from .tags import spans_to_tags


def seqeval_scores(gold: List[List[str]], pred: List[List[str]], unplaced: Sequence[str] = ()) -> Dict[str, Any]:
    """Micro P/R/F1, macro F1 over types, and per-type P/R/F1/support over IOB2 tag sequences;
    `f1_strict`, micro F1 in seqeval's strict IOB2 mode; `entities`, the micro counts
    (gold, predicted, correct) that scores of several corpora are pooled from.

    `unplaced` are the labels of predictions the tags cannot hold (`unplaced_predictions`):
    each is scored as a false positive, a sentence of one token tagged "O" in the gold and
    "B-" its label in the prediction, in either mode.

    The default mode reads ill-formed tags as conlleval does ("I-X" after "O"
    starts an entity), which credits a tagger's invalid sequences; the strict
    mode does not. The two agree where the predictions are valid IOB2, as
    those made from spans are.
    """
    from seqeval.metrics import (
        classification_report,
        f1_score,
        precision_score,
        recall_score,
    )
    from seqeval.metrics.sequence_labeling import get_entities
    from seqeval.scheme import IOB2

    if unplaced:
        gold = [*gold, *([["O"]] * len(unplaced))]
        pred = [*pred, *([f"B-{label}"] for label in unplaced)]
    report = classification_report(gold, pred, output_dict=True, zero_division=0)
    gold_entities, pred_entities = set(get_entities(gold)), set(get_entities(pred))
    per_type = {
        name: {
            "p": float(row["precision"]),
            "r": float(row["recall"]),
            "f1": float(row["f1-score"]),
            "support": int(row["support"]),
        }
        for name, row in report.items()
        if not name.endswith(" avg")
    }
    return {
        "p": float(precision_score(gold, pred, zero_division=0)),
        "r": float(recall_score(gold, pred, zero_division=0)),
        "f1": float(f1_score(gold, pred, zero_division=0)),
        "f1_strict": float(f1_score(gold, pred, mode="strict", scheme=IOB2, zero_division=0)),
        "macro_f1": macro_f1(per_type),
        "per_type": per_type,
        # The default mode's entities, as its P and R count them: P = correct / predicted.
        "entities": {"gold": len(gold_entities), "predicted": len(pred_entities),
                     "correct": len(gold_entities & pred_entities)},
    }


# Score thresholds at which `score_quality` reports the precision and the entities kept.
SCORE_THRESHOLDS = (0.5, 0.9)
CALIBRATION_BINS = 10


def scored_entities(
    predicted: Sequence[Doc], references: Sequence[Doc], spans_key: str
) -> Tuple[List[float], List[bool]]:
    """The score of each entity the head with `spans_key` predicted (on the
    references' tokens), and whether the reference holds one with its tokens
    and label (the head's gold: `annotation.gold_spans`, as a tagger can
    reproduce it). Entities without a score (a group not written by a head) are left out."""
    scores: List[float] = []
    right: List[bool] = []
    for doc, reference in zip(predicted, references):
        gold = {(s.start, s.end, s.label_) for s in taggable_spans(gold_spans(reference, spans_key) or [])}
        for span, score in spans_with_scores(doc, spans_key):
            if score is not None:
                scores.append(score)
                right.append((span.start, span.end, span.label_) in gold)
    return scores, right


def calibration_error(scores: Sequence[float], right: Sequence[bool], bins: int = CALIBRATION_BINS) -> float:
    """Expected calibration error: over equal-width score bins, |mean score -
    share right|, weighted by the bin's entities (scikit-learn has the bins,
    `calibration_curve`, but not their weights): per bin, |sum of scores -
    entities right|, over all entities."""
    scores, right = np.asarray(scores, dtype="float64"), np.asarray(right, dtype="float64")
    which = np.minimum((scores * bins).astype(int), bins - 1)
    gaps = np.bincount(which, weights=scores, minlength=bins) - np.bincount(which, weights=right, minlength=bins)
    return float(np.abs(gaps).sum() / len(scores))


def score_quality(scores: Sequence[float], right: Sequence[bool]) -> Dict[str, Any]:
    """How well entity scores tell right from wrong: the precision against the
    mean score, the Brier score, the calibration error, the ROC AUC (None
    where every entity is right, or none), and the precision and the entities
    kept at each of SCORE_THRESHOLDS (None where none is kept)."""
    scores, right = np.asarray(scores, dtype="float64"), np.asarray(right, dtype=bool)
    quality: Dict[str, Any] = {"entities": int(len(scores))}
    if not len(scores):
        return quality
    quality.update({
        "precision": float(right.mean()),
        "mean_score": float(scores.mean()),
        "brier": float(brier_score_loss(right, scores)),
        "calibration_error": calibration_error(scores, right),
        "auroc": float(roc_auc_score(right, scores)) if 0 < right.sum() < len(right) else None,
    })
    for threshold in SCORE_THRESHOLDS:
        kept = scores >= threshold
        quality[f"kept_at_{threshold}"] = int(kept.sum())
        quality[f"precision_at_{threshold}"] = float(right[kept].mean()) if kept.any() else None
    return quality


def macro_f1(per_type: Dict[str, Dict[str, float]]) -> float:
    """Unweighted mean of the types' F1 (0 without types): what the rare types
    (JNLPBA's RNA) move and micro F1 hides. The types are seqeval's, those of the gold or the
    predictions: a label predicted but never gold is one at F1 0, as seqeval's "macro avg" counts it."""
    return statistics.fmean(row["f1"] for row in per_type.values()) if per_type else 0.0


def docs_to_iob(
    docs: Iterable[Doc], spans_key: Optional[str] = None
) -> List[List[Tuple[str, str]]]:
    """Sentences of (token text, IOB2 tag), for round trips and seqeval.

    Entities come from `doc.spans[spans_key]` (a doc without the key has no
    entities), or from `doc.ents` when `spans_key` is None. Overlapping spans
    are reduced to the longest (then earliest) ones. A doc without
    sentence boundaries is one sentence; an entity that crosses a sentence
    boundary restarts with B- in the next sentence, so every sequence is
    valid IOB2. Gold entities never cross one; the heads' decoding knows no
    sentences, so a predicted entity may, and is then scored as two.
    """
    sentences: List[List[Tuple[str, str]]] = []
    for doc in docs:
        tags = spans_to_tags(len(doc), taggable_spans(spans_of(doc, spans_key)))
        bounds = (
            [(sent.start, sent.end) for sent in doc.sents]
            if doc.has_annotation("SENT_START")
            else [(0, len(doc))]
        )
        for start, end in bounds:
            if start == end:
                continue
            sent = [(doc[i].text, tags[i]) for i in range(start, end)]
            if sent[0][1].startswith("I-"):
                sent[0] = (sent[0][0], "B-" + sent[0][1][2:])
            sentences.append(sent)
    return sentences


def iob_tags(docs: Iterable[Doc], spans_key: Optional[str]) -> List[List[str]]:
    """IOB2 tag sequences, one per sentence (see docs_to_iob)."""
    return [[tag for _, tag in sent] for sent in docs_to_iob(docs, spans_key=spans_key)]


def detect_spans_key(nlp: Language, docs: Sequence[Doc], path: str = "") -> str:
    """The span key of `docs` that one of the pipeline's heads predicts.

    Every document is looked at (unannotated ones may come first). Documents
    annotated only through doc.ents (no span groups) are scored on the
    pipeline's head when it has exactly one. Where no head can be told, the
    error says what helps: naming the head (--spans-key) where the documents
    carry no span groups or several heads' ones; converting the corpus again
    where they carry span groups none of which a head predicts, as a head
    reads only its own span group in such documents (`annotation.gold_spans`),
    and naming no head where none has the corpus's labels.
    """
    keys = head_keys(nlp)
    carried = {key for doc in docs for key in doc.spans}
    found = carried & set(keys)
    if not carried and len(keys) == 1 and any(doc.has_annotation("ENT_IOB") for doc in docs):
        found = set(keys)
    if len(found) == 1:
        return found.pop()
    if carried and not found:
        gold_labels = {span.label_ for doc in docs for key in carried for span in doc.spans[key]}
        fitting = sorted(key for key, name in keys.items() if gold_labels & set(nlp.get_pipe(name).labels))
        if gold_labels and not fitting:
            # Another corpus: a --spans-key would only score a head on labels it never predicts.
            raise ValueError(
                f"{path}: no head of this pipeline predicts the corpus's labels ({', '.join(sorted(gold_labels))}; "
                f"span groups {sorted(carried)}): its heads are "
                + "; ".join(f"{key}: {', '.join(nlp.get_pipe(name).labels)}" for key, name in sorted(keys.items()))
                + ". Score it with a pipeline that has a head for it"
            )
        raise ValueError(
            f"{path}: no head can be scored: the documents carry span groups {sorted(carried)}, none of "
            f"which a head predicts (heads: {sorted(keys)}), and a head reads only its own group in them. "
            "Convert the corpus again with `python -m spacy_bioner convert ... --spans-key KEY`, KEY the "
            f"key of the head to score: {', '.join(fitting or sorted(keys))}"
        )
    raise ValueError(
        f"{path}: cannot tell which head to score: the documents carry span keys "
        f"{sorted(carried)}, the heads predict {sorted(keys)}; name the head's span key "
        "(evaluate --spans-key)"
    )


def overlapped_gold(docs: Iterable[Doc], spans_key: str) -> Dict[str, int]:
    """Gold entities per label of the head with `spans_key` that its tags cannot hold beside an
    overlapping one (`taggable_spans` keeps the longest): left out of the scores, as a flat
    tagger's gold leaves them (the outermost of nested mentions are scored)."""
    counts: Counter = Counter()
    for doc in docs:
        if spans_key in doc.spans:
            spans = [span for span in doc.spans[spans_key] if len(span)]
            kept = Counter(span.label_ for span in taggable_spans(spans))
            counts.update(Counter(span.label_ for span in spans) - kept)
    return dict(sorted(counts.items()))


def unpredictable_labels(gold_tags: List[List[str]], head_labels: Sequence[str]) -> Dict[str, int]:
    """Entities per gold label that a head without that label can never find."""
    counts = Counter(tag[2:] for sent in gold_tags for tag in sent if tag.startswith("B-"))
    return {label: n for label, n in sorted(counts.items()) if label not in head_labels}


def gold_iob_tags(docs: Iterable[Doc], spans_key: str) -> List[List[str]]:
    """IOB2 tag sequences of each document's gold for the head with `spans_key`:
    its span group, or doc.ents for a document annotated only there (as the
    head learns from them: `annotation.gold_spans`)."""
    return [tags for doc in docs for tags in iob_tags([doc], spans_key if spans_key in doc.spans else None)]


# Where `on_reference_tokens` leaves, per span group, how many of its predictions it widened and dropped.
LAID_COUNTS = "laid_on_reference_tokens"
LAID_ENTS = "doc.ents"  # doc.ents's counts among them


def on_reference_tokens(predicted: Doc, reference: Doc) -> Doc:
    """`predicted`'s entities (every span group and doc.ents) on a copy of `reference`'s tokens,
    for a prediction made on its own tokenization of the same text: each span widened to the
    reference tokens it touches, overlaps then resolved `longest_first`, as for tags. A head's
    group keeps its scores (`group_scores`), by which the scorer tells a head's entities apart.

    `doc.user_data[LAID_COUNTS][key]` counts what this did to the group `key`'s predictions
    ("predicted"): those with a start or end inside a reference token ("widened"), scored as if
    predicted on the reference's tokens, and those the reference's tokens cannot hold ("dropped"):
    widened onto, or across, another one kept (two halves of a reference token become one entity), or
    on no reference token; "dropped_labels", their labels and how many of each (`unplaced_predictions`).
    doc.ents's are under `LAID_ENTS`."""
    doc = gold_token_doc(predicted.vocab, reference)
    counts: Dict[str, Dict[str, int]] = {}
    for key, group in predicted.spans.items():
        scores = group_scores(group)
        spans, counts[key] = _laid(doc, group, scores)
        doc.spans[key] = regrouped(doc, key, group, list(spans), None if scores is None else list(spans.values()))
    ents, counts[LAID_ENTS] = _laid(doc, predicted.ents)
    doc.ents = list(ents)
    doc.user_data[LAID_COUNTS] = counts
    return doc


def _laid(
    doc: Doc, spans: Sequence[Span], scores: Optional[List[float]] = None
) -> Tuple[Dict[Span, Optional[float]], Dict[str, int]]:
    """The spans kept on `doc`'s tokens, each with its score (the best of those widened to it), and
    the counts of `on_reference_tokens`."""
    widened: Dict[Span, Optional[float]] = {}
    n_widened = 0
    for span, score in zip(spans, scores or itertools.repeat(None)):
        on_doc = doc.char_span(span.start_char, span.end_char, label=span.label, alignment_mode="expand")
        if on_doc is not None:
            n_widened += (on_doc.start_char, on_doc.end_char) != (span.start_char, span.end_char)
            widened[on_doc] = score if widened.get(on_doc) is None else max(score, widened[on_doc])
    kept = {span: widened[span] for span in taggable_spans(widened)}
    dropped = Counter(span.label_ for span in spans) - Counter(span.label_ for span in kept)
    return kept, {"predicted": len(spans), "widened": n_widened, "dropped": len(spans) - len(kept),
                  "dropped_labels": dict(sorted(dropped.items()))}


def laid_counts(docs: Iterable[Doc], spans_key: str) -> Optional[Dict[str, int]]:
    """The counts `on_reference_tokens` left on `docs` for the group `spans_key`, summed: None where
    no doc was laid on reference tokens (predicted on them: nothing widened, nothing dropped)."""
    found = [doc.user_data[LAID_COUNTS].get(spans_key, {}) for doc in docs if LAID_COUNTS in doc.user_data]
    if not found:
        return None
    return {name: sum(counts.get(name, 0) for counts in found) for name in ("predicted", "widened", "dropped")}


def unplaced_predictions(docs: Iterable[Doc], spans_key: Optional[str]) -> List[str]:
    """The labels of the predictions of group `spans_key` (None: doc.ents) that `on_reference_tokens`
    dropped from `docs`, one for each: scored as false positives (`seqeval_scores`, and the head's
    scorer), as the reference's tokens cannot hold them beside the entities kept."""
    key = LAID_ENTS if spans_key is None else spans_key
    return [label for doc in docs
            for label, n in doc.user_data.get(LAID_COUNTS, {}).get(key, {}).get("dropped_labels", {}).items()
            for _ in range(n)]


def predict_references(nlp: Language, references: Sequence[Doc], *, gold_tokens: bool = False,
                       batch_size: int = 32) -> Iterator[Doc]:
    """The pipeline's predictions for `references`, on their tokens: made on its own tokenization of
    their text (`on_reference_tokens`), or with `gold_tokens` on copies of their tokens."""
    if gold_tokens:
        yield from nlp.pipe((gold_token_doc(nlp.vocab, doc) for doc in references), batch_size=batch_size)
        return
    for reference, doc in zip(references, nlp.pipe((doc.text for doc in references), batch_size=batch_size)):
        yield on_reference_tokens(doc, reference)


def evaluate_corpus(
    nlp: Language,
    name: str,
    path: Path,
    *,
    spans_key: Optional[str] = None,
    batch_size: int = 32,
    limit: int = 0,
    gold_tokens: bool = False,
    log: Callable[[str], None] = lambda text: None,
) -> Dict[str, Any]:
    """Run `nlp` on a test corpus and score the corpus's head on the gold tokens
    (`predict_references`; the result's "tokens" says how it read them).

    With `limit`, only the first `limit` documents annotated for the head are
    scored; the result's "limit" says so where that left documents out (None
    where all were scored).
    """
    loaded = load_docs(Path(path), nlp.vocab)
    if not loaded:
        raise ValueError(f"{path}: no documents; convert the corpus again (`python -m spacy_bioner convert`)")
    heads = head_keys(nlp)
    key = spans_key or detect_spans_key(nlp, loaded, str(path))
    if key not in heads:
        raise ValueError(f"{path}: no head of the pipeline predicts spans_key {key!r} (heads: {sorted(heads)})")
    # Documents not annotated for this head (another corpus's, mixed in) are
    # left out before prediction: their entities are unknown, not absent.
    references = [doc for doc in loaded if is_annotated(doc, key)]
    if not references:
        carried = sorted({k for doc in loaded for k in doc.spans})
        other_heads = [k for k in carried if k in heads]
        if other_heads:  # another head's corpus: relabelled for this head, it would score labels the head lacks
            several = len(other_heads) > 1
            remedy = (f"they are annotated for head{'s' * several} {', '.join(map(repr, other_heads))}: score "
                      f"{'them' if several else 'it'} with --spans-key NAME={other_heads[0]} (or no --spans-key)")
        else:
            remedy = (f"convert the corpus with `python -m spacy_bioner convert ... --spans-key {key}`, or name "
                      "another head with --spans-key")
        raise ValueError(
            f"{path}: none of its {len(loaded)} documents is annotated for head {key!r}: it reads "
            f"doc.spans[{key!r}], or doc.ents of documents without span groups (these carry {carried}); {remedy}"
        )
    if len(references) < len(loaded):
        log(f"{name}: {len(loaded) - len(references)} documents not annotated for head {key!r}, not scored")
    limit = limit if 0 < limit < len(references) else 0
    if limit:
        references = references[:limit]
        log(f"{name}: only the first {limit:,} documents (--limit): partial scores")
    n_words = sum(len(doc) for doc in references)
    log(f"{name}: {len(references)} docs, {n_words:,} words from {path} (head {heads[key]!r})")
    gold_tags = gold_iob_tags(references, key)
    if not any(tag != "O" for sentence in gold_tags for tag in sentence):
        raise ValueError(
            f"{path}: the {counted(len(references), 'document')} scored hold no gold entity of head {key!r}, "
            "so there is nothing to score against; was the corpus converted with its entities (`python -m "
            "spacy_bioner convert` counts them)?"
        )
    overlapped = overlapped_gold(references, key)
    if overlapped:
        counts = ", ".join(f"{label} ({n:,})" for label, n in overlapped.items())
        warnings.warn(
            f"{path}: gold entities inside or across a longer one of head {key!r}, not scored: {counts} (a head "
            "tags one of overlapping entities, the longest, and learns and is scored on those alone)"
        )
    head_labels = nlp.get_pipe(heads[key]).labels
    unknown = unpredictable_labels(gold_tags, head_labels)
    if unknown:
        counts = ", ".join(f"{label} ({n:,})" for label, n in unknown.items())
        if not any(tag[2:] in head_labels for sentence in gold_tags for tag in sentence if tag != "O"):
            # Another corpus under this head's key: every entity a miss, a score of 0 published.
            raise ValueError(
                f"{path}: the head {heads[key]!r} predicts none of the corpus's labels ({counts} entities; its "
                f"labels: {', '.join(head_labels)}): was the corpus converted with --spans-key {key} from another "
                "corpus? Convert it with the key of the head that has its labels, or score it with a pipeline "
                "that has one"
            )
        warnings.warn(
            f"{path}: gold labels the head {heads[key]!r} does not predict: {counts} entities, only ever "
            f"missed (its labels: {', '.join(head_labels)}); was the corpus converted "
            "with other label names, or is it scored on the wrong head (--spans-key)?"
        )
    predicted: List[Doc] = []
    start = time.perf_counter()
    step = max(len(references) // 10, 1)
    for i, doc in enumerate(predict_references(nlp, references, gold_tokens=gold_tokens, batch_size=batch_size), 1):
        predicted.append(doc)
        if i % step == 0 or i == len(references):
            elapsed = time.perf_counter() - start
            words = sum(len(d) for d in predicted)
            log(f"{name}: {i}/{len(references)} docs, {words / max(elapsed, 1e-9):,.0f} words/s")
    seconds = time.perf_counter() - start
    pred_tags = iob_tags(predicted, key)
    seqeval = seqeval_scores(gold_tags, pred_tags, unplaced_predictions(predicted, key))
    examples = [Example(pred, ref) for pred, ref in zip(predicted, references)]
    spacy_scores = Scorer(nlp).score(examples)
    entity_scores = score_quality(*scored_entities(predicted, references, key))
    prefix = f"spans_{key}"
    result = {
        "corpus": name,
        "path": str(path),
        "spans_key": key,
        "head": heads[key],
        "documents": len(references),
        "limit": limit or None,
        "documents_not_annotated": len(loaded) - len(references),
        # How the pipeline read the documents: its own tokenization of their text, or the gold tokens.
        "tokens": "gold" if gold_tokens else "pipeline",
        # Read with its own tokens: how many of the head's entities were widened to the gold tokens, and
        # dropped as overlapping another once widened (scored as false positives; None: gold tokens).
        "laid_on_gold_tokens": laid_counts(predicted, key),
        "gold_labels_not_predicted": unknown,
        "gold_overlapped_not_scored": overlapped,
        "sentences": len(gold_tags),
        "words": n_words,
        "seconds": round(seconds, 1),
        "words_per_second": round(n_words / max(seconds, 1e-9)),
        "seqeval": seqeval,
        "spacy": {
            "p": _float(spacy_scores.get(f"{prefix}_p")),
            "r": _float(spacy_scores.get(f"{prefix}_r")),
            "f1": _float(spacy_scores.get(f"{prefix}_f")),
            "per_type": {
                label: {"p": row["p"], "r": row["r"], "f1": row["f"]}
                for label, row in (spacy_scores.get(f"{prefix}_per_type") or {}).items()
            },
            # doc.ents against this corpus's entities, without those of heads
            # it is not annotated for (scoring.ents_of_annotated_heads).
            "ents_p": _float(spacy_scores.get("ents_p")),
            "ents_r": _float(spacy_scores.get("ents_r")),
            "ents_f1": _float(spacy_scores.get("ents_f")),
        },
        # The head's entity scores against whether each entity is right.
        "entity_scores": entity_scores,
    }
    log(
        f"{name}: seqeval P {seqeval['p']:.4f} R {seqeval['r']:.4f} F1 {seqeval['f1']:.4f}; "
        f"spaCy F1 {result['spacy']['f1'] or 0:.4f} ({seconds:.0f} s)"
    )
    return result


def _float(value: Any) -> Optional[float]:
    return None if value is None else float(value)


def markdown_table(results: Dict[str, Dict[str, Any]]) -> str:
    """Micro P/R/F1 (seqeval and spaCy) and seqeval's macro F1 per corpus, then per-type seqeval
    scores, then how the entity scores fare (where the metrics measured them)."""
    lines = [
        "| corpus | head | docs | words | seqeval P | seqeval R | seqeval F1 | macro F1 | spaCy P | spaCy R | spaCy F1 |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, r in results.items():
        s, sp = r["seqeval"], r["spacy"]
        lines.append(
            f"| {name} | `{r['spans_key']}` | {r['documents']:,} | {r['words']:,} | {s['p']:.4f} | {s['r']:.4f} | "
            f"**{s['f1']:.4f}** | {s['macro_f1']:.4f} | {_fmt(sp['p'])} | {_fmt(sp['r'])} | {_fmt(sp['f1'])} |"
        )
    lines += [
        "",
        "Per type (seqeval P / R / F1, support):",
        "",
        "| corpus | type | P | R | F1 | support | spaCy F1 |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, r in results.items():
        for label, row in sorted(r["seqeval"]["per_type"].items()):
            spacy_f = r["spacy"]["per_type"].get(label, {}).get("f1")
            lines.append(
                f"| {name} | {label} | {row['p']:.4f} | {row['r']:.4f} | {row['f1']:.4f} | "
                f"{row['support']:,} | {_fmt(spacy_f)} |"
            )
    # Metrics written before evaluate measured the scores have none.
    scored = {name: r["entity_scores"] for name, r in results.items() if (r.get("entity_scores") or {}).get("entities")}
    if scored:
        lines += [
            "",
            "Entity scores (each of the head's entities right or wrong; a higher score should mean right more often):",
            "",
            "| corpus | entities | precision | mean score | Brier | calibration error | ROC AUC | "
            + " | ".join(f"precision (kept) at ≥ {t}" for t in SCORE_THRESHOLDS) + " |",
            "| --- " + "| ---: " * (6 + len(SCORE_THRESHOLDS)) + "|",
        ]
    for name, q in scored.items():
        kept = " | ".join(f"{_fmt(q[f'precision_at_{t}'])} ({q[f'kept_at_{t}']:,})" for t in SCORE_THRESHOLDS)
        lines.append(
            f"| {name} | {q['entities']:,} | {q['precision']:.4f} | {q['mean_score']:.4f} | {q['brier']:.4f} | "
            f"{q['calibration_error']:.4f} | {_fmt(q['auroc'])} | {kept} |"
        )
    return "\n".join(lines) + "\n"


def _fmt(value: Optional[float]) -> str:
    return "" if value is None else f"{value:.4f}"


def plot_per_type_f1(results: Dict[str, Dict[str, Any]], path: Path, title: str = "") -> Path:
    """Horizontal bars of the per-type seqeval F1 of every corpus, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .visualize import DISPLACY_COLORS

    rows = [
        (f"{name}: {label}", row["f1"], DISPLACY_COLORS.get(label, "#dddddd"))
        for name, r in results.items()
        for label, row in sorted(r["seqeval"]["per_type"].items())
    ]
    rows += [(f"{name}: micro", r["seqeval"]["f1"], "#888888") for name, r in results.items()]
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(rows) + 1.2))
    labels = [row[0] for row in rows][::-1]
    values = [row[1] for row in rows][::-1]
    colors = [row[2] for row in rows][::-1]
    bars = ax.barh(labels, values, color=colors, edgecolor="#444444", linewidth=0.5)
    for bar, value in zip(bars, values):
        ax.text(min(value, 1.0) + 0.01, bar.get_y() + bar.get_height() / 2, f"{value:.3f}", va="center", fontsize=8)
    ax.set_xlim(0, 1.1)
    ax.set_xlabel("F1 (seqeval, entity level, test set)")
    ax.set_title(title or "Per-type test F1", fontsize=10)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, format="png")  # whatever the name ends with (a temporary file's)
    plt.close(fig)
    return path


def write_metrics(
    results: Dict[str, Dict[str, Any]], output_dir: Path, encoder: str = "", command: str = ""
) -> List[Path]:
    """metrics/<corpus>.json, metrics/scores.md and, with matplotlib, metrics/per_type_f1.png, all
    written or none (`files.atomic_write_all`); without matplotlib an earlier chart is removed."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    files: List[Tuple[Path, Callable[[Path], Any]]] = [
        (output_dir / f"{name}.json",
         lambda tmp, text=json.dumps(dict(result, encoder=encoder), indent=2): tmp.write_text(text, encoding="utf8"))
        for name, result in results.items()
    ]
    header = ["# Test scores", ""]
    if encoder:
        header += [f"Encoder: {encoder}", ""]
    if command:
        header += ["Command:", "", f"    {command}", ""]
    for name, result in results.items():
        if result.get("limit"):
            header += [f"Partial scores: only the first {result['limit']:,} documents of {name} (--limit).", ""]
    overridden = {result["precision"] for result in results.values() if result.get("precision")}
    if overridden:
        header += [f"Encoder precision: {', '.join(sorted(overridden))}, not the pipeline's own (--precision, or a "
                   "device that cannot compute in it: bfloat16 without its arithmetic, float16 off a CUDA GPU).", ""]
    read = {result["tokens"] for result in results.values()}
    how = ("the pipeline read the gold tokens" if read == {"gold"} else
           "the pipeline read each text with its own tokenizer, its entities laid on the gold tokens"
           if read == {"pipeline"} else "see each corpus's JSON for how the pipeline read it")
    header += [
        "Entity-level micro scores: seqeval (default, conlleval-compatible mode) on the gold "
        f"tokens ({how}), and spaCy's scorer for the corpus's head (`spans_<key>_*`).",
        "",
    ]
    for name, result in results.items():
        laid = result.get("laid_on_gold_tokens")  # metrics written before evaluate counted them have none
        if laid:
            header += [f"{name}: the head's entities {laid['predicted']:,}; widened to the gold tokens (an edge "
                       f"inside one) {laid['widened']:,}; dropped from the tags, overlapping another once widened "
                       f"(scored as false positives) {laid['dropped']:,}.", ""]
        overlapped = result.get("gold_overlapped_not_scored")
        if overlapped:
            counts = ", ".join(f"{label} ({n:,})" for label, n in overlapped.items())
            header += [f"{name}: gold entities inside or across a longer one, not scored (the head tags the longest "
                       f"of overlapping entities): {counts}.", ""]
        unknown = result.get("gold_labels_not_predicted")
        if unknown:
            counts = ", ".join(f"{label} ({n:,})" for label, n in unknown.items())
            header += [f"{name}: gold entities of labels the head does not predict, {counts}: seqeval counts them "
                       "as misses, and so do spaCy's columns where the gold is the head's span group; where it is "
                       "doc.ents, they leave them out (the head learns those tokens as unannotated).", ""]
    markdown = "\n".join(header) + markdown_table(results)
    files.append((output_dir / "scores.md", lambda tmp: tmp.write_text(markdown, encoding="utf8")))
    chart = output_dir / "per_type_f1.png"
    try:
        import matplotlib  # noqa: F401  (an optional dependency: spacy-bioner[plots])
    except ImportError:
        warnings.warn('per_type_f1.png not drawn: matplotlib is not installed (the "plots" extra: '
                      'pip install -e ".[plots]" in a clone of spacy-bioner, or pip install matplotlib)')
    else:
        partial = [name for name, result in results.items() if result.get("limit")]
        title = " ".join(filter(None, [
            "Per-type test F1", f"({encoder})" if encoder else "",
            f"- partial: the first documents of {', '.join(partial)} (--limit)" if partial else "",
        ]))
        files.append((chart, lambda tmp: plot_per_type_f1(results, tmp, title=title)))
    atomic_write_all(files)
    if files[-1][0] != chart:
        chart.unlink(missing_ok=True)  # another run's scores
    return [path for path, _ in files]
