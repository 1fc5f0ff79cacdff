"""Mentions given by character offsets, placed on a Doc's tokens (PubTator, JSON Lines, brat, BioC).

A mention is placed, less the blanks (whitespace, invisible characters) at
its edges, with `alignment_mode="strict"`; if it does not fall on token
boundaries it is expanded to them (reported as "expanded"), and one that
covers nothing but blanks is dropped. Overlapping mentions: one placed
exactly is kept before an expanded one, then the longer one (ties: the
earlier one); the other is dropped and reported, so that `doc.ents` and
`doc.spans[key]` hold one consistent non-overlapping tagging. A mention
given twice (the same offsets, blanks at the edges aside, and label) is
placed once, with the kb ids of both, and counted as a duplicate, not as
lost.

A mention of several fragments (brat's "0 5;10 15", BioC's locations) is
one span where only whitespace lies between them (brat splits a mention at
each line break); one with words between them ("renal and hepatic
*failure*") cannot be one span of a flat tagging: it is dropped and
reported, or with `discontinuous="cover"` kept as the span from its first
fragment's start to its last one's end (reported as expanded).
"""

import re
import warnings
from bisect import bisect_left
from collections import Counter
from typing import Collection, Dict, List, Literal, NamedTuple, Optional, Sequence, Set, Tuple, get_args

from spacy.language import Language
from spacy.tokens import Doc, Span

from ..annotation import longest_first, select_non_overlapping
from ..messages import counted
from ..tokenizer import INVISIBLE, is_blank, set_sentence_starts
from .iob import set_entities
from .report import COMPOSITE, DROPPED, DUPLICATE, EXCLUDED, EXPANDED, ConversionError, ConversionReport, Issue

Discontinuous = Literal["drop", "cover"]
DISCONTINUOUS = get_args(Discontinuous)
OffsetUnits = Literal["characters", "utf-16"]
OFFSET_UNITS = get_args(OffsetUnits)
# What the offsets of mentions that come with their text count: "auto" reads each in the units in
# which its text fits, characters first (a corpus annotated partly before, partly after a tool
# changed its units).
MentionUnits = Literal["characters", "utf-16", "auto"]
MENTION_UNITS = get_args(MentionUnits)
_OUTSIDE_BMP = re.compile("[\U00010000-\U0010ffff]")
_WHITESPACE = re.compile(r"\s+")
# A mention's text less the whitespace and invisible characters at its edges (group 1).
_INSIDE_BLANKS = re.compile(rf"[\s{INVISIBLE}]*(.*?)[\s{INVISIBLE}]*", re.DOTALL)


class CharacterOffsets:
    """Offsets of one text counted in `units`, as offsets in characters (code points, as Python
    counts them). "utf-16" counts a character outside the Basic Multilingual Plane (an emoji,
    mathematical letters such as "\U0001d6fc") as two, as Java and JavaScript do: INCEpTION and
    BioC's Java tools do, and an export whose offsets a browser computed may."""

    def __init__(self, text: str, units: OffsetUnits = "characters") -> None:
        if units not in OFFSET_UNITS:
            raise ValueError(f"offset units must be one of {', '.join(OFFSET_UNITS)}, not {units!r}")
        self.text = text
        self._characters: Optional[List[int]] = None  # by UTF-16 offset: the character's, -1 inside a pair
        if units == "utf-16" and _OUTSIDE_BMP.search(text):
            characters = []
            for i, char in enumerate(text):
                characters += [i, -1] if char > "\uffff" else [i]
            self._characters = characters + [len(text)]

    @staticmethod
    def length(text: str, units: OffsetUnits) -> int:
        """The length of `text` in `units`."""
        return len(text) if units == "characters" else len(text.encode("utf-16-le")) // 2

    def __call__(self, offset: int, where: str) -> int:
        """The character offset of `offset`; one past the text's end stays past it."""
        table = self._characters
        if table is None or not 0 <= offset < len(table):
            return offset if table is None or offset < 0 else len(self.text) + offset - len(table) + 1
        if table[offset] < 0:
            raise ConversionError(f"{where}: UTF-16 offset {offset} falls inside {self.text[table[offset - 1]]!r}, "
                                  "one character of two units")
        return table[offset]


class Mention(NamedTuple):
    """An entity of the input, by the character offsets of its document's text."""

    start: int
    end: int
    text: str
    label: str
    where: str  # the file and line (and document) it comes from, for the report
    kb_id: str = ""
    composite: bool = False  # several concepts in one mention, kept as one span (PubTator)

    @property
    def described(self) -> str:
        """The mention as the report names it: its text and offsets."""
        return f"{self.text!r} [{self.start}:{self.end}]"


class AnnotationSelection:
    """What of a standoff corpus's annotations (brat, BioC, Label Studio) become entities: those of the types asked
    for (all where `entity_types` is None; the others are counted, "excluded"), each of its fragments
    checked, a discontinuous one dropped or covered (see the module docstring); and the types seen, to
    warn of one asked for that no annotation has. With `offset_units="auto"` (where `auto` allows it:
    a source whose other offsets, BioC's passages', come without a text to tell their units by, does
    not), each mention's offsets are read in the units in which its given text fits, characters first;
    those read in UTF-16 units are counted."""

    def __init__(self, entity_types: Optional[Collection[str]] = None, discontinuous: Discontinuous = "drop",
                 offset_units: MentionUnits = "characters", *, auto: bool = True) -> None:
        if discontinuous not in DISCONTINUOUS:
            raise ValueError(f"discontinuous must be one of {', '.join(DISCONTINUOUS)}, not {discontinuous!r}")
        if offset_units not in (MENTION_UNITS if auto else OFFSET_UNITS):
            raise ValueError(f"offset units must be one of {', '.join(MENTION_UNITS if auto else OFFSET_UNITS)}, "
                             f"not {offset_units!r}")
        if entity_types is not None and not entity_types:
            raise ConversionError("no entity type asked for (leave the types out to convert them all)")
        self.wanted = None if entity_types is None else frozenset(entity_types)
        self.discontinuous = discontinuous
        self.offset_units = offset_units
        self.auto = auto
        self.types_seen: Set[str] = set()
        self.read_as: Counter = Counter()  # with "auto": the mentions read in each of the units
        self.unchecked = 0  # with "auto": mentions without their text, read as characters
        self._offsets: Dict[str, CharacterOffsets] = {}  # of the text of the last mention, by units

    def keeps_type(self, label: str, where: str, report: ConversionReport, doc_index: int) -> bool:
        """Whether an annotation of type `label` is converted; one that is not is counted in `report`."""
        self.types_seen.add(label)
        if self.wanted is None or label in self.wanted:
            return True
        report.issues.append(Issue(EXCLUDED, where, f"type {label!r} not asked for", label, doc_index))
        return False

    def mention(
        self,
        text: str,
        fragments: Sequence[Tuple[int, int]],
        label: str,
        where: str,
        report: ConversionReport,
        doc_index: int,
        *,
        given_text: Optional[str] = None,
        kb_id: str = "",
    ) -> Optional[Mention]:
        """The mention of `text` given as (start, end) fragments in the selection's offset units, or
        None where it is dropped as discontinuous. The fragments must fall within the text without
        overlapping (in any order), and where the source gives the mention's text (`given_text`: its
        fragments' texts joined by spaces, as brat and BioC write them), match it, but for the kind
        of whitespace inside it; ConversionError names `where` if not, and the other offset units
        where they would match."""
        given = list(fragments)
        described = ", ".join(f"{start}-{end}" for start, end in given)
        if not given:
            raise ConversionError(f"{where}: no offsets")
        tried: List[OffsetUnits] = list(OFFSET_UNITS) if self.offset_units == "auto" and given_text is not None \
            else ["characters" if self.offset_units == "auto" else self.offset_units]  # type: ignore[list-item]
        failed: Optional[Tuple[str, List[Tuple[int, int]]]] = None  # the first units' problem, and their reading
        for units in tried:
            try:
                offsets = self.offsets_of(text, units)
                converted = [(offsets(start, where), offsets(end, where)) for start, end in given]
            except ConversionError:  # an offset inside a character of two UTF-16 units
                if len(tried) == 1:
                    raise
                continue
            problem = _fragments_problem(text, converted, given_text)
            if not problem:
                fragments = converted
                break
            failed = failed or (problem, converted)
        else:
            assert failed is not None  # characters, tried first, read any offset
            problem, converted = failed
            hint = ("read as characters and as UTF-16 units" if len(tried) > 1 else
                    _units_hint(text, given, converted, given_text, tried[0], where, self.auto))
            raise ConversionError(f"{where}: {problem.format(offsets=described)} ({hint})")
        if self.offset_units == "auto" and given_text is None:
            self.unchecked += 1
        elif self.offset_units == "auto":
            self.read_as[units] += 1
        fragments.sort()
        start, end = fragments[0][0], fragments[-1][1]
        mention = Mention(start, end, text[start:end], label, where, kb_id=kb_id)
        gaps = [text[end:following] for (_, end), (following, _) in zip(fragments, fragments[1:])]
        if any(gap.strip() for gap in gaps):
            pieces = " ".join(repr(text[a:b]) for a, b in fragments)
            if self.discontinuous == "drop":
                report.issues.append(Issue(DROPPED, where, f"discontinuous: {pieces} (--discontinuous cover keeps "
                                           "the span from the first to the last)", label, doc_index))
                return None
            report.issues.append(Issue(EXPANDED, where, f"discontinuous: {pieces} -> {mention.text!r}", label,
                                       doc_index))
        return mention

    def offsets_of(self, text: str, units: OffsetUnits) -> CharacterOffsets:
        """`text`'s offsets in `units`, kept for the next call with the same text object (a document's
        mentions come together)."""
        offsets = self._offsets.get(units)
        if offsets is None or offsets.text is not text:
            offsets = self._offsets[units] = CharacterOffsets(text, units)
        return offsets

    def warn_of_units(self, source: str) -> None:
        """With "auto": warn of mentions whose offsets were read in UTF-16 units."""
        if self.read_as["utf-16"]:
            warnings.warn(f"{source}: the offsets of {self.read_as['utf-16']:,} of {sum(self.read_as.values()):,} "
                          "mentions count UTF-16 units, as Java and JavaScript count, and were read so "
                          "(--offset-units auto)")
        if self.unchecked:
            warnings.warn(f"{source}: {counted(self.unchecked, 'mention')} came without a text to check, so --offset-units auto "
                          "read the offsets as characters, unchecked")

    def warn_of_types_not_found(self, source: str) -> None:
        """Warn of the types asked for that no annotation has (a typo, or another case)."""
        missing = sorted((self.wanted or frozenset()) - self.types_seen)
        if missing:
            warnings.warn(f"{source}: no mention has the type {', '.join(missing)} (entity types asked for; the "
                          f"types found: {', '.join(sorted(self.types_seen)) or 'none'}); types are case-sensitive")


def _same_text(text: str, fragments: Sequence[Tuple[int, int]], given_text: str) -> bool:
    """Whether the fragments of `text` are `given_text` (their texts joined by spaces), but for the
    kind of whitespace inside it (a line break written as a space)."""
    found = " ".join(text[start:end] for start, end in fragments)
    return given_text == found or _WHITESPACE.sub(" ", given_text) == _WHITESPACE.sub(" ", found)


# How each of the offset units counts, in a message.
_UNITS_COUNT = {"characters": "characters, as Python counts them (a CRLF is two)",
                "utf-16": "UTF-16 units, as Java and JavaScript count"}


def _fragments_problem(text: str, fragments: Sequence[Tuple[int, int]], given_text: Optional[str]) -> str:
    """What is wrong with character `fragments` of `text`, in the order given, as a mention of
    `given_text` (None: not given), with "{offsets}" where the offsets go; "" where nothing is."""
    if not all(0 <= start < end <= len(text) for start, end in fragments):
        return f"offsets {{offsets}} are no span of the text's {len(text)} characters"
    ordered = sorted(fragments)
    if any(following < end for (_, end), (following, _) in zip(ordered, ordered[1:])):
        return "offsets {offsets} overlap one another"
    # The text of the fragments in the order given (brat's), or in the text's (BioC's locations).
    if given_text is not None and not (_same_text(text, fragments, given_text)
                                       or _same_text(text, ordered, given_text)):
        found = " ".join(text[start:end] for start, end in fragments)
        return (f"the annotation's text {given_text[:40]!r} is not the text's {found[:40]!r} at its offsets "
                "{offsets}: the text was changed after the annotation, or its offsets count other units")
    return ""


def _units_hint(text: str, given: Sequence[Tuple[int, int]], fragments: Sequence[Tuple[int, int]],
                given_text: Optional[str], units: OffsetUnits, where: str, auto: bool = False) -> str:
    """What the `given` offsets were read as counting (`fragments`, in characters); and where the
    other units read them otherwise, and so they give `given_text` without a problem, that they do
    (and, where `auto` is allowed, that it reads a corpus of both)."""
    other: OffsetUnits = "utf-16" if units == "characters" else "characters"
    said = f"read as {_UNITS_COUNT[units]}"
    offsets = CharacterOffsets(text, other)
    try:
        converted = [(offsets(start, where), offsets(end, where)) for start, end in given]
    except ConversionError:  # an offset inside a character of two UTF-16 units
        return said
    if given_text is not None and converted != list(fragments) and not _fragments_problem(text, converted,
                                                                                            given_text):
        both = " (or auto, where some mentions count one and some the other)" if auto else ""
        return f"{said}; read as {_UNITS_COUNT[other]}, they match: --offset-units {other}{both}"
    return said


def annotated_doc(
    nlp: Language,
    text: str,
    mentions: Sequence[Mention],
    report: ConversionReport,
    doc_index: int,
    spans_key: str,
    where: str,
    *,
    doc_id: Optional[str] = None,
    sentence_starts_at: Sequence[int] = (),
) -> Doc:
    """`text` as a Doc of `nlp`'s tokens with `mentions` as its entities (doc.ents and
    doc.spans[spans_key], placed by `place_mentions`), its sentences by the tokenizer's rules,
    never inside an entity, and also from the first word at or after each character offset of
    `sentence_starts_at`; `doc_id` as doc.user_data["pmid"]. A text longer than the tokenizer's
    max_length is refused, naming `where`."""
    if len(text) > nlp.max_length:
        raise ConversionError(f"{where}: a text of {len(text):,} characters, more than the tokenizer's max_length "
                              f"({nlp.max_length:,}): split it into documents")
    doc = nlp.make_doc(text)
    kept = place_mentions(doc, mentions, report, doc_index)
    token_starts = [token.idx for token in doc] if sentence_starts_at else []
    forced = []
    for offset in sentence_starts_at:  # the first word at or after it: whitespace stays with the sentence before
        i = bisect_left(token_starts, offset)
        while i < len(doc) and is_blank(doc[i]):
            i += 1
        forced.append(i)
    set_sentence_starts(doc, [i for i in forced if i < len(doc)], not_inside=kept)
    set_entities(doc, kept, spans_key)
    if doc_id is not None:
        doc.user_data["pmid"] = doc_id
    return doc


def place_mentions(doc: Doc, mentions: Sequence[Mention], report: ConversionReport, doc_index: int) -> List[Span]:
    """The non-overlapping spans of `mentions` on `doc`'s tokens; what was moved or dropped goes into `report`."""
    candidates: List[Span] = []
    found: Dict[int, Tuple[Mention, bool]] = {}  # by span: the mention, whether it was expanded
    for mention, start, end in _merged(mentions, doc.text, report, doc_index):
        if start == end:
            report.issues.append(Issue(DROPPED, mention.where, f"{mention.described} covers no token but whitespace",
                                       mention.label, doc_index))
            continue
        span = doc.char_span(start, end, label=mention.label, kb_id=mention.kb_id, alignment_mode="strict")
        expanded = span is None
        if expanded:
            # Its edges are no blanks, so neither are the tokens it expands to.
            span = doc.char_span(start, end, label=mention.label, kb_id=mention.kb_id, alignment_mode="expand")
            report.issues.append(Issue(EXPANDED, mention.where, f"{mention.described} -> {span.text!r}", mention.label,
                                       doc_index))
        if mention.composite:
            report.issues.append(Issue(COMPOSITE, mention.where, f"{mention.text!r} kept as one span ({mention.kb_id})",
                                       mention.label, doc_index))
        candidates.append(span)
        found[id(span)] = (mention, expanded)
    # A mention placed as given before one whose offsets were expanded to tokens, which may cover
    # more than the mention: then the longer, as for tags.
    kept, dropped = select_non_overlapping(candidates, priority=lambda span: (found[id(span)][1], *longest_first(span)))
    for span, clash in dropped:
        mention = found[id(span)][0]
        same = (clash.start, clash.end, clash.label_) == (span.start, span.end, span.label_)
        reason = (
            f"{mention.described} duplicates another mention"
            if same
            else f"{mention.described} ({span.label_}) overlaps {clash.text!r} ({clash.label_}), the mention kept "
            "as placed exactly, or the longer or earlier one"
        )
        report.issues.append(Issue(DROPPED, mention.where, reason, span.label_, doc_index))
    return kept


def _merged(mentions: Sequence[Mention], text: str, report: ConversionReport,
            doc_index: int) -> List[Tuple[Mention, int, int]]:
    """Each mention of `mentions` with its offsets less the blanks at its edges (whitespace and
    invisible characters of `text`, "asthma " as an annotator selected it: no token holds them, and
    no loss is counted; a mention of blanks alone has empty offsets), each (offsets, label) once: a mention given again is a duplicate, nothing
    lost wherever its offsets fall, and its kb id, where it has one the first lacks, joins the
    first's ("|" between ids, as several normalizations of one mention are written: CRAFT's
    ontologies)."""
    merged: Dict[Tuple[int, int, str], Mention] = {}
    for mention in mentions:
        start, end = _INSIDE_BLANKS.fullmatch(text, mention.start, mention.end).span(1)  # empty: blanks alone
        key = (start, end, mention.label)
        first = merged.get(key)
        if first is None:
            merged[key] = mention
            continue
        reason = f"{mention.described} given again"
        ids = first.kb_id.split("|") if first.kb_id else []
        if mention.kb_id and mention.kb_id not in ids and mention.kb_id != first.kb_id:
            merged[key] = first._replace(kb_id="|".join(ids + [mention.kb_id]))
            reason += f", its kb id {mention.kb_id} kept beside the first's"
        report.issues.append(Issue(DUPLICATE, mention.where, reason, mention.label, doc_index))
    return [(mention, start, end) for (start, end, _), mention in merged.items()]
