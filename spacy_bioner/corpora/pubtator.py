"""PubTator corpora (BC5CDR) to spaCy Docs.

One Doc per abstract, text = title + " " + abstract (the offsets assume
exactly that), tokenized with the given nlp (the BioTokenizer); the mentions are placed on
its tokens by their offsets (`offsets.place_mentions`: expanded to token
boundaries where they fall inside a token, the longer of overlapping ones
kept, each change reported). A composite mention (7th column,
"cardiovascular, and respiratory depression") is kept as ONE span with the
composite MeSH ids ("D002318|D012131") as `kb_id_` (reported as
"composite"). Mention columns after the 7th are ignored. A MeSH id of "-1" (none) becomes
an empty `kb_id_`, and so does each "-1" of a composite's ids, which keep their
places ("D002544|-1" -> "D002544|"). CID relation lines are ignored and
counted ("relation").

Written here, not with `bioc` (PyPI), whose PubTator reader gives passages
and annotations but no tokens: placing the mentions on the pipeline's tokens,
with a report of those that do not fall on token boundaries, is the work.
"""

import re
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Optional, Tuple

from spacy.language import Language
from spacy.tokens import Doc

from .iob import BC5CDR_SPANS_KEY
from .offsets import Mention, annotated_doc
from .report import (
    ID_GIVEN_TWICE,
    RELATION,
    SKIPPED,
    ConversionError,
    ConversionReport,
    Issue,
    read_all,
    warn_of_repeats,
)
from .text import PathLike, iter_lines

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
        self.mentions: List[Mention] = []
        self.relations: List[int] = []

    @property
    def text(self) -> str:
        """Title, a space, abstract: the text the mention offsets index."""
        return self.title if self.abstract is None else f"{self.title} {self.abstract}"


def _parse_pubtator(path: Path, lines: Iterable[str]) -> Iterator[_PubTatorDoc]:
    """The documents of a PubTator file's lines, each once the blank line after it (or the end) is read."""
    current: Optional[_PubTatorDoc] = None
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            if current is not None:
                yield current
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
        kb_id = mesh_ids(fields[5]) if len(fields) > 5 else ""
        composite = len(fields) > 6 and bool(fields[6].strip())
        current.mentions.append(Mention(start, end, fields[3], label, f"{where} PMID {pmid}", kb_id, composite))
    if current is not None:
        yield current


def mesh_ids(field: str) -> str:
    """A mention's MeSH id, or a composite's ids joined by "|", with "-1" (none) as "": each part in its
    place, as the composite's parts in the 7th column, and "" where no part has one."""
    ids = ["" if part.strip() == "-1" else part.strip() for part in field.split("|")]
    return "|".join(ids) if any(ids) else ""


def _parse_file(path: Path) -> Iterator[_PubTatorDoc]:
    """The documents of the PubTator file `path`, read as they come: the file is never in memory whole."""
    any_document = False
    for document in _parse_pubtator(path, iter_lines(path)):
        any_document = True
        yield document
    if not any_document:
        raise ConversionError(f"{path}:1: empty file (no |t| title lines)")


def read_pubtator_texts(path: PathLike) -> List[Tuple[str, str]]:
    """(PMID, title + " " + abstract) of each document of a PubTator file: the
    documents to regroup the corpus's IOB form into (`read_iob`)."""
    return [(doc.pmid, doc.text) for doc in _parse_file(Path(path))]


def read_pubtator(
    path: PathLike, nlp: Language, *, spans_key: str = BC5CDR_SPANS_KEY
) -> Tuple[List[Doc], ConversionReport]:
    """Read a PubTator file: one Doc per abstract (see the module docstring
    for the alignment, composite and overlap policies); `iter_pubtator` gives them one at a time."""
    return read_all(iter_pubtator, path, nlp, spans_key=spans_key)


def iter_pubtator(
    path: PathLike, nlp: Language, *, report: ConversionReport, spans_key: str = BC5CDR_SPANS_KEY
) -> Iterator[Doc]:
    """`read_pubtator`'s documents, each as its abstract is read, and what was changed in `report`."""
    path = Path(path)
    first_lines: Dict[str, int] = {}  # by PMID
    repeated: List[str] = []
    doc_index = 0  # of the documents written
    for pdoc in _parse_file(path):
        if pdoc.pmid in first_lines:
            repeated.append(f"PMID {pdoc.pmid} at line {pdoc.lineno}, as at line {first_lines[pdoc.pmid]}")
        first_lines.setdefault(pdoc.pmid, pdoc.lineno)
        if not pdoc.text.strip():  # a mention would not fit its text: none
            report.issues.append(Issue(SKIPPED, f"{path}:{pdoc.lineno} PMID {pdoc.pmid}", "an empty title and abstract",
                                       doc_index=max(doc_index - 1, 0)))
            continue
        if pdoc.relations:
            # One Issue a document, counted once a line (as BioC's): the report counts
            # relations and shows none, and a corpus of millions keeps no object a line.
            first = pdoc.relations[0]
            ignored = Issue(RELATION, f"{path}:{first} PMID {pdoc.pmid}", "relation line ignored", doc_index=doc_index)
            report.issues += [ignored] * len(pdoc.relations)
        yield annotated_doc(nlp, pdoc.text, pdoc.mentions, report, doc_index, spans_key,
                            f"{path}:{pdoc.lineno} PMID {pdoc.pmid}", doc_id=pdoc.pmid,
                            sentence_starts_at=[len(pdoc.title) + 1])
        doc_index += 1
    warn_of_repeats(str(path), "document", repeated, "the PMID", ID_GIVEN_TWICE)
