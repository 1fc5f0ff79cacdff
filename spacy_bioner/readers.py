"""Readers for biomedical NER corpora: IOB/CoNLL (JNLPBA, BC5CDR IOB) and PubTator.

Every reader returns spaCy Docs plus a `ConversionReport`, reads `.gz`
(detected by its magic bytes) or plain UTF-8 text, and accepts CRLF line
ends and a UTF-8 BOM. Bad input raises `ConversionError` with a one-line
message naming the file and the line (and PMID for PubTator).

The annotation contract: every reader sets BOTH `doc.ents` and
`doc.spans[spans_key]` to the same non-overlapping spans ("jnlpba" for
JNLPBA, "bc5cdr" for both BC5CDR forms, "ents" for other corpora). The
`bio_ner` component learns from `doc.spans[its spans_key]` and treats a doc
without that key as unannotated for that head, so docs of different corpora
can be mixed in one training set.

IOB policy: tags are IOB1, IOB2 or BIOES (BILUO letters accepted),
auto-detected per file. An I-/E- tag that does not continue an entity of its
label starts a new entity, as conlleval reads it; in IOB2/BIOES files this is
counted as "repaired" (in IOB1 it is the normal way to start an entity).

PubTator policy: one Doc per abstract, text = title + " " + abstract (the
offsets assume exactly that), tokenized with the given nlp (the
BioTokenizer). A mention is placed by its offsets with
`alignment_mode="strict"`; if it does not fall on token boundaries it is
expanded to them (reported as "expanded"). A composite mention (7th column,
"cardiovascular, and respiratory depression") is kept as ONE span with the
composite MeSH ids ("D002318|D012131") as `kb_id_` (reported as
"composite"). Mention columns after the 7th are ignored. Overlapping
mentions: the longer one is kept (ties: the earlier one) and the other is
dropped and reported, so `doc.ents` and
`doc.spans[key]` hold one consistent non-overlapping tagging. A MeSH id of
"-1" (none) becomes an empty `kb_id_`. CID relation lines are ignored and
counted ("relation").
"""

import re
import warnings
import zlib
from itertools import islice
from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import spacy
from spacy.language import Language
from spacy.tokens import Doc, DocBin, Span
from spacy.training import Example
from spacy.vocab import Vocab

from .conversion import (
    COMPOSITE,
    DROPPED,
    EXPANDED,
    RELATION,
    REPAIRED,
    ConversionError,
    ConversionReport,
    Issue,
    gold_token_doc,
)
from .tokenizer import set_sentence_starts

PathLike = Union[str, Path]
SCHEMES = ("auto", "iob1", "iob2", "bioes")
DEFAULT_SPANS_KEY = "ents"
JNLPBA_SPANS_KEY = "jnlpba"
BC5CDR_SPANS_KEY = "bc5cdr"

_TAG_RE = re.compile(r"^([BIESLU])-(\S.*)$")
_DOC_MARKERS = ("-DOCSTART-", "###MEDLINE:")


def read_lines(path: PathLike) -> List[str]:
    """The lines of a plain or gzipped UTF-8 file, without line ends or BOM."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ConversionError(f"{path}: cannot read file: {e.strerror or e}") from None
    if data[:2] == b"\x1f\x8b":
        data = _gunzip(path, data)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise ConversionError(
            f"{path}:{line}: not UTF-8 text (byte {data[e.start]:#04x} at offset {e.start})"
        ) from None
    if not text.strip():
        raise ConversionError(f"{path}:1: empty file")
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def _gunzip(path: Path, data: bytes) -> bytes:
    """Decompress all gzip members; a truncated or corrupt file is an error."""
    out: List[bytes] = []
    while data:
        decomp = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            out.append(decomp.decompress(data))
        except zlib.error as e:
            line = b"".join(out).count(b"\n") + 1
            raise ConversionError(f"{path}:{line}: corrupt gzip data ({e})") from None
        if not decomp.eof:
            line = b"".join(out).count(b"\n") + 1
            raise ConversionError(f"{path}:{line}: truncated .gz file (ends inside line {line})")
        data = decomp.unused_data.lstrip(b"\x00")
    return b"".join(out)


# ---------------------------------------------------------------------------
# IOB / CoNLL

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
    such markers gives one Doc per `n_sents` consecutive sentences. Tokens
    are kept as they are, each followed by a space.
    """
    path = Path(path)
    if scheme not in SCHEMES:
        raise ConversionError(f"{path}: unknown scheme {scheme!r} (expected one of {', '.join(SCHEMES)})")
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
        _set_entities(doc, [Span(doc, s, e, label=label) for s, e, label in entities], spans_key)
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


def _set_entities(doc: Doc, spans: List[Span], spans_key: str) -> None:
    doc.ents = spans
    doc.spans[spans_key] = list(doc.ents)


# ---------------------------------------------------------------------------
# PubTator

_TEXT_LINE_RE = re.compile(r"^([^|\t]+)\|([ta])\|(.*)$")
# A relation line names its type where a mention has its start offset:
# "227508<TAB>CID<TAB>D008750<TAB>D007022".
_RELATION_TYPE_RE = re.compile(r"^[A-Za-z_]\w*$")


class _PubTatorDoc:
    def __init__(self, pmid: str, title: str, lineno: int) -> None:
        self.pmid = pmid
        self.title = title
        self.abstract: Optional[str] = None
        self.lineno = lineno
        # (start, end, text, label, kb_id, composite, lineno)
        self.mentions: List[Tuple[int, int, str, str, str, bool, int]] = []
        self.relations: List[int] = []

    @property
    def text(self) -> str:
        return self.title if self.abstract is None else f"{self.title} {self.abstract}"


def _parse_pubtator(path: Path, lines: Sequence[str]) -> List[_PubTatorDoc]:
    docs: List[_PubTatorDoc] = []
    current: Optional[_PubTatorDoc] = None
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            current = None
            continue
        where = f"{path}:{lineno}"
        match = _TEXT_LINE_RE.match(line)
        if match:
            pmid, kind, text = match.groups()
            if kind == "t":
                if current is not None:
                    raise ConversionError(f"{where}: PMID {pmid}: title line inside document {current.pmid} (missing blank line?)")
                current = _PubTatorDoc(pmid, text, lineno)
                docs.append(current)
            elif current is None or current.pmid != pmid or current.abstract is not None or current.mentions:
                raise ConversionError(f"{where}: PMID {pmid}: abstract line not right after its title line")
            else:
                current.abstract = text
            continue
        fields = line.split("\t")
        if len(fields) < 4:
            raise ConversionError(f"{where}: unrecognized line (not a |t|, |a|, mention or relation line): {line[:60]!r}")
        pmid = fields[0]
        if current is None or current.pmid != pmid:
            expected = f"document {current.pmid}" if current else "no open document"
            raise ConversionError(f"{where}: PMID {pmid}: annotation line for another document ({expected})")
        if _RELATION_TYPE_RE.match(fields[1]):
            current.relations.append(lineno)
            continue
        if len(fields) < 5:
            raise ConversionError(f"{where}: PMID {pmid}: mention line needs start, end, text, type")
        try:
            start, end = int(fields[1]), int(fields[2])
        except ValueError:
            raise ConversionError(f"{where}: PMID {pmid}: offsets {fields[1]!r}, {fields[2]!r} are not integers") from None
        text = current.text
        if not 0 <= start < end <= len(text):
            raise ConversionError(
                f"{where}: PMID {pmid}: offsets {start}-{end} outside the text (length {len(text)})"
            )
        if text[start:end] != fields[3]:
            raise ConversionError(
                f"{where}: PMID {pmid}: mention text {fields[3][:40]!r} does not match the document "
                f"text {text[start:end][:40]!r} at {start}-{end}"
            )
        label = fields[4].strip()
        if not label:
            raise ConversionError(f"{where}: PMID {pmid}: mention has no type")
        kb_id = fields[5].strip() if len(fields) > 5 else ""
        composite = len(fields) > 6 and bool(fields[6].strip())
        current.mentions.append((start, end, fields[3], label, "" if kb_id == "-1" else kb_id, composite, lineno))
    return docs


def read_pubtator(
    path: PathLike, nlp: Language, *, spans_key: str = BC5CDR_SPANS_KEY
) -> Tuple[List[Doc], ConversionReport]:
    """Read a PubTator file: one Doc per abstract (see the module docstring
    for the alignment, composite and overlap policies)."""
    path = Path(path)
    parsed = _parse_pubtator(path, read_lines(path))
    if not parsed:
        raise ConversionError(f"{path}:1: empty file (no |t| title lines)")
    report = ConversionReport(source=str(path))
    docs = []
    for doc_index, pdoc in enumerate(parsed):
        doc = nlp.make_doc(pdoc.text)
        abstract_start = len(pdoc.title) + 1
        set_sentence_starts(doc, [t.i for t in doc if t.idx >= abstract_start][:1])
        for lineno in pdoc.relations:
            report.issues.append(
                Issue(RELATION, f"{path}:{lineno} PMID {pdoc.pmid}", "relation line ignored", doc_index=doc_index)
            )
        candidates: List[Tuple[Span, str]] = []
        for start, end, text, label, kb_id, composite, lineno in pdoc.mentions:
            where = f"{path}:{lineno} PMID {pdoc.pmid}"
            span = doc.char_span(start, end, label=label, kb_id=kb_id, alignment_mode="strict")
            if span is None:
                span = doc.char_span(start, end, label=label, kb_id=kb_id, alignment_mode="expand")
                if span is None or len(span) == 0:
                    report.issues.append(
                        Issue(DROPPED, where, f"{text!r} [{start}:{end}] covers no token", label, doc_index)
                    )
                    continue
                report.issues.append(
                    Issue(EXPANDED, where, f"{text!r} [{start}:{end}] -> {span.text!r}", label, doc_index)
                )
            if composite:
                report.issues.append(
                    Issue(COMPOSITE, where, f"{text!r} kept as one span ({kb_id})", label, doc_index)
                )
            candidates.append((span, where))
        kept: List[Span] = []
        for span, where in sorted(candidates, key=lambda c: (-len(c[0]), c[0].start)):
            clash = next((k for k in kept if k.start < span.end and span.start < k.end), None)
            if clash is None:
                kept.append(span)
                continue
            same = (clash.start, clash.end, clash.label_) == (span.start, span.end, span.label_)
            reason = (
                f"{span.text!r} duplicates another mention"
                if same
                else f"{span.text!r} ({span.label_}) overlaps {clash.text!r} ({clash.label_}), the longer or earlier mention kept"
            )
            report.issues.append(Issue(DROPPED, where, reason, span.label_, doc_index))
        kept.sort(key=lambda s: s.start)
        _set_entities(doc, kept, spans_key)
        # A sentence boundary never falls inside an entity.
        for span in kept:
            for token in span[1:]:
                token.is_sent_start = False
        doc.user_data["pmid"] = pdoc.pmid
        docs.append(doc)
    report.count_docs(docs, spans_key)
    return docs, report


# ---------------------------------------------------------------------------
# Registered spaCy readers


def _examples_from_pretokenized(nlp: Language, docs: Iterable[Doc]) -> Iterator[Example]:
    """Examples whose predicted docs keep the reference tokens and sentences.

    spacy.Corpus would re-tokenize the text (losing GENIA tokens) or, with
    gold_preproc, cut documents into sentences (losing document context).
    """
    for ref in docs:
        yield Example(gold_token_doc(nlp.vocab, ref), ref)


def _select(docs: List[Doc], dev_docs: int, part: str) -> List[Doc]:
    if part == "all" or dev_docs == 0:
        return docs
    return docs[:-dev_docs] if part == "train" else docs[-dev_docs:]


@spacy.registry.readers("spacy_bioner.IOB.v1")
def configure_iob_reader(
    path: str,
    scheme: str = "auto",
    n_sents: int = 1,
    spans_key: str = DEFAULT_SPANS_KEY,
) -> Callable[[Language], Iterable[Example]]:
    """Training examples from an IOB/CoNLL file (see `read_iob`)."""

    def read(nlp: Language) -> Iterator[Example]:
        docs, _ = read_iob(path, nlp.vocab, scheme=scheme, n_sents=n_sents, spans_key=spans_key)
        yield from _examples_from_pretokenized(nlp, docs)

    return read


@spacy.registry.readers("spacy_bioner.JNLPBA.v1")
def configure_jnlpba_reader(
    path: str,
    spans_key: str = JNLPBA_SPANS_KEY,
    dev_docs: int = 0,
    part: str = "all",
) -> Callable[[Language], Iterable[Example]]:
    """Training examples from a JNLPBA file, one per abstract.

    `part="train"` leaves out the last `dev_docs` abstracts and `part="dev"`
    keeps only them (the standard dev split: `dev_docs=200` on the training
    file).
    """
    if part not in ("all", "train", "dev"):
        raise ValueError(f"part must be 'all', 'train' or 'dev', got {part!r}")

    def read(nlp: Language) -> Iterator[Example]:
        docs, _ = read_jnlpba(path, nlp.vocab, spans_key=spans_key)
        yield from _examples_from_pretokenized(nlp, _select(docs, dev_docs, part))

    return read


@spacy.registry.readers("spacy_bioner.PubTator.v1")
def configure_pubtator_reader(
    path: str, spans_key: str = BC5CDR_SPANS_KEY
) -> Callable[[Language], Iterable[Example]]:
    """Training examples from a PubTator file, tokenized by the pipeline's
    tokenizer (use the BioTokenizer so that the mentions align)."""

    def read(nlp: Language) -> Iterator[Example]:
        docs, _ = read_pubtator(path, nlp, spans_key=spans_key)
        for ref in docs:
            yield Example(nlp.make_doc(ref.text), ref)

    return read


@spacy.registry.readers("spacy_bioner.MultiCorpus.v1")
def configure_multi_corpus(
    paths: Dict[str, str], limit: int = 0, max_length: int = 0, gold_tokens: bool = True
) -> Callable[[Language], Iterable[Example]]:
    """Chain several .spacy corpora (e.g. JNLPBA and BC5CDR) into one.

    paths: corpus name -> DocBin path. A dict, not a list, because config
        interpolation (`${paths.x}`) works on whole values, not inside lists.
    limit, max_length: the first N documents, and a length cap, per corpus.
    gold_tokens: keep the corpus's tokens and sentences (evaluation on gold
        tokens, as published scores are); False tokenizes the text with the
        pipeline's tokenizer, as it will see raw text after training.
    """
    missing = [f"{name}={path}" for name, path in paths.items() if not Path(path).exists()]
    if missing:
        raise ValueError(
            f"MultiCorpus: no such corpus: {', '.join(missing)}. "
            "Convert the corpora first (`python -m spacy_bioner convert`, or `spacy project run convert`)."
        )

    def read(nlp: Language) -> Iterator[Example]:
        for path in paths.values():
            docs = DocBin().from_disk(path).get_docs(nlp.vocab)
            if max_length:
                docs = (doc for doc in docs if len(doc) <= max_length)
            docs = islice(docs, limit or None)
            if gold_tokens:
                yield from _examples_from_pretokenized(nlp, docs)
            else:
                yield from (Example(nlp.make_doc(doc.text), doc) for doc in docs)

    return read
