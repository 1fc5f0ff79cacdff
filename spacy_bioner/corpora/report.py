"""Conversion reports: what a reader produced, and what it changed.

A corpus conversion must say what it changed: the readers record every
entity they repaired, moved to token boundaries or dropped in a
`ConversionReport`, and the `convert` command refuses to write a corpus that
lost more than a given fraction of its entities.
"""

import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, List, Optional, Sequence, Tuple

from spacy.tokens import Doc

from ..annotation import spans_of
from ..messages import counted


class ConversionError(ValueError):
    """Bad input; the message is one line naming the file and line or PMID."""


# Kinds of `Issue`. "repaired", "expanded" and "dropped" change the entities;
# "composite", "relation", "duplicate" (a mention given twice, kept once), "skipped"
# (a record left out, as its source said) and "excluded" (an annotation that is no entity
# asked for: another type, an event's trigger) say what was kept as is or left out.
REPAIRED = "repaired"
EXPANDED = "expanded"
DROPPED = "dropped"
COMPOSITE = "composite"
RELATION = "relation"
DUPLICATE = "duplicate"
SKIPPED = "skipped"
EXCLUDED = "excluded"

_KIND_TITLES = {
    REPAIRED: "entities with repaired tags",
    EXPANDED: "misaligned, expanded",
    DROPPED: "dropped",
    COMPOSITE: "composite, kept whole",
    RELATION: "relations, ignored",
    DUPLICATE: "duplicates, kept once",
    SKIPPED: "records skipped",
    EXCLUDED: "annotations left out",
}
# Kinds that only some inputs have: no row of 0 for the others.
_ROWS_IF_ANY = (DUPLICATE, SKIPPED, EXCLUDED)


@dataclass
class Issue:
    """One thing a reader changed or skipped, and where."""

    kind: str
    where: str
    reason: str
    label: str = ""
    doc_index: int = -1


@dataclass
class ConversionReport:
    """What a reader produced from one input file, and what it changed."""

    source: str
    documents: int = 0
    sentences: int = 0
    tokens: int = 0
    entities: Counter = field(default_factory=Counter)
    issues: List[Issue] = field(default_factory=list)

    def of_kind(self, kind: str) -> List[Issue]:
        """The issues of one kind (REPAIRED, EXPANDED, DROPPED)."""
        return [issue for issue in self.issues if issue.kind == kind]

    @property
    def repaired(self) -> List[Issue]:
        return self.of_kind(REPAIRED)

    @property
    def expanded(self) -> List[Issue]:
        return self.of_kind(EXPANDED)

    @property
    def dropped(self) -> List[Issue]:
        return self.of_kind(DROPPED)

    @property
    def input_entities(self) -> int:
        """Entities in the input: the converted ones plus the dropped ones (a duplicate is none)."""
        return sum(self.entities.values()) + len(self.dropped)

    @property
    def loss_fraction(self) -> float:
        """Fraction of input entities not kept exactly: dropped or expanded. One
        mention expanded and then dropped counts once (its issues share their `where` and
        label; a region of several labels is a mention of each)."""
        total = self.input_entities
        lost = {(issue.where, issue.label) for issue in self.issues if issue.kind in (DROPPED, EXPANDED)}
        return len(lost) / total if total else 0.0

    def count_docs(self, docs: Iterable[Doc], spans_key: Optional[str] = None) -> None:
        """Set the document, sentence, token and entity counts from `docs`."""
        self.documents = self.sentences = self.tokens = 0
        self.entities = Counter()
        for doc in docs:
            self.count_doc(doc, spans_key)

    def count_doc(self, doc: Doc, spans_key: Optional[str] = None) -> None:
        """Add `doc`'s sentences, tokens and entities to the counts: a document written as it is read."""
        self.documents += 1
        self.sentences += _n_sents(doc)
        self.tokens += len(doc)
        self.entities.update(span.label_ for span in spans_of(doc, spans_key))

    def issues_of_docs(self, start: int, end: int) -> List[Issue]:
        """The issues of documents [start, end) of this conversion: those of one output of it."""
        return [issue for issue in self.issues if start <= issue.doc_index < end]

    def table(self, title: str = "", max_examples: Optional[int] = 10) -> str:
        """A printable summary: counts, then what was changed and why (the first
        `max_examples` of each kind, all with None)."""
        rows = [
            ("documents", self.documents),
            ("sentences", self.sentences),
            ("tokens", self.tokens),
            ("entities", sum(self.entities.values())),
        ]
        rows += [(f"  {label}", n) for label, n in sorted(self.entities.items())]
        rows += [(title_, len(self.of_kind(kind))) for kind, title_ in _KIND_TITLES.items()
                 if kind not in _ROWS_IF_ANY or self.of_kind(kind)]
        width = max(len(name) for name, _ in rows + [("lost (dropped+expanded)", 0)])
        lines = [f"{title}  (from {self.source})" if title else self.source]
        lines += [f"  {name:<{width}}  {n:>9,}" for name, n in rows]
        lines.append(f"  {'lost (dropped+expanded)':<{width}}  {self.loss_fraction:>9.3%}")
        for kind in (REPAIRED, EXPANDED, DROPPED, COMPOSITE, DUPLICATE, SKIPPED, EXCLUDED):
            issues = self.of_kind(kind)
            for issue in issues[:max_examples]:
                label = f" {issue.label}" if issue.label else ""
                lines.append(f"  {kind}{label} at {issue.where}: {issue.reason}")
            if max_examples is not None and len(issues) > max_examples:
                lines.append(f"  ... and {len(issues) - max_examples} more {kind}")
        return "\n".join(lines)


def _n_sents(doc: Doc) -> int:
    if len(doc) == 0:
        return 0
    if doc.has_annotation("SENT_START"):
        return sum(1 for _ in doc.sents)
    return 1


# What a text given twice does to a corpus: each copy is a document of its own.
TEXT_IN_TRAIN_AND_DEV = "each is a document, so one text can be in both train and dev"
# What an id given twice does.
ID_GIVEN_TWICE = "the id no longer tells them apart (the same text twice could be in both train and dev)"


def warn_of_repeats(source: str, noun: str, repeats: Sequence[str], what: str,
                    consequence: str = TEXT_IN_TRAIN_AND_DEV) -> None:
    """Warn that the records at `repeats` (each where it is, and where the first was) hold `what` of
    an earlier one ("the text", "the id"), and what follows (`consequence`, with any advice)."""
    if repeats:
        warnings.warn(f"{source}: {counted(len(repeats), noun)} with {what} of an earlier one ({repeats[0]}): "
                      f"{consequence}")


def read_all(iter_docs: Callable[..., Iterator[Doc]], path: Any, *args: Any, spans_key: str,
             **kwargs: Any) -> Tuple[List[Doc], ConversionReport]:
    """A reader's documents and its report, counted: `iter_docs` (a reader's `iter_*`, which gives its
    documents one at a time and records what it changed in the report it is given) read to the end."""
    report = ConversionReport(source=str(Path(path)))
    docs = list(iter_docs(path, *args, report=report, spans_key=spans_key, **kwargs))
    report.count_docs(docs, spans_key)
    return docs, report
