"""How the tokenizer's sentence rules (`spacy_bioner.tokenizer.starts_sentence`)
agree with corpora that come in sentences:

- BC5CDR's IOB form, its sentences regrouped into the PubTator abstracts,
  against the sentences `read_pubtator` gives each abstract (the abstract's
  first word a start, none inside a gold mention);
- JNLPBA on its own tokens (the abstract's first sentence after the title a
  start, as for PubTator);
- the pretraining text (a sentence a line, tokens apart), in runs of 20 lines:
  a line's start is counted where the line before ends with terminal
  punctuation, and a start inside a line is an extra one.

    python scripts/sentence_rules.py --show 30 --tag sentence-rules    # from benchmarks/

Neither side is right everywhere (BC5CDR's form has "St. || Luke's" and
"2 mg. || kg(-1)"; the pretraining text's tokens lose the spacing of
"NF.kappa B"): read the examples (--show) with the counts. The record goes to
results/<date>-<cores>-<tag>.json.
"""

import lzma
from pathlib import Path
from typing import Any, Dict, Iterable, List, Sequence, Set, Tuple

import typer
from spacy.tokens import Doc

from run import REPO, log, results_stem, versions, write_json
from spacy_bioner.corpora.iob import read_iob, read_jnlpba
from spacy_bioner.corpora.pubtator import read_pubtator
from spacy_bioner.tokenizer import make_bio_nlp, starts_sentence

ASSETS = REPO / "assets"
BC5CDR_SPLITS = {"train": "CDR_TrainingSet", "devel": "CDR_DevelopmentSet", "test": "CDR_TestSet"}
JNLPBA_FILES = {"train": "Genia4ERtask2", "test": "Genia4EReval2"}
LINES_PER_DOC = 20
TERMINALS = (".", "!", "?")

app = typer.Typer(add_completion=False)


def _context(doc: Doc, i: int) -> str:
    return f"{doc[max(0, i - 8):i].text} || {doc[i:i + 6].text}"


def _compare(doc: Doc, reference: Set[int], ours: Set[int], ignored: Set[int], record: Dict[str, Any],
             show: int) -> None:
    """Count `reference` starts (token indices) that `ours` misses and our starts that it lacks."""
    record["reference_starts"] += len(reference)
    for kind, indices in (("missed", reference - ours), ("extra", ours - reference - ignored)):
        record[kind] += len(indices)
        examples = record["examples"][kind]
        examples.extend(_context(doc, i) for i in sorted(indices)[: max(0, show - len(examples))])


def _new_record(source: str) -> Dict[str, Any]:
    return {"source": source, "documents": 0, "reference_starts": 0, "missed": 0, "extra": 0,
            "examples": {"missed": [], "extra": []}}


def bc5cdr(assets: Path, split: str, limit: int, show: int) -> Dict[str, Any]:
    nlp = make_bio_nlp()
    docs, _ = read_pubtator(assets / "bc5cdr" / "pubtator" / f"{BC5CDR_SPLITS[split]}.PubTator.txt.xz", nlp)
    by_pmid = {doc.user_data["pmid"]: doc for doc in docs}
    iob_docs, _ = read_iob(assets / "bc5cdr" / "iob" / f"{split}.tsv.xz", nlp.vocab,
                           documents=[(pmid, doc.text) for pmid, doc in by_pmid.items()])
    record = _new_record(f"bc5cdr-iob {split}")
    for iob_doc in iob_docs[: limit or None]:
        doc = by_pmid[iob_doc.user_data["pmid"]]
        # The IOB form's tokens, found in order in the abstract's own text.
        by_char = {t.idx: t.i for t in doc}
        text = doc.text  # spaCy joins a Doc's text anew on each access
        reference, position = set(), 0
        for token in iob_doc:
            position = text.index(token.text, position)
            if token.is_sent_start and position in by_char:
                reference.add(by_char[position])
            position += len(token.text)
        ours = {t.i for t in doc if t.is_sent_start}
        _compare(doc, reference, ours, set(), record, show)
        record["documents"] += 1
    return record


def jnlpba(assets: Path, split: str, limit: int, show: int) -> Dict[str, Any]:
    nlp = make_bio_nlp()
    docs, _ = read_jnlpba(assets / "jnlpba" / f"{JNLPBA_FILES[split]}.iob2.xz", nlp.vocab)
    record = _new_record(f"jnlpba {split}")
    for doc in docs[: limit or None]:
        reference = {t.i for t in doc if t.is_sent_start}
        abstract = sorted(reference)[1:2]  # the title is the first sentence
        ours = {i for i in range(len(doc)) if i in abstract or starts_sentence(doc, i)}
        _compare(doc, reference, ours, set(), record, show)
        record["documents"] += 1
    return record


def _runs(lines: Sequence[List[str]], size: int) -> Iterable[Sequence[List[str]]]:
    return (lines[k : k + size] for k in range(0, len(lines), size))


def pretraining_text(assets: Path, limit: int, show: int) -> Dict[str, Any]:
    nlp = make_bio_nlp()
    with lzma.open(assets / "unlabeled" / "biomed-sentences.txt.xz", "rt", encoding="utf8") as f:
        lines = [line.split() for line in f if line.strip()][: limit * LINES_PER_DOC or None]
    record = _new_record("pretraining text")
    for run in _runs(lines, LINES_PER_DOC):
        doc = Doc(nlp.vocab, words=[word for line in run for word in line])
        line_starts: List[Tuple[int, bool]] = []  # (index, whether the line before ends a sentence)
        position = 0
        for before, line in zip([None, *run], run):
            if before is not None:
                line_starts.append((position, before[-1] in TERMINALS))
            position += len(line)
        reference = {i for i, after_terminal in line_starts if after_terminal}
        ignored = {i for i, _ in line_starts} - reference
        ours = {i for i in range(1, len(doc)) if starts_sentence(doc, i)}
        _compare(doc, reference, ours, ignored, record, show)
        record["documents"] += 1
    return record


@app.command()
def main(
    assets: Path = typer.Option(ASSETS, help="The project's assets/ folder."),
    limit: int = typer.Option(0, help="Read only the first N documents of each source (0: all)."),
    show: int = typer.Option(10, help="Examples kept of each kind, per source."),
    output_dir: Path = typer.Option(REPO / "benchmarks" / "results", help="Where the JSON record goes."),
    tag: str = typer.Option("sentence-rules", help="Suffix of the output file name."),
) -> None:
    """Count the sentence starts the rules miss and add against each source."""
    records = [bc5cdr(assets, split, limit, show) for split in BC5CDR_SPLITS]
    records += [jnlpba(assets, split, limit, show) for split in JNLPBA_FILES]
    records.append(pretraining_text(assets, limit, show))
    for record in records:
        log(f"{record['source']}: {record['reference_starts']:,} starts, {record['missed']:,} missed, "
            f"{record['extra']:,} extra")
        for kind in ("missed", "extra"):
            for example in record["examples"][kind]:
                print(f"  {kind}: {example}")
    write_json(output_dir / f"{results_stem(tag, -1)}.json", {"versions": versions(), "sources": records})


if __name__ == "__main__":
    app()
