"""IOB/CoNLL corpora (JNLPBA, BC5CDR in the BioBERT form) to spaCy Docs.

Columns: the first is the token and the last non-empty one the tag. Tags are
IOB1, IOB2 or BIOES (BILUO letters accepted), auto-detected per file. An
I-/E- tag that does not continue an entity of its label starts a new entity,
as conlleval reads it; in IOB2/BIOES files this is counted as "repaired" (in
IOB1 it is the normal way to start an entity).

Every reader sets both `doc.ents` and `doc.spans[spans_key]` to the same
non-overlapping spans ("jnlpba" for JNLPBA, "bc5cdr" for both BC5CDR forms,
"ents" for other corpora): the `bio_ner` head with that key learns from them.
"""

import re
import warnings
from pathlib import Path
from typing import Iterable, List, Optional, Sequence, Tuple

from spacy.tokens import Doc, Span
from spacy.vocab import Vocab

from .report import REPAIRED, ConversionError, ConversionReport, Issue
from .text import PathLike, read_lines

# How a file's tags are read: detected, or forced.
IOB_SCHEMES = ("auto", "iob1", "iob2", "bioes")
DEFAULT_SPANS_KEY = "ents"
JNLPBA_SPANS_KEY = "jnlpba"
BC5CDR_SPANS_KEY = "bc5cdr"
# The standard JNLPBA dev split (BioBERT, BLURB): the last 200 abstracts of the training file.
JNLPBA_DEV_DOCS = 200

_TAG_RE = re.compile(r"^([BIESLU])-(\S.*)$")
_DOC_MARKERS = ("-DOCSTART-", "###MEDLINE:")


_Token = Tuple[str, str, int]  # word, tag, line number
_Sentence = List[_Token]


def _parse_iob_lines(path: Path, lines: Sequence[str]) -> List[Tuple[Optional[str], List[_Sentence]]]:
    """Group the lines into documents (pmid or None, sentences)."""
    docs: List[Tuple[Optional[str], List[_Sentence]]] = [(None, [])]
    sent: _Sentence = []
    for lineno, line in enumerate(lines, start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith(_DOC_MARKERS):
            if sent:
                docs[-1][1].append(sent)
                sent = []
            if stripped.startswith("###MEDLINE:"):
                docs.append((stripped[len("###MEDLINE:") :].strip(), []))
            elif stripped.startswith("-DOCSTART-"):
                docs.append((None, []))
            continue
        parts = line.split("\t") if "\t" in line else line.split()
        parts = [p.strip() for p in parts]
        while len(parts) > 1 and not parts[-1]:  # trailing empty columns ("tok\tB-X\t")
            parts.pop()
        if len(parts) < 2 or not parts[0] or not parts[-1]:
            raise ConversionError(f"{path}:{lineno}: no tag (expected 'token<TAB>tag'): {line[:60]!r}")
        tag = parts[-1]
        if tag != "O" and not _TAG_RE.match(tag):
            raise ConversionError(
                f"{path}:{lineno}: unknown tag {tag[:40]!r} (expected O or B-, I-, E-, S-, L-, U- and a label)"
            )
        sent.append((parts[0], tag, lineno))
    if sent:
        docs[-1][1].append(sent)
    return [(pmid, sents) for pmid, sents in docs if sents]


def detect_scheme(sentences: Iterable[_Sentence]) -> str:
    """Guess the tagging scheme: "bioes", "iob1" or "iob2".

    BIOES if any E-/S-/L-/U- tag occurs. IOB1 if no B- tag follows O or a
    different label (in IOB1, B- only separates two adjacent entities of the
    same label) and some I- tag starts an entity. Otherwise IOB2.
    """
    b_after_other = i_starts = False
    for sent in sentences:
        prev = "O"
        for _, tag, _ in sent:
            if tag[0] in "ESLU":
                return "bioes"
            if tag.startswith("B-") and prev[2:] != tag[2:]:
                b_after_other = True
            if tag.startswith("I-") and prev[2:] != tag[2:]:
                i_starts = True
            prev = tag
    return "iob1" if i_starts and not b_after_other else "iob2"


def _chunk_sentence(
    sent: _Sentence, scheme: str, offset: int
) -> Tuple[List[Tuple[int, int, str]], List[Tuple[int, str]]]:
    """Entities (start, end, label) of a sentence, token indices + `offset`,
    and the (line, reason) of each repaired tag."""
    entities: List[Tuple[int, int, str]] = []
    repairs: List[Tuple[int, str]] = []
    current: Optional[List] = None  # [start, end, label], open for continuation
    for i, (_, tag, lineno) in enumerate(sent):
        if tag == "O":
            current = None
            continue
        prefix, label = tag[0], tag[2:]
        continues = current is not None and current[2] == label
        if prefix in "IEL" and continues:
            current[1] = i + 1
        else:
            if prefix in "IEL" and scheme != "iob1":
                prev = sent[i - 1][1] if i else "sentence start"
                repairs.append((lineno, f"{tag} after {prev} read as the start of an entity"))
            current = [i, i + 1, label]
            entities.append(current)  # type: ignore[arg-type]
        if prefix in "ESLU":
            current = None
    return [(s + offset, e + offset, label) for s, e, label in entities], repairs


def read_iob(
    path: PathLike,
    vocab: Vocab,
    *,
    scheme: str = "auto",
    n_sents: int = 1,
    spans_key: str = DEFAULT_SPANS_KEY,
) -> Tuple[List[Doc], ConversionReport]:
    """Read a `token<TAB>tag` (or whitespace-separated, tag last) file.

    Columns: the first is the token and the last non-empty one the tag;
    columns in between (POS, chunk tags: CoNLL) and empty trailing columns
    (a trailing tab) are ignored. A line with one column has no tag: error.

    `-DOCSTART-` and `###MEDLINE:<pmid>` lines start a new document (one Doc
    per document, `doc.user_data["pmid"]` from the marker). A file without
    such markers, or with one `-DOCSTART-` heading it (as CoNLL files have),
    gives one Doc per `n_sents` consecutive sentences. Tokens
    are kept as they are, each followed by a space.
    """
    path = Path(path)
    if scheme not in IOB_SCHEMES:
        raise ConversionError(f"{path}: unknown scheme {scheme!r} (expected one of {', '.join(IOB_SCHEMES)})")
    if n_sents < 1:
        raise ConversionError(f"{path}: n_sents must be at least 1, got {n_sents}")
    groups = _parse_iob_lines(path, read_lines(path))
    if not groups:
        raise ConversionError(f"{path}:1: empty file (no tokens)")
    if len(groups) == 1 and groups[0][0] is None:
        sents = groups[0][1]
        groups = [(None, sents[i : i + n_sents]) for i in range(0, len(sents), n_sents)]
    if scheme == "auto":
        scheme = detect_scheme(s for _, sents in groups for s in sents)
    report = ConversionReport(source=str(path))
    docs = []
    for doc_index, (pmid, sents) in enumerate(groups):
        words: List[str] = []
        sent_starts: List[bool] = []
        entities: List[Tuple[int, int, str]] = []
        for sent in sents:
            ents, repairs = _chunk_sentence(sent, scheme, len(words))
            entities.extend(ents)
            for lineno, reason in repairs:
                report.issues.append(Issue(REPAIRED, f"{path}:{lineno}", reason, doc_index=doc_index))
            words.extend(word for word, _, _ in sent)
            sent_starts.extend([True] + [False] * (len(sent) - 1))
        doc = Doc(vocab, words=words, spaces=[True] * len(words), sent_starts=sent_starts)
        set_entities(doc, [Span(doc, s, e, label=label) for s, e, label in entities], spans_key)
        if pmid is not None:
            doc.user_data["pmid"] = pmid
        docs.append(doc)
    report.count_docs(docs, spans_key)
    if report.repaired:
        warnings.warn(
            f"{path}: {len(report.repaired)} I-/E- tags did not continue an entity "
            f"and were read as entity starts (first at {report.repaired[0].where})"
        )
    return docs, report


def read_jnlpba(
    path: PathLike, vocab: Vocab, *, spans_key: str = JNLPBA_SPANS_KEY
) -> Tuple[List[Doc], ConversionReport]:
    """Read a JNLPBA `Genia4*2.iob2` file: one Doc per `###MEDLINE:` abstract."""
    return read_iob(path, vocab, scheme="iob2", spans_key=spans_key)


def set_entities(doc: Doc, spans: List[Span], spans_key: str) -> None:
    """The corpus annotation contract: doc.ents and doc.spans[spans_key] agree."""
    doc.ents = spans
    doc.spans[spans_key] = list(doc.ents)
