"""IOB/CoNLL corpora (JNLPBA, BC5CDR in the BioBERT form) to spaCy Docs.

Columns: the first is the token and the last non-empty one the tag, or the
one `tag_column` names; where another column holds entity tags that differ
(conlleval's "token gold predicted", a second annotation layer) the reader
refuses to guess. Tags are IOB1, IOB2 or BIOES (BILUO letters accepted),
auto-detected per file; a file of bare "B"/"I"/"O" tags (BioBERT's copies of
NCBI-disease, BC2GM) is read with the `label` they all have. An
I-/E- tag that does not continue an entity of its label starts a new entity,
as conlleval reads it; in IOB2/BIOES files this is counted as "repaired" (in
IOB1 it is the normal way to start an entity). In BIOES, an entity that no
E-/L- tag closes is read to its last tag, and counted as repaired too.

A file without document markers (BC5CDR's IOB form) can be regrouped into
the documents its sentences were cut from (`documents`: their texts, e.g. the
PubTator corpus it was made from): one Doc per abstract, with its PMID and its
text's spacing. Chunks of `n_sents` sentences would run from one abstract
into the next, with a text of the tokens joined by spaces.

Every reader sets both `doc.ents` and `doc.spans[spans_key]` to the same
non-overlapping spans: by default "jnlpba" for JNLPBA, "bc5cdr" for BC5CDR
PubTator and "ents" for an IOB file (give "bc5cdr" for BC5CDR's IOB form, as
the project does): the `bio_ner` head with that key learns from them.

Written here, not with spaCy's `conll_ner_to_docs` (`spacy convert -c ner`),
which reads the BC5CDR IOB form alike: it splits documents only at
`-DOCSTART-`, not at JNLPBA's `###MEDLINE:` lines, cannot regroup sentences
into their abstracts, and converts ill-formed tags without a word, where
this reader reports each with its line.
"""

import re
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

from spacy.tokens import Doc, Span
from spacy.vocab import Vocab

from .report import REPAIRED, ConversionError, ConversionReport, Issue, read_all
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


def _is_tag(value: str) -> bool:
    return value == "O" or _TAG_RE.match(value) is not None


def _labelled(tag: str, label: Optional[str]) -> str:
    """A bare tag ("B", "I") with `label` added; any other tag as it is."""
    return f"{tag}-{label}" if label is not None and len(tag) == 1 and tag in "BIESLU" else tag


# CoNLL-2000's chunk types: a column of these tags (CoNLL-2003's third) is syntax, not entities.
CHUNK_LABELS = frozenset({"ADJP", "ADVP", "CONJP", "INTJ", "LST", "NP", "PP", "PRT", "SBAR", "UCP", "VP"})


def _check_tag_columns(path: Path, rows: List[Tuple[int, List[str]]], label: Optional[str]) -> None:
    """Refuse to take each line's last column for its tags where another column holds entity tags
    that differ from them ("token gold predicted", a second annotation layer, one line short of a
    column): which is the gold is for the user to say (--tag-column). Columns of other values
    (POS), of chunk tags (CoNLL-2003's "B-NP") or of "O" alone are ignored, whatever the lines'
    numbers of columns."""
    width = max((len(parts) for _, parts in rows), default=2)
    last = [_labelled(parts[-1], label) for _, parts in rows]
    for number in range(2, width):
        # The column on the lines where it is not the last one.
        pairs = [(_labelled(parts[number - 1], label), tag)
                 for (_, parts), tag in zip(rows, last) if len(parts) > number]
        if any(not _is_tag(other) for other, _ in pairs) or all(other == tag for other, tag in pairs):
            continue
        labels = {other[2:] for other, _ in pairs if other != "O"}
        if labels and not labels <= CHUNK_LABELS:
            raise ConversionError(
                f"{path}: column {number} holds entity tags that differ from those of the last column: say "
                f"which column holds the gold with --tag-column (or leave column {number} out)"
            )


def _parse_iob_lines(
    path: Path, lines: Sequence[str], tag_column: Optional[int] = None, label: Optional[str] = None
) -> List[Tuple[Optional[str], List[_Sentence]]]:
    """Group the lines into documents (pmid or None, sentences), the tags from column
    `tag_column` (counted from 1; the last non-empty column where None), bare tags given
    `label`. A `###MEDLINE:` document without sentences is left out with a warning: it would
    shift a split by documents (--dev-docs)."""
    docs: List[Tuple[Optional[str], List[_Sentence]]] = [(None, [])]
    markers: List[int] = [0]  # the line of each document's marker
    sent: _Sentence = []
    rows: List[Tuple[int, List[str]]] = []  # number and columns of each line of 3 or more, for _check_tag_columns
    bare = labelled = 0  # bare tags given `label`, entity tags with a label of their own
    for lineno, line in enumerate(lines, start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith(_DOC_MARKERS):
            if sent:
                docs[-1][1].append(sent)
                sent = []
            if stripped.startswith("###MEDLINE:"):
                docs.append((stripped[len("###MEDLINE:") :].strip(), []))
                markers.append(lineno)
            elif stripped.startswith("-DOCSTART-"):
                docs.append((None, []))
                markers.append(lineno)
            continue
        # Columns split on tabs, else on ASCII spaces: str.split() would also cut a token at a no-break space.
        parts = line.split("\t") if "\t" in line else [part for part in line.split(" ") if part]
        parts = [p.strip() for p in parts]
        while len(parts) > 1 and not parts[-1]:  # trailing empty columns ("tok\tB-X\t")
            parts.pop()
        if len(parts) < 2 or not parts[0] or not parts[-1]:
            missing = "no token" if len(parts) > 1 and not parts[0] else "no tag"
            raise ConversionError(f"{path}:{lineno}: {missing} (expected 'token<TAB>tag'): {line[:60]!r}")
        if tag_column is not None and len(parts) < tag_column:
            raise ConversionError(f"{path}:{lineno}: no column {tag_column} (--tag-column): {line[:60]!r}")
        given = parts[-1] if tag_column is None else parts[tag_column - 1]
        tag = _labelled(given, label)
        bare += tag != given
        labelled += tag == given != "O"
        if not _is_tag(tag):
            hint = (" or give the label of bare tags (--label)" if tag in ("B", "I", "E", "S", "L", "U") else
                    "; read from the last column: --tag-column names another" if tag_column is None and len(parts) > 2
                    else "")
            raise ConversionError(
                f"{path}:{lineno}: unknown tag {tag[:40]!r} (expected O or B-, I-, E-, S-, L-, U- and a label"
                f"{hint})"
            )
        sent.append((parts[0], tag, lineno))
        if len(parts) > 2:  # two columns: no other to hold tags
            rows.append((lineno, parts))
    if sent:
        docs[-1][1].append(sent)
    if tag_column is None:
        _check_tag_columns(path, rows, label)
    if label is not None and labelled and not bare:
        warnings.warn(f"{path}: no bare tag (B, I, ...) for --label {label!r}: every entity tag names its label")
    empty = [f"{pmid} (line {line})" for (pmid, sents), line in zip(docs, markers) if pmid is not None and not sents]
    if empty:
        warnings.warn(f"{path}: {len(empty)} ###MEDLINE: document{'s' * (len(empty) > 1)} without sentences left "
                      f"out: {', '.join(empty[:5])}{' and more' if len(empty) > 5 else ''}")
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
    opened = 0  # the line of the open entity's first tag
    started_by_repair = False  # its first tag was a dangling I-/E-, already counted

    def close(before: str) -> None:
        """In BIOES an entity ends with E- (or L-): one that does not is read to its last tag."""
        if current is not None and scheme == "bioes" and not started_by_repair:
            last = sent[current[1] - 1][1]
            repairs.append((opened, f"{sent[current[0]][1]} not closed by E-{current[2]} (next: {before}): "
                                    f"read as an entity ending at {last}"))

    for i, (_, tag, lineno) in enumerate(sent):
        if tag == "O":
            close(tag)
            current = None
            continue
        prefix, label = tag[0], tag[2:]
        continues = current is not None and current[2] == label
        if prefix in "IEL" and continues:
            current[1] = i + 1
        else:
            close(tag)
            started_by_repair = prefix in "IEL" and scheme != "iob1"
            if started_by_repair:
                prev = sent[i - 1][1] if i else "sentence start"
                repairs.append((lineno, f"{tag} after {prev} read as the start of an entity"))
            current = [i, i + 1, label]
            opened = lineno
            entities.append(current)  # type: ignore[arg-type]
        if prefix in "ESLU":
            current = None
    close("sentence end")
    return [(s + offset, e + offset, label) for s, e, label in entities], repairs


def _follow(text: str, pos: int, sent: _Sentence) -> Optional[Tuple[int, List[bool]]]:
    """Where `sent`'s words end when read in `text` from `pos` (whitespace
    between them skipped), and whether whitespace follows each word; None
    where they are not the text's next words."""
    spaces: List[bool] = []
    for word, _, _ in sent:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if not text.startswith(word, pos):
            return None
        pos += len(word)
        spaces.append(pos < len(text) and text[pos].isspace())
    return pos, spaces


def _regroup(
    path: Path, sents: List[_Sentence], documents: Sequence[Tuple[str, str]]
) -> List[Tuple[str, List[_Sentence], List[bool]]]:
    """(document id, its sentences, whether whitespace follows each token) of
    each document the sentences were cut from, in the file's order. Each
    sentence goes on where the previous one stopped in its document's text, or
    begins a document not read before; each document is read to its end."""
    by_first_char: Dict[str, List[int]] = defaultdict(list)
    for index, (_, text) in enumerate(documents):
        stripped = text.lstrip()
        if stripped:
            by_first_char[stripped[0]].append(index)
    groups: List[Tuple[str, List[_Sentence], List[bool]]] = []
    read = set()
    current, pos, alike = -1, 0, 0

    def rest() -> str:  # what the current document's text has not yet given
        return documents[current][1][pos:].strip() if current >= 0 else ""

    for sent in sents:
        where = f"{path}:{sent[0][2]}"
        words = " ".join(word for word, _, _ in sent[:8])
        followed = _follow(documents[current][1], pos, sent) if current >= 0 else None
        if followed is None and rest():
            also = f" (taken as the first of {alike} documents that begin alike)" if alike > 1 else ""
            raise ConversionError(
                f"{where}: the sentence {words!r}... does not go on with document {documents[current][0]}"
                f"{also}, whose text goes on with {rest()[:40]!r}"
            )
        if followed is None:
            begun = [(index, _follow(documents[index][1], 0, sent))
                     for index in by_first_char.get(sent[0][0][0], []) if index not in read]
            begun = [(index, found) for index, found in begun if found is not None]
            alike = len(begun)
            if begun:
                current, followed = begun[0]
                read.add(current)
                groups.append((documents[current][0], [], []))
            else:
                raise ConversionError(
                    f"{where}: the sentence {words!r}... begins none of the {len(documents)} documents "
                    "(each read once): are they the texts this file's sentences were cut from?"
                )
        pos, spaces = followed
        groups[-1][1].append(sent)
        groups[-1][2].extend(spaces)
    if rest():
        raise ConversionError(
            f"{path}: the file ends before document {documents[current][0]} does, whose text goes on "
            f"with {rest()[:40]!r}"
        )
    return groups


def check_iob_options(path: Union[str, Path], scheme: str, n_sents: int, documents: bool) -> None:
    """Refuse `read_iob`'s options where they cannot be read (ConversionError, naming `path`)."""
    if scheme not in IOB_SCHEMES:
        raise ConversionError(f"{path}: unknown scheme {scheme!r} (expected one of {', '.join(IOB_SCHEMES)})")
    if n_sents < 1:
        raise ConversionError(f"{path}: n_sents must be at least 1, got {n_sents}")
    if documents and n_sents > 1:
        raise ConversionError(f"{path}: give documents or n_sents, not both")


def read_iob(
    path: PathLike,
    vocab: Vocab,
    *,
    scheme: str = "auto",
    n_sents: int = 1,
    spans_key: str = DEFAULT_SPANS_KEY,
    documents: Optional[Iterable[Tuple[str, str]]] = None,
    tag_column: Optional[int] = None,
    label: Optional[str] = None,
) -> Tuple[List[Doc], ConversionReport]:
    """Read a `token<TAB>tag` (or whitespace-separated, tag last) file.

    Columns: the first is the token and the last non-empty one the tag, or
    column `tag_column` (counted from 1); the other columns (POS, chunk
    tags: CoNLL) and empty trailing columns (a trailing tab) are ignored, but
    where the tag is taken from the last column and another one holds entity
    tags that differ, that is an error (which one is the gold?). A line with one column has no tag: error. With `label`, bare tags
    ("B", "I", "O") are those of one entity type of that name.

    `-DOCSTART-` and `###MEDLINE:<pmid>` lines start a new document (one Doc
    per document, `doc.user_data["pmid"]` from the marker). A file without
    such markers, or with one `-DOCSTART-` heading it (as CoNLL files have),
    gives one Doc per `n_sents` consecutive sentences, or, with `documents`
    ((id, text) of the documents its sentences were cut from, in any
    order, though of documents that begin alike a sentence is taken for the
    first of them not read yet), one Doc per document in the file's order, with the id as
    `doc.user_data["pmid"]` and the text's spacing (a run of whitespace as
    one space). Tokens are kept as they are, each followed by a space where
    `documents` do not say otherwise. `iter_iob` gives the Docs one at a time.
    """
    return read_all(iter_iob, path, vocab, scheme=scheme, n_sents=n_sents, spans_key=spans_key,
                    documents=documents, tag_column=tag_column, label=label)


def iter_iob(
    path: PathLike,
    vocab: Vocab,
    *,
    report: ConversionReport,
    scheme: str = "auto",
    n_sents: int = 1,
    spans_key: str = DEFAULT_SPANS_KEY,
    documents: Optional[Iterable[Tuple[str, str]]] = None,
    tag_column: Optional[int] = None,
    label: Optional[str] = None,
) -> Iterator[Doc]:
    """`read_iob`'s documents one at a time (the file is read whole first: the scheme is told from
    all its tags), and what was repaired in `report`."""
    path = Path(path)
    check_iob_options(path, scheme, n_sents, documents is not None)
    if tag_column is not None and tag_column < 2:
        raise ConversionError(f"{path}: the tag column is 2 or more (the first holds the tokens), got {tag_column}")
    if label is not None and not label.strip():
        raise ConversionError(f"{path}: an empty label for bare tags (--label)")
    groups = _parse_iob_lines(path, read_lines(path), tag_column, label)
    if not groups:
        raise ConversionError(f"{path}:1: empty file (no tokens)")
    unmarked = len(groups) == 1 and groups[0][0] is None
    if not unmarked and (documents is not None or n_sents > 1):
        grouping = "regrouping by documents" if documents is not None else "grouping sentences by n_sents"
        raise ConversionError(f"{path}: the file marks its own documents (-DOCSTART-, ###MEDLINE:); "
                              f"{grouping} is for files without markers")
    spacing: Optional[List[List[bool]]] = None  # whether whitespace follows each token, per document
    if documents is not None:
        documents = list(documents)
        regrouped = _regroup(path, groups[0][1], documents)
        groups = [(pmid, sents) for pmid, sents, _ in regrouped]
        read = {pmid for pmid, _ in groups}
        unread = [doc_id for doc_id, _ in documents if doc_id not in read]
        if unread:
            warnings.warn(f"{path}: no sentence of {len(unread)} of the {len(documents)} documents is in the file "
                          f"(first: {unread[0]}), so they are left out: are they the texts its sentences were cut from?")
        spacing = [spaces for _, _, spaces in regrouped]
    elif unmarked:
        sents = groups[0][1]
        groups = [(None, sents[i : i + n_sents]) for i in range(0, len(sents), n_sents)]
    if scheme == "auto":
        scheme = detect_scheme(s for _, sents in groups for s in sents)
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
        spaces = spacing[doc_index] if spacing else [True] * len(words)
        doc = Doc(vocab, words=words, spaces=spaces, sent_starts=sent_starts)
        set_entities(doc, [Span(doc, s, e, label=label) for s, e, label in entities], spans_key)
        if pmid is not None:
            doc.user_data["pmid"] = pmid
        yield doc
    if report.repaired:
        first = report.repaired[0]
        warnings.warn(f"{path}: {len(report.repaired)} entities broke the {scheme.upper()} scheme and were repaired "
                      f"(first at {first.where}: {first.reason})")


def read_jnlpba(
    path: PathLike, vocab: Vocab, *, spans_key: str = JNLPBA_SPANS_KEY
) -> Tuple[List[Doc], ConversionReport]:
    """Read a JNLPBA `Genia4*2.iob2` file: one Doc per `###MEDLINE:` abstract.

    ConversionError where a sentence stands outside the abstracts (a file
    without markers, as Genia4ERtask1 is): a dev split counts abstracts.
    `iter_jnlpba` gives them one at a time.
    """
    return read_all(iter_jnlpba, path, vocab, spans_key=spans_key)


def iter_jnlpba(
    path: PathLike, vocab: Vocab, *, report: ConversionReport, spans_key: str = JNLPBA_SPANS_KEY
) -> Iterator[Doc]:
    """`read_jnlpba`'s documents one at a time, and what was repaired in `report`."""
    docs = iter_iob(path, vocab, report=report, scheme="iob2", spans_key=spans_key)
    for doc_index, doc in enumerate(docs):
        if doc.user_data.get("pmid") is None:
            if doc_index == 0:
                following = next(docs, None)
                where = ("has no ###MEDLINE: markers" if following is None or following.user_data.get("pmid") is None
                         else "has sentences before its first ###MEDLINE:")
            else:
                where = "has sentences outside its ###MEDLINE: abstracts (after a -DOCSTART- line)"
            raise ConversionError(f"{path}: {where}; a JNLPBA file (Genia4ERtask2.iob2, Genia4EReval2.iob2) marks "
                                  "each abstract with one. Convert a file of sentences with `convert iob` instead")
        yield doc


def set_entities(doc: Doc, spans: List[Span], spans_key: str) -> None:
    """The corpus annotation contract: doc.ents and doc.spans[spans_key] agree."""
    doc.ents = spans
    doc.spans[spans_key] = list(doc.ents)
