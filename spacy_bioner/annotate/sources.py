"""Input readers: PubMed/MEDLINE XML, JSON Lines, a folder of `.txt` files, Parquet.

Every reader turns one input into a stream of items, in input order: a
`Record` (an id and a text to annotate), a `Reject` (a record that cannot be
annotated, with where it is and why) or a `Deleted` PMID (a `DeleteCitation`
of a PubMed update file). Nothing is silently dropped: every record of the
input is either a `Record` or a `Reject`, so the counts of a run add up.

PubMed XML
----------
A PubMed file is a flat `PubmedArticleSet` of `PubmedArticle`,
`PubmedBookArticle` and `DeleteCitation` elements. The reader frames the
decompressed byte stream at the opening tag of each of these (a tag inside a
comment or a CDATA section is text) and parses each record on its own with
`lxml.etree.fromstring` (the standard library's ElementTree when lxml is
missing). Memory is one record at a time, never the
file. Why not `lxml.etree.iterparse` over the whole file: libxml2 stops at the
first syntax error, so one malformed record would lose every record after it;
framed records isolate the error to the record that has it, which is then
rejected with its PMID. Why not `pubmed-parser` (on PyPI, 0.5.1):
`parse_medline_xml` does stream with `iterparse`, but it only opens gzip files,
stops at the first malformed record, keeps only one level of inline markup
(`stringify_children`), does not report `DeleteCitation` PMIDs, and pulls in
`requests`, `unidecode` and `six`.

Document text (the PubTator convention of BC5CDR): `ArticleTitle + " " +
abstract`. A structured abstract's `AbstractText` sections are joined in
order with one space, each after its label as PubTator writes them
("BACKGROUND: ... METHODS: ..."), so the heads read the text as they were
trained. A record without an `Abstract` takes its first English
`OtherAbstract` (a plain-language summary, a publisher's abstract). Inline
markup (`<i>`, `<sup>`, `<b>`, MathML) is reduced to its text. Whitespace
inside the title and abstract is kept as NLM wrote it, so the text is
reproducible from the XML. A record without an abstract is
annotated on its title alone; a record without a title and abstract (one
with only a `VernacularTitle`) is rejected as `empty_text`. A record's id is
its own `MedlineCitation/PMID` (`BookDocument/PMID`); a record without one is
rejected as `missing_id`, never annotated under a PMID it cites.

Where a record is (its `record`, with the file its `source`) is `record N,
PMID P`: N counts the file's top-level records (`PubmedArticle`,
`PubmedBookArticle`, `DeleteCitation`) from 1, so that (source, record) is
unique even in a file that holds the same PMID twice (an update file may hold
two versions of one citation); P is the record's PMID, or, for a record that
does not parse, the PMID that opens its MedlineCitation or BookDocument where
it is found (never one it cites). Without it, it is `record N`.

Errors
------
An input that cannot hold the records it is given as (an `.xml` whose root
element is no `PubmedArticleSet`, such as an error page saved under that
name; a Parquet file without the id and text columns, or whose text column
holds no strings; a JSON Lines file none of whose first 100 records has the
keys; a path that is not UTF-8) is refused before the run starts
(`expand_inputs`): the mistake is in the invocation, not in a record.

What is wrong with a file's content (bad XML or JSON, a truncated or
corrupt `.gz` or `.xz`, a PubMed file that ends before its
`</PubmedArticleSet>`, a corrupt Parquet file) is a reject: it would be the same on
every run. An error of the system reading it (permission denied, an I/O
error, a file gone from a network share) is an `AnnotateError` naming the
file: it may pass, so the run stops before the shard is finished and a rerun
reads the file again.
"""

import codecs
import json
import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

from ..compressed import DECOMPRESSION_ERRORS, describe_error, is_system_error, open_bytes
from .errors import AnnotateError

try:
    from lxml import etree as _etree

    _XMLError = _etree.XMLSyntaxError
except ImportError:  # pragma: no cover - lxml is an install requirement of the extra
    import xml.etree.ElementTree as _etree  # type: ignore[no-redef]

    _XMLError = _etree.ParseError  # type: ignore[misc]

READ_CHUNK = 1 << 20
XML_SUFFIXES = (".xml", ".xml.gz", ".xml.xz")
JSONL_SUFFIXES = (".jsonl", ".jsonl.gz", ".jsonl.xz", ".ndjson", ".ndjson.gz", ".ndjson.xz")
PARQUET_SUFFIXES = (".parquet",)
INPUT_TYPES = ".xml[.gz|.xz], .jsonl or .ndjson[.gz|.xz], .parquet or a folder of .txt files"
# A JSON Lines input whose first records all lack the id or text key is refused before the run
# (a wrong --text-key); a record without them further on is a reject.
JSON_KEY_SAMPLE = 100

# Reject kinds: the first field of every reject, counted in the summary.
MALFORMED_XML = "malformed_xml"
BAD_JSON = "bad_json"
UNDECODABLE = "undecodable_bytes"
TRUNCATED = "truncated_input"
UNREADABLE = "unreadable_file"
EMPTY_TEXT = "empty_text"
MISSING_TEXT = "missing_text"
MISSING_ID = "missing_id"
TOO_LONG = "too_long"
# Rejected, so that every record is accounted for, but not bad input, so not
# counted against --max-rejects: well-formed records with nothing to annotate (a
# PubMed record with a title in another language only), and those longer than
# the user's own limit (--max-doc-chars, or the pipeline's nlp.max_length).
NOT_BAD_INPUT = frozenset({EMPTY_TEXT, TOO_LONG})


@dataclass(frozen=True)
class Record:
    """A document to annotate. `record` locates it in its source (PubMed record number and PMID,
    line, file name, row): (source, record) is unique, an id alone may repeat."""

    doc_id: str
    text: str
    source: str
    record: str


@dataclass(frozen=True)
class Reject:
    """An input record that cannot be annotated, where it is and why."""

    source: str
    record: str
    kind: str
    reason: str
    doc_id: str = ""


@dataclass(frozen=True)
class Deleted:
    """A PMID listed in a `DeleteCitation` of a PubMed update file."""

    source: str
    pmid: str


Item = Union[Record, Reject, Deleted]


class _Skipped:
    """In place of a record `read_items` was told to skip (one of a finished shard), unparsed:
    it keeps the positions of the items after it."""

    def __repr__(self) -> str:
        return "SKIPPED"


SKIPPED = _Skipped()
Skip = Optional[Callable[[int], bool]]  # whether the item at a position (from 0) is skipped


# The kinds of input whose records are read by --id-key and --text-key.
KEYED_KINDS = ("jsonl", "parquet")


def input_kind(path: Path) -> str:
    """'pubmed', 'jsonl', 'txt' (a folder) or 'parquet'; ValueError for anything else."""
    name = path.name.lower()
    if path.is_dir():
        return "txt"
    if name.endswith(XML_SUFFIXES):
        return "pubmed"
    if name.endswith(JSONL_SUFFIXES):
        return "jsonl"
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if name.endswith(".txt"):
        raise ValueError(f"{path}: a .txt file is read as part of a folder input; give its folder "
                         f"({path.parent}), which reads every .txt file in it")
    raise ValueError(f"{path}: unknown input type (expected {INPUT_TYPES})")


def _input_suffix(name: str) -> str:
    """The ending of a file name that makes it an input of its own (`.xml.gz`, `.jsonl`, `.parquet`,
    ... as spelt in the name, in any case), or '' for a file annotate does not read as one."""
    lower = name.lower()
    for suffix in sorted(XML_SUFFIXES + JSONL_SUFFIXES + PARQUET_SUFFIXES, key=len, reverse=True):
        if lower.endswith(suffix) and len(name) > len(suffix):
            return name[-len(suffix):]
    return ""


def read_items(
    path: Path, id_key: str = "id", text_key: str = "text", max_chars: int = 0, skip: Skip = None,
    limit_name: str = "",
) -> Iterator[Union[Item, _Skipped]]:
    """The items of one input, in order. Records longer than `max_chars` (if > 0) are rejected,
    the reason naming where the limit comes from, `limit_name` (e.g. "--max-doc-chars"), if given.

    Each item's `source` is `str(path)`: a run passes the resolved path. An
    error of the system reading the input raises AnnotateError (see the module
    docstring). Where `skip(position)` is true, a PubMed, JSON Lines or text
    file record is `SKIPPED` instead, read but not parsed (a resumed run's
    finished shards: parsing is most of reading); a PubMed DeleteCitation is
    parsed all the same, as it may hold several PMIDs, each an item.
    """
    kind = input_kind(path)
    if kind == "pubmed":
        items = read_pubmed(path, skip)
    elif kind == "jsonl":
        items = read_jsonl(path, id_key, text_key, skip)
    elif kind == "txt":
        items = read_txt_folder(path, skip)
    else:
        items = read_parquet(path, id_key, text_key)
    for item in items:
        if max_chars > 0 and isinstance(item, Record) and len(item.text) > max_chars:
            where = f" ({limit_name})" if limit_name else ""
            yield Reject(item.source, item.record, TOO_LONG,
                         f"{len(item.text)} characters, longer than the limit of {max_chars} characters{where}",
                         item.doc_id)
        else:
            yield item


def count_records(path: Path, id_key: str = "id", text_key: str = "text") -> Optional[int]:
    """A cheap count of an input's records (for a progress bar's total), or None if unknown.

    Deletions are not records; a compressed file is decompressed once more for this.
    """
    try:
        kind = input_kind(path)
        if kind == "txt":
            return len(txt_files(path)[0])
        if kind == "parquet":
            import pyarrow.parquet as pq

            return pq.ParquetFile(str(path)).metadata.num_rows
        with open_bytes(path) as f:
            if kind == "jsonl":
                return sum(1 for _, line in _jsonl_lines(f) if line is None or line.strip())
            frames = articles = 0
            declaration = _declaration(path)
            try:
                for frame in _framed_records(f):
                    frames += 1
                    articles += _is_record(frame, declaration)
            except DECOMPRESSION_ERRORS as e:  # SetNotEnded too
                # The records before the cut, its last one if whole, and one reject for the rest (`read_pubmed`).
                last = _whole_record(getattr(e, "partial", b""), declaration)
                return articles + (last is not None and _is_record(last, declaration)) + 1
            # A file without any PubMed record is one reject, unless it is an empty set (`read_pubmed`).
            return articles if frames or _is_empty_set(path) else 1
    except (OSError, ValueError, *DECOMPRESSION_ERRORS):
        return None


def _is_record(frame: bytes, declaration: bytes) -> bool:
    """Whether a framed PubMed record is read as a record (annotated or rejected), not as
    deletions: all but a DeleteCitation that parses (`_pubmed_record`); one too long, a reject."""
    if isinstance(frame, _TooLong) or not frame.startswith(b"<DeleteCitation"):
        return True
    try:
        _etree.fromstring(declaration + frame)
    except _XMLError:
        return True
    return False


def _read_error(path: Path, error: Exception) -> str:
    """The reject kind of an error raised while reading a (possibly compressed) file.

    AnnotateError instead for an error of the system (`is_system_error`).
    """
    if is_system_error(error):
        raise AnnotateError(
            f"{path}: cannot be read: {error}; the shards written so far are kept: "
            "once it can be read, rerun with --resume to annotate the rest"
        ) from None
    return TRUNCATED if isinstance(error, EOFError) else UNREADABLE


# ---------------------------------------------------------------- PubMed XML

# A comment or CDATA section is skipped whole: a tag inside one is text, not
# markup. The patterns find the openers of records and of those sections (the
# sections' ends are found by `_Sections`). Each starts with its "<" outside
# the alternation, which lets the regex engine skip to the next "<" (several
# times faster).
_RECORD_TAG = re.compile(rb"<(?:(PubmedArticle|PubmedBookArticle|DeleteCitation)(?=[\s>])|!--|!\[CDATA\[)")
_SET_END_AT_END = re.compile(rb"</(?:PubmedArticleSet|PubmedBookArticleSet)\s*>\s*$")
_SET_END = re.compile(rb"<(?:(/(?:PubmedArticleSet|PubmedBookArticleSet)\s*>)|!--|!\[CDATA\[)")
# The longest tag the scan looks for, with the character after it: the tail of
# a chunk that may hold the start of one cut by the chunk's end.
_TAG_TAIL = 32
# A comment or CDATA section whose end is not found within this many bytes, or
# before the end of the file, opens none: its opener is a stray one in a
# malformed record (which is rejected), and the records after it are framed.
MAX_SKIPPED = 1 << 24
_SKIPPED_END = {b"<!--": b"-->", b"<![CDATA[": b"]]>"}
# A record's own PMID, in bytes that do not parse: the DTD makes it the first element of its
# MedlineCitation or BookDocument. Any other <PMID> is one the record cites (CommentsCorrections).
# (An attribute holds no "<": `[^<>]`, so that a tag cut short is not read to the end of the bytes at each.)
_OWN_PMID = re.compile(rb"<(?:MedlineCitation|BookDocument)\b[^<>]*>\s*<PMID\b[^<>]*>\s*(\d+)\s*</PMID>")


class _Sections:
    """Where comment and CDATA sections end, in bytes that may grow at their end, in linear time:
    a search for a section's end that fails is remembered (no end from its start to the end of the
    bytes then), and a later section's search goes on from there, not over the same bytes again
    (each of a record's stray openers searched to the end of the file: quadratic time)."""

    def __init__(self) -> None:
        self._searched: Dict[bytes, Tuple[int, int]] = {}  # closer -> (from, to): none in bytes[from:to]

    def end(self, data: bytes, start: int, opener: bytes) -> int:
        """Where the section opened by `opener` at `start` ends (after its closer), or -1 if not in `data`."""
        closer = _SKIPPED_END[opener]
        begin = start + len(opener)
        known = self._searched.get(closer)
        if known is not None and known[0] <= begin:
            begin = max(begin, known[1] - len(closer) + 1)
        end = data.find(closer, begin)
        if end < 0:
            self._searched[closer] = (known[0] if known is not None and known[0] <= start + len(opener)
                                      else start + len(opener), len(data))
            return -1
        return end + len(closer)

    def cut(self, n: int) -> None:
        """The first `n` bytes were dropped."""
        self._searched = {closer: (start - n, end - n) for closer, (start, end) in self._searched.items()}


# A record longer than this many bytes is a too_long reject, read past and not kept: a .gz of a few MB
# may hold a record of GBs (one title), which keeping whole would take.
MAX_RECORD_BYTES = 1 << 28
_TOO_LONG_HEAD = 1 << 16


class _TooLong(bytes):
    """The first bytes of a record longer than MAX_RECORD_BYTES (its own PMID among them), in place of it."""


class SetNotEnded(EOFError):
    """A PubMed file that ends before the `</PubmedArticleSet>` of its last record: cut short
    (a plain `.xml` cut at a record's end reads as well-formed records). `partial` holds the
    bytes of its last record, which may be whole."""

    partial = b""


def _framed_records(f: IO[bytes]) -> Iterator[bytes]:
    """The bytes of each top-level record of a PubmedArticleSet, the header dropped.

    A frame ends at the next record or at `</PubmedArticleSet>`, so that what
    follows a set's end (the header of a second, concatenated set) is dropped
    too. Tags inside comments and CDATA sections do not count. A read error
    (a truncated `.gz`) propagates after the complete records before it; the
    partial record is attached to the exception as `partial`. A file whose
    last record is not followed by the end of its set raises `SetNotEnded`
    in place of that record, its bytes as `partial`. A comment or CDATA
    opener whose end never comes (`MAX_SKIPPED`) is text: its record is
    framed alone (one whose end some later comment gives runs to that end,
    as an XML parser reads it).
    """
    buffer = b""
    scan = 0  # where the scan resumes in buffer
    sections = _Sections()
    begin: Optional[int] = None  # where the current record starts in buffer
    searched: Optional[int] = None  # bytes after scan searched for the end of the comment or CDATA opened there
    ended = False
    while not ended:
        try:
            # read1: on a truncated .gz, read(n) drops all it decompressed in the call.
            chunk = f.read1(READ_CHUNK)  # type: ignore[attr-defined]
        except (OSError, *DECOMPRESSION_ERRORS) as e:
            e.partial = buffer[begin:] if begin is not None else b""  # type: ignore[attr-defined]
            raise
        ended = not chunk
        buffer += chunk
        if searched is not None:
            # Only the bytes not searched yet, so that a long section is read in linear time.
            opener = next(o for o in _SKIPPED_END if buffer.startswith(o, scan))
            end = buffer.find(_SKIPPED_END[opener], scan + max(searched - 2, len(opener)))
            if end >= 0:
                scan, searched = end + 3, None
            elif ended or len(buffer) - scan > MAX_SKIPPED:
                scan, searched = scan + 1, None  # a stray opener: the scan goes on after its "<"
            else:
                searched = len(buffer) - scan
                continue
        while True:
            match = _RECORD_TAG.search(buffer, scan)
            if match is None:
                scan = max(scan, len(buffer) - _TAG_TAIL)
                break
            if match.group(1) is None:
                end = sections.end(buffer, match.start(), match.group())
                if end < 0 and not ended and len(buffer) - match.start() <= MAX_SKIPPED:
                    scan, searched = match.start(), len(buffer) - match.start()  # its end may be in a later chunk
                    break
                scan = end if end >= 0 else match.end()  # a section skipped whole, or a stray opener
            else:
                if begin is not None:
                    yield _kept(_before_set_end(buffer[begin : match.start()]))
                begin = match.start()
                scan = match.end()
        if searched is None and begin is not None and len(buffer) - begin > MAX_RECORD_BYTES + _TAG_TAIL:
            # Too long, unless its set ended within (what follows the end is dropped, as at the next record;
            # past the cap by a tag's length, so that a set's end cut by the chunk's end is no record's).
            # Not while a section opened in it waits for its end (MAX_SKIPPED): one that never comes is
            # text, and the record may end right after it.
            yield _kept(_before_set_end(buffer[begin:]))
            begin = None  # the rest is scanned for the next record, and dropped
        keep = scan if begin is None else begin
        buffer, scan = buffer[keep:], scan - keep
        sections.cut(keep)
        begin = None if begin is None else 0
    if begin is not None and buffer.strip():
        frame = _before_set_end(buffer)
        if len(frame) == len(buffer):  # no end of the set after the last record
            error = SetNotEnded("the file ends before </PubmedArticleSet>")
            error.partial = frame
            raise error
        yield _kept(frame)


def _kept(frame: bytes) -> bytes:
    """`frame`, or its first bytes as `_TooLong` where it is longer than MAX_RECORD_BYTES."""
    return _TooLong(frame[:_TOO_LONG_HEAD]) if len(frame) > MAX_RECORD_BYTES else frame


# What may come before a file's root element: the XML declaration, a DOCTYPE, comments.
_PROLOG = re.compile(rb"\s*(?:<\?.*?\?>|<!--.*?-->|<!DOCTYPE[^>\[]*(?:\[.*?\])?\s*>)", re.S)
_ELEMENT = re.compile(rb"\s*<([A-Za-z_][\w.:-]*)")
PUBMED_ROOTS = ("PubmedArticleSet", "PubmedBookArticleSet")
_HEAD_BYTES = 1 << 16


def _head(path: Path) -> Optional[bytes]:
    """A file's first `_HEAD_BYTES` bytes and one more (so that a longer file shows), decompressed,
    without a UTF-8 byte order mark; None when they cannot be read (the reader rejects the file,
    saying where it breaks off)."""
    try:
        with open_bytes(path) as f:
            return f.read(_HEAD_BYTES + 1).removeprefix(codecs.BOM_UTF8)
    except (OSError, *DECOMPRESSION_ERRORS):
        return None


def xml_root(path: Path) -> Optional[str]:
    """The name of the root element of an XML file (decompressed), from its first 64 KiB: '' when
    they hold no element where the root should be (an empty file, not XML), None when they cannot be read."""
    head = _head(path)
    if head is None:
        return None
    element = _ELEMENT.match(head, _after_prolog(head))
    return element.group(1).decode("ascii", "replace") if element else ""


def _after_prolog(head: bytes) -> int:
    """Where the root element may start in `head`, past the XML declaration, DOCTYPE and comments."""
    at = 0
    while match := _PROLOG.match(head, at):  # each match takes at least one character
        at = match.end()
    return at


# A whole PubMed set with nothing in it but whitespace and comments.
_EMPTY_SET = re.compile(
    rb"\s*<(PubmedArticleSet|PubmedBookArticleSet)\b[^>]*?(?:/>|>(?:\s|<!--.*?-->)*</\1\s*>)\s*", re.S)


def _is_blank(path: Path) -> bool:
    """Whether a file holds nothing but whitespace, decompressed (an empty file, a failed download)."""
    head = _head(path)
    return head is not None and len(head) <= _HEAD_BYTES and not head.strip()


def _is_empty_set(path: Path) -> bool:
    """Whether a file in which no record was found is a whole PubMed set that holds none (what a
    search that found nothing saves): no input record, so nothing to reject. A set cut short, or one
    with other content, is not."""
    head = _head(path)
    if head is None or len(head) > _HEAD_BYTES:
        return False
    return _EMPTY_SET.fullmatch(head, _after_prolog(head)) is not None


_ENCODING = re.compile(rb"""<\?xml\s[^>]*?\bencoding\s*=\s*["']([A-Za-z][\w.:-]*)["']""")


def _declaration(path: Path) -> bytes:
    """The XML declaration each record of the file is parsed with: none for UTF-8 (lxml's default,
    NLM's encoding), else one naming the encoding the file declares."""
    match = _ENCODING.match((_head(path) or b"").lstrip())
    encoding = match.group(1).decode("ascii") if match else "utf-8"
    if encoding.lower().replace("_", "-") in ("utf-8", "utf8", "us-ascii", "ascii"):
        return b""
    return f'<?xml version="1.0" encoding="{encoding}"?>'.encode("ascii")


def _set_ends(path: Path) -> bool:
    """Whether a file ends with the end of its PubMed set (read through, keeping only its tail)."""
    tail = b""
    with open_bytes(path) as f:
        while chunk := f.read(READ_CHUNK):
            tail = (tail + chunk)[-256:]
    return _SET_END_AT_END.search(tail) is not None


def _before_set_end(frame: bytes) -> bytes:
    """`frame` up to the end of its set (`</PubmedArticleSet>` outside comments and CDATA), if any."""
    sections, at = _Sections(), 0
    while (match := _SET_END.search(frame, at)) is not None:
        if match.group(1) is not None:
            return frame[: match.start()]
        end = sections.end(frame, match.start(), match.group())
        at = end if end >= 0 else match.end()
    return frame


def _text_of(element: Optional["_etree._Element"]) -> str:
    """All text inside `element` (inline markup reduced to its text); '' if None."""
    return "".join(element.itertext()) if element is not None else ""


def pubmed_text(article: "_etree._Element") -> str:
    """Title + ' ' + abstract of a `PubmedArticle`/`PubmedBookArticle` element.

    The abstract's `AbstractText` sections are joined in order with one space,
    a labelled one as "LABEL: text" (see `_section_text`). A record without an
    `Abstract` takes its first English `OtherAbstract` (a plain-language
    summary, say). Empty parts are left out, so there is no stray space.
    """
    root = article.find("MedlineCitation/Article")
    if root is None:
        root = article.find("BookDocument")
    if root is None:
        return ""
    title = root.find("ArticleTitle")
    if title is None and root.tag == "BookDocument":
        title = root.find("Book/BookTitle")
    abstract = root.find("Abstract")
    if abstract is None:
        others = article.findall("MedlineCitation/OtherAbstract")
        # The DTD's default Language is "eng".
        abstract = next((other for other in others if other.get("Language", "eng") == "eng"), None)
    sections = [_section_text(section) for section in abstract.findall("AbstractText")] if abstract is not None else []
    parts = [_text_of(title)] + sections
    return " ".join(part for part in parts if part.strip())


def _section_text(section: "_etree._Element") -> str:
    """An `AbstractText` as PubTator (and so BC5CDR, which the heads learnt from) writes it:
    "LABEL: text" where it has a `Label` ("BACKGROUND", "Methods"; not NLM's "UNLABELLED")."""
    text = _text_of(section)
    label = (section.get("Label") or "").strip()
    if not label or label.upper() == "UNLABELLED" or not text.strip():
        return text
    return f"{label}: {text}"


def _pmid(article: "_etree._Element") -> str:
    pmid = article.find("MedlineCitation/PMID")
    if pmid is None:
        pmid = article.find("BookDocument/PMID")
    return (pmid.text or "").strip() if pmid is not None else ""


def pubmed_locator(n: int, pmid: str) -> str:
    """Where the `n`-th record (from 1) of a PubMed file is: `record N, PMID P`, `record N` without a PMID.

    Unique within the file, however often a PMID repeats in it (see the module docstring).
    """
    return f"record {n}, PMID {pmid}" if pmid else f"record {n}"


def _whole_record(frame: bytes, declaration: bytes = b"") -> Optional[bytes]:
    """The last record of a file cut short (`SetNotEnded.partial`), up to its end tag, if it is whole
    (it parses, with the file's `declaration`); None for a record cut inside."""
    name = re.match(rb"<(\w+)", frame)
    if name is None:
        return None
    ends = list(re.finditer(rb"</" + name.group(1) + rb"\s*>", frame))
    if not ends:
        return None
    record = frame[: ends[-1].end()]
    try:
        _etree.fromstring(declaration + record)
    except _XMLError:
        return None
    return record


def read_pubmed(path: Path, skip: Skip = None) -> Iterator[Union[Item, _Skipped]]:
    """The records and deletions of a PubMed/MEDLINE XML file (`.xml`, `.xml.gz` or `.xml.xz`).

    A file that ends before its `</PubmedArticleSet>` (`SetNotEnded`), or
    whose decompression fails (a truncated or corrupt `.gz`), ends with one
    reject (`truncated_input` for a cut): in place of its last record where
    that one is cut, after it where it is whole. A file that declares another
    encoding than UTF-8 (one compatible with ASCII, as ISO-8859-1) is decoded
    in it: each record is parsed with the file's declaration.
    """
    source = str(path)
    n = position = 0
    declaration = _declaration(path)

    def items(raw: bytes) -> Iterator[Union[Item, _Skipped]]:
        nonlocal position
        # A record is one item; a DeleteCitation, one per PMID it lists.
        if skip is not None and not raw.startswith(b"<DeleteCitation") and skip(position):
            position += 1
            yield SKIPPED
            return
        if isinstance(raw, _TooLong):
            match = _OWN_PMID.search(raw)
            pmid = match.group(1).decode() if match else ""
            position += 1
            yield Reject(source, pubmed_locator(n, pmid), TOO_LONG,
                         f"a record of more than {MAX_RECORD_BYTES:,} bytes, not read", pmid)
            return
        for item in _pubmed_record(declaration + raw, source, n):
            position += 1
            yield item

    try:
        with open_bytes(path) as f:
            for raw in _framed_records(f):
                n += 1
                yield from items(raw)
        if n == 0 and not _is_empty_set(path):
            if xml_root(path) in PUBMED_ROOTS and not _set_ends(path):  # cut before its first record
                raise SetNotEnded("the file ends before </PubmedArticleSet>")
            yield Reject(source, "-", MALFORMED_XML, "no PubMed records (PubmedArticle, PubmedBookArticle or "
                         "DeleteCitation) found in the file: not a PubMed XML file?")
    except (OSError, *DECOMPRESSION_ERRORS) as e:  # SetNotEnded too
        kind = _read_error(path, e)  # raises for an error of the system, before any more is yielded
        partial = getattr(e, "partial", b"")
        # Its last record may end before the cut: all of it is there in a .gz cut in its trailer.
        last = _whole_record(partial, declaration)
        if last is not None:
            n += 1
            yield from items(last)
        match = _OWN_PMID.search(partial) if last is None else None
        pmid = match.group(1).decode() if match else ""
        if isinstance(e, SetNotEnded):
            reason = (f"the file ends before </PubmedArticleSet>, after {n} complete records (cut short: "
                      "any records after them are missing)")
        else:
            reason = f"the file ends or cannot be read after {n} complete records: {describe_error(path, e)}"
        yield Reject(source, pubmed_locator(n + 1, pmid), kind, reason, pmid)


def _pubmed_record(raw: bytes, source: str, n: int) -> Iterator[Item]:
    """The items of one framed PubMed record: a Record, a Reject or Deleted PMIDs."""
    match = _OWN_PMID.search(raw)  # where the record does not parse
    pmid = match.group(1).decode() if match else ""
    where = pubmed_locator(n, pmid)
    try:
        element = _etree.fromstring(raw)
    except _XMLError as e:
        kind = UNDECODABLE if "utf-8" in str(e).lower() or "encoding" in str(e).lower() else MALFORMED_XML
        yield Reject(source, where, kind, f"{kind.replace('_', ' ')}: {e}", pmid)
        return
    if element.tag == "DeleteCitation":
        for deleted in element.findall("PMID"):
            yield Deleted(source, (deleted.text or "").strip())
        return
    pmid = _pmid(element)
    if not pmid:
        yield Reject(source, pubmed_locator(n, ""), MISSING_ID,
                     "no PMID of its own (MedlineCitation/PMID or BookDocument/PMID) in the record")
        return
    where = pubmed_locator(n, pmid)
    text = pubmed_text(element)
    if not text.strip():
        yield Reject(source, where, EMPTY_TEXT, "no (English) title and no abstract", pmid)
        return
    yield Record(pmid, text, source, where)


# ---------------------------------------------------------------- JSON Lines


def read_jsonl(path: Path, id_key: str, text_key: str, skip: Skip = None) -> Iterator[Union[Item, _Skipped]]:
    """One record per non-blank line `{id_key: ..., text_key: ...}` of a `.jsonl` file (`.gz` or `.xz` too)."""
    source = str(path)
    line_no = position = 0
    try:
        with open_bytes(path) as f:
            for line_no, raw in _jsonl_lines(f):
                if raw is not None and not raw.strip():
                    continue
                if skip is not None and skip(position):
                    yield SKIPPED
                elif raw is None:
                    yield Reject(source, f"line {line_no}", TOO_LONG,
                                 f"a line of more than {MAX_LINE_BYTES:,} bytes (its end included), not read")
                else:
                    yield _json_record(raw, source, f"line {line_no}", id_key, text_key)
                position += 1
    except (OSError, *DECOMPRESSION_ERRORS) as e:
        yield Reject(source, f"line {line_no + 1}", _read_error(path, e),
                     f"the file ends or cannot be read after line {line_no}: {describe_error(path, e)}")


# The longest line of a JSON Lines file that is read: a longer one is a too_long reject, read past
# and not kept (a .gz of a few MB may hold a line of GBs, which reading whole would take).
MAX_LINE_BYTES = 1 << 28


def _jsonl_lines(f: IO[bytes]) -> Iterator[Tuple[int, Optional[bytes]]]:
    """The lines of a JSON Lines file, numbered from 1, without a UTF-8 BOM before the first;
    None for a line of more than MAX_LINE_BYTES."""
    line_no = 0
    while raw := f.readline(MAX_LINE_BYTES + 1):
        line_no += 1
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            while (rest := f.readline(1 << 20)) and not rest.endswith(b"\n"):
                pass
            yield line_no, None
        else:
            yield line_no, raw.removeprefix(codecs.BOM_UTF8) if line_no == 1 else raw


def _json_record(raw: bytes, source: str, where: str, id_key: str, text_key: str) -> Item:
    try:
        line = raw.decode("utf8")
    except UnicodeDecodeError as e:
        return Reject(source, where, UNDECODABLE, f"not UTF-8: {e}")
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as e:
        # Where in this line (its own "line 2" would be the line end, read as a second line).
        at = "at the end of the line" if e.pos >= len(line.rstrip("\r\n")) else f"at column {e.pos + 1}"
        return Reject(source, where, BAD_JSON, f"bad JSON: {e.msg} {at}")
    except (ValueError, RecursionError) as e:  # also an integer of over 4,300 digits, arrays nested too deep
        return Reject(source, where, BAD_JSON, f"bad JSON: {e}")
    if not isinstance(obj, dict):
        return Reject(source, where, BAD_JSON, f"a JSON {type(obj).__name__}, not an object")
    return _checked_record(obj.get(id_key), obj.get(text_key), source, where, repr(id_key), repr(text_key))


def _checked_record(doc_id: object, text: object, source: str, where: str, id_name: str, text_name: str) -> Item:
    """A Record when `doc_id` and `text` are usable, else the Reject that says why, naming
    them `id_name` and `text_name` (a JSON key or Parquet column quoted, "file" for a .txt file).

    An id is a string or an integer: any other value (a float, a bool, an
    object) has no canonical text, and its Python repr would not be an id.
    """
    if doc_id is None or doc_id == "":
        return Reject(source, where, MISSING_ID, f"no {id_name}")
    if isinstance(doc_id, bool) or not isinstance(doc_id, (str, int)):
        return Reject(source, where, MISSING_ID,
                      f"{id_name} is of type {type(doc_id).__name__}, not a string or an integer")
    doc_id = str(doc_id)
    if text is None:
        return Reject(source, where, MISSING_TEXT, f"no {text_name}", doc_id)
    if not isinstance(text, str):
        return Reject(source, where, MISSING_TEXT, f"{text_name} is of type {type(text).__name__}, not a string",
                      doc_id)
    for name, value in ((id_name, doc_id), (text_name, text)):
        try:
            value.encode("utf8")
        except UnicodeEncodeError as e:  # a lone surrogate of a JSON "\ud83d" escape: the output cannot hold it
            return Reject(source, where, UNDECODABLE, f"{name} cannot be encoded as UTF-8: {e}",
                          "" if name == id_name else doc_id)
    if not text.strip():
        return Reject(source, where, EMPTY_TEXT, f"empty {text_name}", doc_id)
    return Record(doc_id, text, source, where)


def is_utf8(name: str) -> bool:
    """Whether a file name (as Python decodes it, undecodable bytes as surrogates) is UTF-8."""
    try:
        name.encode("utf8")
    except UnicodeEncodeError:
        return False
    return True


def printable(name: str) -> str:
    """A file name with its undecodable bytes as backslash escapes: a string every output can hold."""
    return os.fsencode(name).decode("utf8", "backslashreplace")


# ---------------------------------------------------------------- .txt folder


def txt_files(path: Path) -> Tuple[List[Path], List[Path]]:
    """The files a folder input is read for, by name, and what it skips.

    Read: the files directly in it whose suffix is `.txt` in any case (`b.TXT`
    too), links to files among them, as the shell's `*.txt` reads them (a
    subset of a collection linked from it, say; `links_out_of` names those
    that lead out of the folder, for the log). Skipped: hidden files, as the
    shell's `*.txt` skips them (macOS writes a binary "._a.txt" beside each
    file copied to another file system), subfolders (not read recursively)
    and other files.
    """
    files, skipped = [], []
    for entry in sorted(path.iterdir()):
        read = entry.suffix.lower() == ".txt" and not entry.name.startswith(".") and entry.is_file()
        (files if read else skipped).append(entry)
    return files, skipped


def links_out_of(path: Path, files: Sequence[Path]) -> List[Path]:
    """The `files` of the folder `path` that are links to files outside it: read all the same, and
    listed in the log (a collection unpacked from an archive may link to any file of the user's)."""
    root = path.resolve()
    return [file for file in files if file.is_symlink() and root not in file.resolve().parents]


def read_txt_folder(path: Path, skip: Skip = None) -> Iterator[Union[Item, _Skipped]]:
    """One record per `.txt` file of a folder (`txt_files`), by file name; id = the name without its suffix.

    The text is UTF-8, a byte order mark at its start dropped (as in JSON Lines).
    """
    source = str(path)
    for position, file in enumerate(txt_files(path)[0]):
        if skip is not None and skip(position):
            yield SKIPPED
            continue
        where = file.name
        if not is_utf8(where):
            yield Reject(source, printable(where), UNDECODABLE, "the file name is not UTF-8")
            continue
        try:
            text = file.read_bytes().decode("utf-8-sig")
        except UnicodeDecodeError as e:
            yield Reject(source, where, UNDECODABLE, f"not UTF-8: {e}", file.stem)
            continue
        except OSError as e:
            yield Reject(source, where, _read_error(file, e), str(e), file.stem)
            continue
        yield _checked_record(file.stem, text, source, where, "file name", "file")


# ---------------------------------------------------------------- Parquet


def read_parquet(path: Path, id_key: str, text_key: str) -> Iterator[Item]:
    """One record per row of a Parquet file with columns `id_key` and `text_key`."""
    import pyarrow.parquet as pq

    source = str(path)
    row = 0
    try:
        parquet = pq.ParquetFile(str(path))
    except (OSError, ValueError) as e:
        yield Reject(source, f"row {row + 1}", _read_error(path, e), f"cannot read Parquet after row {row}: {e}")
        return
    _check_columns(path, parquet.schema_arrow.names, id_key, text_key)
    try:
        for batch in parquet.iter_batches(columns=[id_key, text_key], batch_size=4096):
            for doc_id, text in zip(_parquet_values(batch.column(0)), _parquet_values(batch.column(1))):
                row += 1
                where = f"row {row}"
                if isinstance(doc_id, _NotUTF8) or isinstance(text, _NotUTF8):
                    key, value = (id_key, doc_id) if isinstance(doc_id, _NotUTF8) else (text_key, text)
                    yield Reject(source, where, UNDECODABLE, f"the {key!r} value is not UTF-8: {value.error}",
                                 "" if key == id_key else str(doc_id))
                    continue
                yield _checked_record(doc_id, text, source, where, repr(id_key), repr(text_key))
    except (OSError, ValueError) as e:  # pyarrow's ArrowIOError / ArrowInvalid (a corrupt file)
        yield Reject(source, f"row {row + 1}", _read_error(path, e), f"cannot read Parquet after row {row}: {e}")


@dataclass(frozen=True)
class _NotUTF8:
    """A Parquet string value that is not UTF-8, and why."""

    error: str


def _parquet_values(column: Any) -> List[Any]:
    """A column of a Parquet batch as Python values. pyarrow does not check that the strings
    another writer wrote are UTF-8, and one that is not would fail the whole batch: each is then
    decoded on its own, and one that is not UTF-8 is a `_NotUTF8`, so that only its row is rejected."""
    try:
        return column.to_pylist()
    except UnicodeDecodeError:
        import pyarrow as pa

        if pa.types.is_dictionary(column.type):
            column = column.dictionary_decode()
        values: List[Any] = []
        for raw in column.cast(pa.large_binary()).to_pylist():
            try:
                values.append(None if raw is None else raw.decode("utf8"))
            except UnicodeDecodeError as e:
                values.append(_NotUTF8(str(e)))
        return values


def _check_columns(path: Path, names: Sequence[str], id_key: str, text_key: str, field: str = "column",
                   where: str = "") -> None:
    """ValueError if a Parquet file lacks the id or text column (or the first
    records of a JSON Lines file, the key): no row of it could be read. Both
    are named where both are missing."""
    fields = ((text_key, "text", "--text-key"), (id_key, "id", "--id-key"))
    missing = [(key, what, option) for key, what, option in fields if key not in names]
    if missing:
        lacks = " nor ".join(f"{field} {key!r} for the document {what}" for key, what, _ in missing)
        names_them = " and ".join(f"the {what} {field} with {option}" for _, what, option in missing)
        raise ValueError(f"{path}: no {lacks}{where} ({field}s: {', '.join(names)}); name {names_them}")
    for key in dict.fromkeys((id_key, text_key)):
        if list(names).count(key) > 1:  # Parquet allows it; which one is meant, nobody knows
            raise ValueError(f"{path}: the {field} {key!r} appears {list(names).count(key)} times; rename all but one")


def _check_column_types(path: Path, schema: Any, id_key: str, text_key: str) -> None:
    """ValueError if a Parquet file's text column does not hold strings, or its id column strings or
    integers: every row would be rejected (binary text is the usual case: decode it first)."""
    import pyarrow as pa

    def value_type(key: str) -> Any:  # a dictionary-encoded column's values
        kind = schema.field(key).type
        return kind.value_type if pa.types.is_dictionary(kind) else kind

    def is_string(kind: Any) -> bool:
        return pa.types.is_string(kind) or pa.types.is_large_string(kind) or str(kind) == "string_view"

    text_type, id_type = value_type(text_key), value_type(id_key)
    for key, what, kind, usable, wanted, example in (
        (text_key, "text", text_type, is_string(text_type), "strings", "decode binary text to UTF-8 strings"),
        # pandas stores integer ids with a missing one as floats.
        (id_key, "id", id_type, is_string(id_type) or pa.types.is_integer(id_type), "strings or integers",
         "pandas' df[column].astype('Int64'), or strings"),
    ):
        if not usable:
            raise ValueError(f"{path}: the {what} column {key!r} holds {kind} values, not {wanted}; "
                             f"convert it (e.g. {example}) or name another with --{what}-key")


def _json_keys(path: Path, records: int = JSON_KEY_SAMPLE) -> Optional[List[str]]:
    """The keys found in the JSON objects among a JSON Lines file's first `records` lines, in the
    order first seen; None where none of them is a JSON object (the reader rejects each)."""
    keys: Dict[str, None] = {}
    found = False
    try:
        with open_bytes(path) as f:
            lines = (raw for _, raw in _jsonl_lines(f) if raw is None or raw.strip())
            for _, raw in zip(range(records), lines):
                if raw is None:  # a record too long to read
                    continue
                try:
                    obj = json.loads(raw.decode("utf8"))
                except (ValueError, RecursionError):  # bad JSON or UTF-8: a reject of the reader's
                    continue
                if isinstance(obj, dict):
                    found = True
                    keys.update(dict.fromkeys(obj))
    except (OSError, *DECOMPRESSION_ERRORS):  # the reader reports it, with what it read before
        pass
    return list(keys) if found else None


def expand_inputs(inputs: Sequence[Path], id_key: str = "id", text_key: str = "text") -> List[Path]:
    """The inputs in the order given, each checked to exist, to be of a known type and to be given once;
    a Parquet input, to have the `id_key` and `text_key` columns, and a JSON Lines input, those keys
    among its first JSON_KEY_SAMPLE records (the usual mistake is a file with other names); every path,
    to be UTF-8. ValueError says what is wrong.
    """
    paths = []
    seen: Dict[Path, Path] = {}
    for path in inputs:
        if not is_utf8(str(path.resolve())):
            raise ValueError(f"{printable(str(path))}: the input's path is not UTF-8, and the tables name each "
                             "record's input by it; rename the file or folder")
        if not path.exists():
            raise ValueError(f"no such input: {path}")
        if not path.is_dir() and not path.is_file():
            raise ValueError(f"{path}: not a file or a folder (a pipe?): annotate reads an input more than once "
                             "(to count its records, to resume a run); write it to a file and give that")
        kind = input_kind(path)
        resolved = path.resolve()
        if resolved in seen:
            raise ValueError(f"input given twice: {path} (the same as {seen[resolved]}); "
                             "its records would be annotated twice")
        seen[resolved] = path
        if kind == "txt" and not txt_files(path)[0]:
            held = Counter("".join(file.suffixes) for file in path.iterdir() if file.is_file())
            if not held:
                raise ValueError(f"{path}: a folder input is read for its .txt files, and this folder is empty")
            what = ", ".join(f"{n} {suffix or 'without suffix'}" for suffix, n in held.most_common(3))
            # Only files of a type read as an input of their own are worth naming (`input_kind`).
            readable = Counter(suffix for file in path.iterdir() if file.is_file()
                               if (suffix := _input_suffix(file.name)))
            if readable:
                suffix, _ = readable.most_common(1)[0]
                hint = f"give other inputs by their file names, e.g. {path / '*'}{suffix}"
            else:
                hint = f"none of its files is an input annotate reads ({INPUT_TYPES})"
            raise ValueError(f"{path}: a folder input is read for its .txt files, and this one holds none "
                             f"(it holds {what}); {hint}")
        if kind == "pubmed":
            root = xml_root(path)
            if root == "" and _is_blank(path):
                raise ValueError(f"{path}: the file is empty (a download that failed?); leave it out of the inputs")
            if root is not None and root not in PUBMED_ROOTS:
                found = f"its root element is <{root}>" if root else "it does not start with an XML element"
                raise ValueError(f"{path}: not a PubMed XML file ({found}, not <PubmedArticleSet>); "
                                 "leave it out of the inputs")
        if kind == "parquet":
            try:
                import pyarrow.parquet as pq
            except ImportError:
                raise ValueError(f"{path}: a Parquet input needs pyarrow (pip install pyarrow)") from None
            try:
                schema = pq.read_schema(str(path))
            except (OSError, ValueError):
                pass  # a corrupt file: the reader rejects it
            else:
                _check_columns(path, schema.names, id_key, text_key)
                _check_column_types(path, schema, id_key, text_key)
        if kind == "jsonl":
            keys = _json_keys(path)
            if keys is not None:
                _check_columns(path, keys, id_key, text_key, field="key",
                               where=f" in its first {JSON_KEY_SAMPLE} records")
        paths.append(path)
    return paths
