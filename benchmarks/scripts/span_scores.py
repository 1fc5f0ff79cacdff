"""How well the heads' entity scores tell right from wrong, under each
`span_scores` setting of `bio_ner` (decoding.py): calibration and ranking of
the scores of each head's predicted entities on a corpus split.

    python scripts/span_scores.py PIPELINE... --corpus jnlpba --corpus bc5cdr --split dev --tag span-scores

An entity is right where the corpus's gold has one with its tokens and label
(on the gold tokens, as `evaluate` and the scorer lay predictions on them).
Per setting: the mean score against the precision, the Brier score, the
expected calibration error (ten equal-width bins), the area under the ROC
curve of right against wrong, and the precision and number kept above 0.5
and 0.9; beside them the head's F1 and that of doc.ents, which only the
scores move (where two heads' entities overlap, the higher score wins).
The setting is chosen on dev; test only reports. The records go to
results/<date>-<device>-<tag>.json.
"""

from pathlib import Path
from typing import Any, Dict, List, Sequence

import numpy as np
import spacy
import typer
from sklearn.metrics import brier_score_loss, roc_auc_score
from spacy.training import Example

from run import BENCHMARKS, CORPORA, device_name, log, results_stem, versions, write_json
from spacy_bioner.annotation import gold_spans, head_keys, spans_with_scores, taggable_spans
from spacy_bioner.corpora import load_docs
from spacy_bioner.decoding import SPAN_SCORES
from spacy_bioner.evaluation import predict_references

THRESHOLDS = (0.5, 0.9)
CALIBRATION_BINS = 10

app = typer.Typer(add_completion=False)


def calibration_error(scores: np.ndarray, right: np.ndarray, bins: int = CALIBRATION_BINS) -> float:
    """Expected calibration error: the mean over equal-width score bins of
    |mean score - share right|, each bin weighted by its entities."""
    which = np.minimum((scores * bins).astype(int), bins - 1)
    total = 0.0
    for bin_ in np.unique(which):
        members = which == bin_
        total += members.sum() * abs(scores[members].mean() - right[members].mean())
    return float(total / len(scores))


def score_quality(scores: Sequence[float], right: Sequence[bool]) -> Dict[str, Any]:
    """Calibration and ranking of entity scores against whether each entity is right."""
    scores, right = np.asarray(scores, dtype="float64"), np.asarray(right, dtype=bool)
    quality: Dict[str, Any] = {
        "entities": int(len(scores)),
        "precision": float(right.mean()),
        "mean_score": float(scores.mean()),
        "brier": float(brier_score_loss(right, scores)),
        "calibration_error": calibration_error(scores, right),
        # Undefined where every entity is right, or none.
        "auroc": float(roc_auc_score(right, scores)) if 0 < right.sum() < len(right) else None,
    }
    for threshold in THRESHOLDS:
        kept = scores >= threshold
        quality[f"kept_at_{threshold}"] = int(kept.sum())
        quality[f"precision_at_{threshold}"] = float(right[kept].mean()) if kept.any() else None
    return quality


@app.command()
def main(
    pipelines: List[Path] = typer.Argument(..., help="Saved pipelines to evaluate."),
    corpora: List[str] = typer.Option(
        ["jnlpba", "bc5cdr"], "--corpus", help=f"Corpora (repeatable): {', '.join(CORPORA)}."
    ),
    splits: List[str] = typer.Option(["dev"], "--split", help="Splits to score (repeatable)."),
    corpus_root: Path = typer.Option(BENCHMARKS / "corpus", help="Converted corpora, as run.py reads them."),
    limit: int = typer.Option(0, help="Score only the first N documents of each split (0: all)."),
    output_dir: Path = typer.Option(BENCHMARKS / "results", help="Where the JSON records go."),
    tag: str = typer.Option("span-scores", help="Suffix of the output file name."),
) -> None:
    """Score each head's entity scores under each span_scores setting."""
    unknown = sorted(set(corpora) - set(CORPORA))
    if unknown:
        raise typer.BadParameter(f"unknown corpus {unknown}; choose from {list(CORPORA)}")
    device = device_name(-1)  # the heads run on the CPU here
    revision = versions()
    records: List[Dict[str, Any]] = []
    for path in pipelines:
        nlp = spacy.load(path)
        heads = head_keys(nlp)
        for corpus in corpora:
            folder, key = CORPORA[corpus]
            head = nlp.get_pipe(heads[key])
            for split in splits:
                references = load_docs(corpus_root / folder / f"{split}.spacy", nlp.vocab, limit)
                entities = None
                for setting in SPAN_SCORES:
                    log(f"{path.name}: {corpus} {split}, span_scores = {setting!r}")
                    for name in heads.values():
                        nlp.get_pipe(name).span_scores = setting
                    predicted = list(predict_references(nlp, references))
                    scores, right, found = [], [], []
                    for doc, reference in zip(predicted, references):
                        gold = {(s.start, s.end, s.label_) for s in taggable_spans(gold_spans(reference, key) or [])}
                        for span, score in spans_with_scores(doc, key):
                            found.append((span.start, span.end, span.label_))
                            scores.append(score)
                            right.append(found[-1] in gold)
                    # The setting moves the scores only, never the head's entities.
                    assert entities is None or found == entities, "the head's entities differ between settings"
                    entities = found
                    measured = head.score([Example(doc, ref) for doc, ref in zip(predicted, references)])
                    records.append({
                        "pipeline": path.name, "corpus": corpus, "split": split, "span_scores": setting,
                        "documents": len(references), "device": device, "versions": revision,
                        **score_quality(scores, right),
                        "head_f1": measured[f"spans_{key}_f"], "ents_f1": measured["ents_f"],
                    })
    output = output_dir / f"{results_stem(tag, -1)}.json"
    write_json(output, records)
    print(markdown_table(records))
    log(f"wrote {output}")


def _fmt(value: Any) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def markdown_table(records: List[Dict[str, Any]]) -> str:
    """One row per pipeline, corpus, split and setting."""
    columns = ["mean_score", "precision", "brier", "calibration_error", "auroc",
               "precision_at_0.5", "precision_at_0.9", "head_f1", "ents_f1"]
    header = ["pipeline", "corpus", "split", "span_scores", "entities", *columns, "kept at 0.5", "kept at 0.9"]
    lines = ["| " + " | ".join(header) + " |", "| --- " * len(header) + "|"]
    lines += [
        f"| {r['pipeline']} | {r['corpus']} | {r['split']} | {r['span_scores']} | {r['entities']} | "
        + " | ".join(_fmt(r[c]) for c in columns)
        + f" | {r['kept_at_0.5']} | {r['kept_at_0.9']} |"
        for r in records
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    app()
