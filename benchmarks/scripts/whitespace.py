"""Do whitespace tokens change a pipeline's entities? Test abstracts as given, after a leading
space or line end, with each ". " written ".\\n", and wrapped at 80 columns (the offsets stay).

    python scripts/whitespace.py PIPELINE --corpus-root ../corpus --corpus jnlpba --corpus bc5cdr --docs 100 --output results/whitespace.json   # from benchmarks/

Each head's entities (its span group: offsets, label) are compared with those of the text as
given, under the pipeline's own windows and under spacy_bioner.strided_spans.v1 with the same
window and stride (placed by words). An entity counts as differing where only one side has it.
"""

from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

import spacy
import typer

from run import BENCHMARKS, device_name, log, versions, write_json
from spacy_bioner.annotation import head_keys
from spacy_bioner.corpora import load_docs

app = typer.Typer(add_completion=False)

WORD_WINDOWS = "spacy_bioner.strided_spans.v1"
# name -> (the text changed, how far its characters moved)
VARIANTS: Dict[str, Tuple[Callable[[str], str], int]] = {
    "leading space": (lambda text: " " + text, 1),
    "leading line end": (lambda text: "\n" + text, 1),
    "'. ' as '.\\n'": (lambda text: text.replace(". ", ".\n"), 0),
    "wrapped at 80 columns": (lambda text: wrapped(text, 80), 0),
}


def wrapped(text: str, width: int) -> str:
    """`text` with the last space before each line would pass `width` characters made a line end."""
    chars = list(text)
    line_start, last_space = 0, -1
    for i, char in enumerate(chars):
        if char == " ":
            last_space = i
        if i - line_start >= width and last_space > line_start:
            chars[last_space] = "\n"
            line_start = last_space + 1
    return "".join(chars)


def head_entities(nlp: spacy.Language, texts: List[str], shift: int) -> List[Set[Tuple[str, int, int, str]]]:
    """Per text, each head's entities as (spans_key, start_char, end_char, label), moved back by `shift`."""
    keys = list(head_keys(nlp))
    return [{(key, span.start_char - shift, span.end_char - shift, span.label_) for key in keys for span in doc.spans[key]}
            for doc in nlp.pipe(texts, batch_size=16)]


@app.command()
def main(
    pipeline: Path = typer.Argument(..., exists=True, help="A trained pipeline (a folder nlp.to_disk wrote)."),
    docs: int = typer.Option(100, min=1, help="Test documents of each corpus."),
    corpus_root: Path = typer.Option(
        BENCHMARKS / "corpus", help="Converted corpora: <root>/<corpus>/test.spacy for each --corpus."
    ),
    corpora: List[str] = typer.Option(
        ["jnlpba", "bc5cdr-iob"], "--corpus", help="Folders under --corpus-root whose test texts are read (the "
        "project's bc5cdr holds BC5CDR's PubTator texts, as written; bc5cdr-iob the IOB form's, spaced by token)."
    ),
    output: Optional[Path] = typer.Option(None, help="Also write the record here as JSON."),
) -> None:
    """Entities that change with whitespace, under the pipeline's windows and under windows placed by words."""
    own = spacy.load(pipeline)
    get_spans = dict(own.config["components"]["transformer"]["model"]["get_spans"])
    texts = [doc.text for corpus in corpora for doc in load_docs(corpus_root / corpus / "test.spacy", own.vocab, docs)]
    record: Dict[str, Any] = {"pipeline": str(pipeline), "corpora": corpora, "documents": len(texts), "windows": {}}
    by_words = {**get_spans, "@span_getters": WORD_WINDOWS}
    for windows in (get_spans, by_words):
        nlp = own if windows is get_spans else spacy.load(
            pipeline, config={"components": {"transformer": {"model": {"get_spans": windows}}}})
        given = head_entities(nlp, texts, 0)
        rows = {}
        for name, (change, shift) in VARIANTS.items():
            changed = head_entities(nlp, [change(text) for text in texts], shift)
            rows[name] = {
                "entities_same": sum(len(a & b) for a, b in zip(given, changed)),
                "entities_differing": sum(len(a ^ b) for a, b in zip(given, changed)),
                "documents_differing": sum(a != b for a, b in zip(given, changed)),
            }
            log(f"{windows['@span_getters']}, {name}: {rows[name]}")
        record["windows"][windows["@span_getters"]] = {"get_spans": windows, "variants": rows}
    record.update({"device": device_name(-1), "versions": versions()})
    if output is not None:
        write_json(output, record)
        log(f"wrote {output}")


if __name__ == "__main__":
    app()
