"""Abbreviation consistency on saved pipelines: seqeval scores of each head's
predictions without `bio_ner_abbreviations` and with each of its settings.
The head scored is the corpus's (its span group, as `evaluate` scores it).

    python scripts/abbreviation_settings.py PIPELINE... --corpus bc5cdr --split dev --split test --tag abbreviations

Each pipeline (e.g. one kept by `run.py --save-pipelines`) predicts each split
once, on gold tokens, with the component disabled or absent (pipelines saved
before it existed); every setting then corrects copies of those documents,
with the shipped config's other settings of the component (plural_variants).
A pipeline without the corpus's bio_ner head (spaCy's transition `ner`) is
scored on doc.ents, which the component then corrects (`correct_ents`).
The settings are chosen on dev; test only reports. The records go to
results/<date>-<device>-<tag>.json.
"""

from pathlib import Path
from typing import Any, Dict, List

import spacy
import typer

from run import BENCHMARKS, CORPORA, device_name, log, results_stem, shipped_abbreviation_step, versions, write_json
from spacy_bioner.abbreviations import AbbreviationConsistency
from spacy_bioner.annotation import head_keys
from spacy_bioner.corpora import gold_token_doc, load_docs
from spacy_bioner.evaluation import iob_tags, seqeval_scores

CORRECTIONS = ("add_missing", "relabel", "remove_unsupported")
# Each correction alone, add and relabel together, and all three (shipped).
SETTINGS: Dict[str, Dict[str, bool]] = {
    "none": {},
    **{name: {c: c == name for c in CORRECTIONS} for name in CORRECTIONS},
    "add_missing+relabel": {"add_missing": True, "relabel": True, "remove_unsupported": False},
    "all": {c: True for c in CORRECTIONS},
}

app = typer.Typer(add_completion=False)


def shipped_options(head: str) -> Dict[str, Any]:
    """The shipped config's other settings of the head's component (plural_variants...),
    under which each setting of the corrections is scored."""
    step = shipped_abbreviation_step(head)
    return {key: value for key, value in step.items() if key not in (*CORRECTIONS, "spans_keys")}


@app.command()
def main(
    pipelines: List[Path] = typer.Argument(..., help="Saved pipelines to evaluate."),
    corpus: str = typer.Option("bc5cdr", help=f"Corpus: {', '.join(CORPORA)}."),
    splits: List[str] = typer.Option(["dev"], "--split", help="Splits to score (repeatable)."),
    corpus_root: Path = typer.Option(BENCHMARKS / "corpus", help="Converted corpora, as run.py reads them."),
    output_dir: Path = typer.Option(BENCHMARKS / "results", help="Where the JSON records go."),
    tag: str = typer.Option("abbreviations", help="Suffix of the output file name."),
) -> None:
    """Score each pipeline's predictions under each setting of abbreviation consistency."""
    if corpus not in CORPORA:
        raise typer.BadParameter(f"unknown corpus {corpus!r}; choose from {list(CORPORA)}")
    folder, head = CORPORA[corpus]
    shipped = shipped_options(head)
    device = device_name(-1)  # the heads run on the CPU here
    revision = versions()
    records: List[Dict[str, Any]] = []
    for path in pipelines:
        nlp = spacy.load(path)
        components = [name for name in nlp.pipe_names if nlp.get_pipe_meta(name).factory == "bio_ner_abbreviations"]
        # The head's group, or doc.ents for a pipeline without the head.
        predicted_key = head if head in head_keys(nlp) else None
        target = {} if predicted_key else {"spans_keys": [], "correct_ents": True}
        for split in splits:
            log(f"{path.name}: predicting {corpus} {split}")
            docs = load_docs(corpus_root / folder / f"{split}.spacy", nlp.vocab, 0)
            with nlp.select_pipes(disable=components):
                predicted = list(nlp.pipe([gold_token_doc(nlp.vocab, doc) for doc in docs], batch_size=64))
            gold = iob_tags(docs, head)
            for setting, options in SETTINGS.items():
                corrected = predicted
                if options:
                    component = AbbreviationConsistency(nlp, **shipped, **target, **options)
                    corrected = [component(doc.copy()) for doc in predicted]
                pred = iob_tags(corrected, predicted_key)
                scores = seqeval_scores(gold, pred)
                records.append({
                    "pipeline": path.name, "corpus": corpus, "split": split, "setting": setting,
                    "scored": predicted_key or "doc.ents",
                    "options": options, "device": device, "versions": revision,
                    **{key: scores[key] for key in ("p", "r", "f1", "macro_f1")},
                })
    output = output_dir / f"{results_stem(tag, -1)}.json"
    write_json(output, records)
    print(markdown_table(records))
    log(f"wrote {output}")


def markdown_table(records: List[Dict[str, Any]]) -> str:
    lines = ["| pipeline | split | setting | P | R | F1 | macro F1 |", "| --- | --- | --- | --- | --- | --- | --- |"]
    lines += [
        f"| {r['pipeline']} | {r['split']} | {r['setting']} | {r['p']:.4f} | {r['r']:.4f} | "
        f"**{r['f1']:.4f}** | {r['macro_f1']:.4f} |"
        for r in records
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    app()
