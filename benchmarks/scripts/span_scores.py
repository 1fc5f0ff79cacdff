"""How well the heads' entity scores tell right from wrong, under each
`span_scores` setting of `bio_ner` (decoding.py): calibration and ranking of
the scores of each head's predicted entities on a corpus split.

    python scripts/span_scores.py PIPELINE... --corpus jnlpba --corpus bc5cdr --split dev --tag span-scores

An entity is right where the corpus's gold has one with its tokens and label
(on the gold tokens, as `evaluate` and the scorer lay predictions on them).
Per setting, `evaluate`'s measures of the scores (`evaluation.score_quality`):
the mean score against the precision, the Brier score, the expected
calibration error (ten equal-width bins), the area under the ROC curve of
right against wrong, and the precision and number kept at 0.5 and 0.9;
beside them the head's F1 and that of doc.ents, which only the scores move
(where two heads' entities overlap, the higher score wins).
The setting is chosen on dev; test only reports. The records go to
results/<date>-<device>-<tag>.json.
"""

from pathlib import Path
from typing import Any, Dict, List

import spacy
import typer
from spacy.training import Example

from run import BENCHMARKS, CORPORA, device_name, log, results_stem, versions, write_json
from spacy_bioner.annotation import head_keys
from spacy_bioner.corpora import load_docs
from spacy_bioner.decoding import SPAN_SCORES
from spacy_bioner.evaluation import predict_references, score_quality, scored_entities

app = typer.Typer(add_completion=False)


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
                    # The setting moves the scores only, never the head's entities.
                    found = [(s.start, s.end, s.label_) for doc in predicted for s in doc.spans.get(key, [])]
                    assert entities is None or found == entities, "the head's entities differ between settings"
                    entities = found
                    measured = head.score([Example(doc, ref) for doc, ref in zip(predicted, references)])
                    records.append({
                        "pipeline": path.name, "corpus": corpus, "split": split, "span_scores": setting,
                        "documents": len(references), "device": device, "versions": revision,
                        **score_quality(*scored_entities(predicted, references, key)),
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
