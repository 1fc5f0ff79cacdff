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

A file is read twice: through first, each line checked and the scheme told
from all its tags, then a document at a time, so that nothing of it is held
but the document being converted (a pipe, which gives its lines once, is
held whole).

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

import os
import re
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, NamedTuple, Optional, Sequence, Set, Tuple, Union

from spacy.tokens import Doc, Span
from spacy.util import minibatch
from spacy.vocab import Vocab

from .report import ID_GIVEN_TWICE, REPAIRED, ConversionError, ConversionReport, Issue, read_all, warn_of_repeats
from .text import PathLike, iter_lines

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


class _Marker(NamedTuple):
    """A document marker line: the PMID of `###MEDLINE:`, None for `-DOCSTART-`."""

    pmid: Optional[str]
    line: int


class _FileChecks:
    """What is checked of a file's lines as a whole, gathered line by line (`add`) and told at the
    end (`check`).

    The tag columns: where a column other than the last holds entity tags that differ from the last
    column's, which is the gold is for the user to say (--tag-column). Columns of other values (POS),
    of chunk tags (CoNLL-2003's "B-NP") or of "O" alone are ignored, whatever the lines' numbers of
    columns. And bare tags: with `label`, a file whose entity tags all name their label has none."""

    def __init__(self, tag_column: Optional[int], label: Optional[str]) -> None:
        self.tag_column = tag_column
        self.label = label
        self.other_values: Set[int] = set()  # columns that hold a value that is no tag
        self.differing: Set[int] = set()  # columns whose tags differ from the last column's on some line
        self.labels: Dict[int, Set[str]] = defaultdict(set)  # the entity labels of each column's tags
        self.bare = self.labelled = 0  # bare tags given `label`, entity tags with a label of their own

    def add(self, parts: List[str], given: str, tag: str) -> None:
        """A line's columns, its tag as given and as read."""
        self.bare += tag != given
        self.labelled += tag == given != "O"
        if self.tag_column is not None or len(parts) < 3:  # two columns: no other to hold tags
            return
        for number in range(2, len(parts)):  # the columns that are not the line's last
            if number in self.other_values:
                continue
            other = _labelled(parts[number - 1], self.label)
            if not _is_tag(other):
                self.other_values.add(number)
                continue
            if other != tag:
                self.differing.add(number)
            if other != "O":
                self.labels[number].add(other[2:])

    def check(self, path: Path) -> None:
        """Refuse a guess at the tag column (ConversionError); warn of --label without bare tags."""
        for number in sorted(self.differing - self.other_values):
            labels = self.labels.get(number)
            if labels and not labels <= CHUNK_LABELS:
                raise ConversionError(
                    f"{path}: column {number} holds entity tags that differ from those of the last column: say "
                    f"which column holds the gold with --tag-column (or leave column {number} out)"
                )
        if self.label is not None and self.labelled and not self.bare:
            warnings.warn(f"{path}: no bare tag (B, I, ...) for --label {self.label!r}: every entity tag names "
                          "its label")


def _iob_items(
    path: Path, lines: Iterable[str], tag_column: Optional[int] = None, label: Optional[str] = None,
    checks: Optional[_FileChecks] = None,
) -> Iterator[Union[_Marker, _Sentence]]:
    """The file's document markers and sentences in order, each line checked, the tags from column
    `tag_column` (counted from 1; the last non-empty column where None), bare tags given `label`.
    `checks` gathers what is checked of the lines as a whole."""
    sent: _Sentence = []
    for lineno, line in enumerate(lines, start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith(_DOC_MARKERS):
            if sent:
                yield sent
                sent = []
            if stripped.startswith("###MEDLINE:"):
                yield _Marker(stripped[len("###MEDLINE:") :].strip(), lineno)
            elif stripped.startswith("-DOCSTART-"):
                yield _Marker(None, lineno)
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
        if not _is_tag(tag):
            hint = (" or give the label of bare tags (--label)" if tag in ("B", "I", "E", "S", "L", "U") else
                    "; read from the last column: --tag-column names another" if tag_column is None and len(parts) > 2
                    else "")
            raise ConversionError(
                f"{path}:{lineno}: unknown tag {tag[:40]!r} (expected O or B-, I-, E-, S-, L-, U- and a label"
                f"{hint})"
            )
        sent.append((parts[0], tag, lineno))
        if checks is not None:
            checks.add(parts, given, tag)
    if sent:
        yield sent


class _IobLayout(NamedTuple):
    """What a first read of an IOB file tells: its scheme, and whether it marks its documents."""

    scheme: str
    unmarked: bool  # no document markers, or one -DOCSTART- heading the file


def _scan(path: Path, lines: Iterable[str], tag_column: Optional[int], label: Optional[str]) -> _IobLayout:
    """Read the file through, checking every line (ConversionError) and warning of what is read
    otherwise than written: a `###MEDLINE:` document without sentences is left out (it would shift
    a split by documents, --dev-docs). Nothing of the file is held."""
    checks = _FileChecks(tag_column, label)
    evidence = _SchemeEvidence()
    groups = 0  # documents with sentences (the text before the first marker one too)
    unmarked = False  # whether the first of them has no marker or a -DOCSTART- one
    current: Optional[_Marker] = None
    filled = False  # whether the current document has sentences
    empty: List[str] = []  # the first ###MEDLINE: documents without sentences
    n_empty = 0

    def close() -> None:
        nonlocal n_empty
        if current is not None and current.pmid is not None and not filled:
            n_empty += 1
            if len(empty) < 5:
                empty.append(f"{current.pmid} (line {current.line})")

    for item in _iob_items(path, lines, tag_column, label, checks):
        if isinstance(item, _Marker):
            close()
            current, filled = item, False
            continue
        if not filled:
            if not groups:
                unmarked = current is None or current.pmid is None
            groups += 1
            filled = True
        evidence.add(item)
    close()
    checks.check(path)
    if n_empty:
        warnings.warn(f"{path}: {n_empty} ###MEDLINE: document{'s' * (n_empty > 1)} without sentences left "
                      f"out: {', '.join(empty)}{' and more' if n_empty > 5 else ''}")
    if not groups:
        raise ConversionError(f"{path}:1: empty file (no tokens)")
    return _IobLayout(evidence.scheme, unmarked and groups == 1)


def _marked_documents(items: Iterable[Union[_Marker, _Sentence]]) -> Iterator[Tuple[Optional[str], List[_Sentence]]]:
    """(pmid or None, sentences) of each document with sentences, one at a time."""
    pmid: Optional[str] = None
    sents: List[_Sentence] = []
    for item in items:
        if isinstance(item, _Marker):
            if sents:
                yield pmid, sents
            pmid, sents = item.pmid, []
        else:
            sents.append(item)
    if sents:
        yield pmid, sents


def _sentences(items: Iterable[Union[_Marker, _Sentence]]) -> Iterator[_Sentence]:
    """The sentences among `_iob_items`, the markers left out (a file read as sentences)."""
    return (item for item in items if not isinstance(item, _Marker))


def _can_read_again(path: Path) -> bool:
    """Whether `path` is a file that a second open reads from its start: not a pipe, nor a /dev/ path
    (/dev/stdin, /dev/fd/N), which may share its position with the shell's descriptor. Never raises:
    an unreadable path is `iter_lines`' to report."""
    return os.path.isfile(path) and not path.absolute().as_posix().startswith("/dev/")


def _holding(lines: Iterable[str], held: List[str]) -> Iterator[str]:
    """`lines`, each added to `held` as it is given."""
    for line in lines:
        held.append(line)
        yield line


def detect_scheme(sentences: Iterable[_Sentence]) -> str:
    """Guess the tagging scheme: "bioes", "iob1" or "iob2".

    BIOES if any E-/S-/L-/U- tag occurs. IOB1 if no B- tag follows O or a
    different label (in IOB1, B- only separates two adjacent entities of the
    same label) and some I- tag starts an entity. Otherwise IOB2.
    """
    evidence = _SchemeEvidence()
    for sent in sentences:
        evidence.add(sent)
        if evidence.bioes:
            break
    return evidence.scheme


class _SchemeEvidence:
    """What `detect_scheme` reads of the sentences, gathered one sentence at a time."""

    def __init__(self) -> None:
        self.bioes = self.b_after_other = self.i_starts = False

    def add(self, sent: _Sentence) -> None:
        if self.bioes:
            return
        prev = "O"
        for _, tag, _ in sent:
            if tag[0] in "ESLU":
                self.bioes = True
                return
            if tag.startswith("B-") and prev[2:] != tag[2:]:
                self.b_after_other = True
            if tag.startswith("I-") and prev[2:] != tag[2:]:
                self.i_starts = True
            prev = tag

    @property
    def scheme(self) -> str:
        return "bioes" if self.bioes else "iob1" if self.i_starts and not self.b_after_other else "iob2"


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
    path: Path, sents: Iterable[_Sentence], documents: Sequence[Tuple[str, str]]
) -> Iterator[Tuple[str, List[_Sentence], List[bool]]]:
    """(document id, its sentences, whether whitespace follows each token) of
    each document the sentences were cut from, in the file's order, one at a time. Each
    sentence goes on where the previous one stopped in its document's text, or
    begins a document not read before; each document is read to its end."""
    by_first_char: Dict[str, List[int]] = defaultdict(list)
    for index, (_, text) in enumerate(documents):
        stripped = text.lstrip()
        if stripped:
            by_first_char[stripped[0]].append(index)
    doc_id: Optional[str] = None  # the document being read, and its sentences and spacing so far
    doc_sents: List[_Sentence] = []
    doc_spaces: List[bool] = []
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
            if not begun:
                raise ConversionError(
                    f"{where}: the sentence {words!r}... begins none of the {len(documents)} documents "
                    "(each read once): are they the texts this file's sentences were cut from?"
                )
            if doc_id is not None:
                yield doc_id, doc_sents, doc_spaces
            current, followed = begun[0]
            read.add(current)
            doc_id, doc_sents, doc_spaces = documents[current][0], [], []
        pos, spaces = followed
        doc_sents.append(sent)
        doc_spaces.extend(spaces)
    if rest():
        raise ConversionError(
            f"{path}: the file ends before document {documents[current][0]} does, whose text goes on "
            f"with {rest()[:40]!r}"
        )
    if doc_id is not None:
        yield doc_id, doc_sents, doc_spaces


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
    """`read_iob`'s documents one at a time, and what was repaired in `report`. The file is read
    twice, nothing of it held: through first for its scheme (told from all its tags) and its
    checks, then a document at a time; a pipe, which gives its lines once, is held."""
    path = Path(path)
    check_iob_options(path, scheme, n_sents, documents is not None)
    if tag_column is not None and tag_column < 2:
        raise ConversionError(f"{path}: the tag column is 2 or more (the first holds the tokens), got {tag_column}")
    if label is not None and not label.strip():
        raise ConversionError(f"{path}: an empty label for bare tags (--label)")
    held: List[str] = []  # a pipe's lines, which it gives once
    read_again = _can_read_again(path)
    lines = iter_lines(path)
    layout = _scan(path, lines if read_again else _holding(lines, held), tag_column, label)
    if not layout.unmarked and (documents is not None or n_sents > 1):
        grouping = "regrouping by documents" if documents is not None else "grouping sentences by n_sents"
        raise ConversionError(f"{path}: the file marks its own documents (-DOCSTART-, ###MEDLINE:); "
                              f"{grouping} is for files without markers")
    if scheme == "auto":
        scheme = layout.scheme
    items = _iob_items(path, iter_lines(path) if read_again else held, tag_column, label)
    groups: Iterator[Tuple[Optional[str], List[_Sentence], Optional[List[bool]]]]
    if documents is not None:
        documents = list(documents)
        groups = _regroup(path, _sentences(items), documents)
    elif layout.unmarked:
        groups = ((None, sents, None) for sents in minibatch(_sentences(items), n_sents))
    else:
        groups = ((pmid, sents, None) for pmid, sents in _marked_documents(items))
    read: Set[Optional[str]] = set()  # the ids of the --documents read
    marked: Dict[str, int] = {}  # the documents of each ###MEDLINE: id, by their number
    repeated: List[str] = []
    for doc_index, (pmid, sents, spacing) in enumerate(groups):
        if pmid is not None and documents is None:
            if pmid in marked:
                repeated.append(f"{pmid} of document {doc_index + 1}, as of document {marked[pmid]}")
            marked.setdefault(pmid, doc_index + 1)
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
        doc = Doc(vocab, words=words, spaces=spacing or [True] * len(words), sent_starts=sent_starts)
        set_entities(doc, [Span(doc, s, e, label=label) for s, e, label in entities], spans_key)
        if pmid is not None:
            doc.user_data["pmid"] = pmid
        if documents is not None:
            read.add(pmid)
        yield doc
    warn_of_repeats(str(path), "document", repeated, "the id", ID_GIVEN_TWICE)
    if documents is not None:
        unread = [doc_id for doc_id, _ in documents if doc_id not in read]
        if unread:
            warnings.warn(f"{path}: no sentence of {len(unread)} of the {len(documents)} documents is in the file "
                          f"(first: {unread[0]}), so they are left out: are they the texts its sentences were cut from?")
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
