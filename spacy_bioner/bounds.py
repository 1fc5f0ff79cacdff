"""Where a head's predicted entities start and end: rules on the tokens
around a decoded entity, each a `bio_ner` setting chosen on dev
(benchmarks/README.md).

- `paragraph_pieces`: an entity never crosses a blank line.
- `entity_bounds`: no whitespace, and no token of symbols or invisible
  characters alone (an emoji, a BOM), at either end; with
  `balance_brackets`, no bracket the entity does not balance ("dendritic
  cell (DC").
- `join_adjacent`: two entities of one label with a space between them
  are one ("hemolytic" and "anemia"): juxtaposed names of two entities are
  parted by punctuation or a word.
- `take_letter_suffixes`: a single capital letter after an entity is part of
  its name ("hepatitis B", "mitomycin C"). It comes after the join, which
  thus joins only entities the model decoded side by side.

A space is any whitespace within a line (`apart_in_line`): a double space
or a no-break space, a token of its own, parts as one space does, and
invisible characters count for nothing, as they change nothing else
(chain.py). A line end does not join: it may be a wrapped line's, but also
a list item's or a title's ("Malignant hyperthermia\nA 12-year-old boy").
"""

import re
import unicodedata
from typing import Dict, Iterable, List, Sequence, Tuple

from spacy.tokens import Doc, Token

from .tokenizer import HYPHENS, INVISIBLE, is_blank

_NO_INVISIBLE = str.maketrans("", "", INVISIBLE)

_OPENING = {"(": ")", "[": "]", "{": "}"}
_CLOSING = {close: opening for opening, close in _OPENING.items()}


def entity_bounds(doc: Doc, start: int, end: int, *, balance_brackets: bool) -> Tuple[int, int]:
    """The tokens a predicted entity doc[start:end] keeps.

    Whitespace at either end is left out, as spaCy's `ner` never starts or
    ends an entity on it, and so is a token of symbols or invisible characters
    alone (`_no_content`). With `balance_brackets`, an entity with a bracket
    it does not balance keeps its longest stretch without one ("dendritic
    cell (DC": "dendritic cell"; "]heptadecanoic acid": "heptadecanoic
    acid"), less the punctuation, whitespace and symbols at a cut end, until
    none is left: the gold of JNLPBA and BC5CDR hardly ever has an
    unbalanced bracket in an entity.
    """
    while start < end and _no_content(doc[start]):
        start += 1
    while end > start and _no_content(doc[end - 1]):
        end -= 1
    if not balance_brackets:
        return start, end
    while True:
        cuts = unbalanced_brackets(doc, start, end)
        if not cuts:
            return start, end
        stretches = zip([start] + [i + 1 for i in cuts], cuts + [end])
        # The longest in words: a line end or a zero-width space is none.
        new_start, new_end = max(stretches, key=lambda bounds: sum(not is_blank(t) for t in doc[slice(*bounds)]))
        if new_end < end:
            while new_end > new_start and _sheds(doc[new_end - 1], _CLOSING):
                new_end -= 1
        if new_start > start:
            while new_start < new_end and _sheds(doc[new_start], _OPENING):
                new_start += 1
        # A stretch can hold brackets that crossed others ("( IL ] -2 )"): look again.
        start, end = new_start, new_end


# Symbols (emoji, ®), private-use, format (BOM, zero-width space), control and unassigned
# characters, and emoji's modifiers (variation selectors, skin tones): no entity of the
# corpora starts or ends on one (none holds any), and the encoder reads them as [UNK] or nothing.
_NO_CONTENT_CATEGORIES = {"So", "Co", "Cf", "Cc", "Cs", "Cn"}
_EMOJI_MODIFIERS = re.compile("[\ufe00-\ufe0f\U0001f3fb-\U0001f3ff]")


def _no_content(token: Token) -> bool:
    """Whether `token` is whitespace, or symbols and invisible characters alone."""
    return token.is_space or all(
        unicodedata.category(char) in _NO_CONTENT_CATEGORIES or _EMOJI_MODIFIERS.match(char) for char in token.text
    )


# A blank line: two line ends with nothing but spaces between them.
_BLANK_LINE = re.compile(r"\n[^\S\n]*\n")


def apart_in_line(doc: Doc, end: int, start: int) -> bool:
    """Whether doc[:end] and doc[start:] are parted by whitespace alone, within a line: one
    space, a double space, a no-break space (the tokens between them blank; invisible
    characters count for nothing), no line end."""
    if not 0 < end <= start < len(doc):
        return False
    gap = doc[end - 1].whitespace_ + _visible_text(doc[end:start])
    return gap.isspace() and len(f"-{gap}-".splitlines()) == 1


def _visible_text(tokens: Iterable[Token]) -> str:
    """The text of `tokens` with their whitespace, less invisible characters."""
    return "".join(token.text_with_ws for token in tokens).translate(_NO_INVISIBLE)


def paragraph_pieces(doc: Doc, start: int, end: int) -> List[Tuple[int, int]]:
    """doc[start:end] cut at each run of blank tokens that holds a blank line: the
    pieces of a decoded entity that runs from one paragraph into the next
    ("tardive\n\ndyskinesia"), each an entity of its own. A single line end
    (text wrapped in lines) cuts nothing."""
    pieces = []
    piece_start = i = start
    while i < end:
        if not is_blank(doc[i]):
            i += 1
            continue
        run_end = i
        while run_end < end and is_blank(doc[run_end]):
            run_end += 1
        if _BLANK_LINE.search(_visible_text(doc[i:run_end])):
            pieces.append((piece_start, i))
            piece_start = run_end
        i = run_end
    pieces.append((piece_start, end))
    return [(first, last) for first, last in pieces if first < last]


def unbalanced_brackets(doc: Doc, start: int, end: int) -> List[int]:
    """The positions of the brackets in doc[start:end] that it does not balance."""
    opened: List[int] = []
    unbalanced: List[int] = []
    for i in range(start, end):
        text = doc[i].text
        if text in _OPENING:
            opened.append(i)
        elif text in _CLOSING:
            if opened and doc[opened[-1]].text == _CLOSING[text]:
                opened.pop()
            else:
                unbalanced.append(i)
    return sorted(opened + unbalanced)


def _sheds(token: Token, keep: Dict[str, str]) -> bool:
    """Whether a cut end of an entity drops `token`: whitespace or symbols alone (as
    an entity's ends do: `_no_content`), or punctuation other than the brackets in
    `keep` (the ones that can close or open the rest)."""
    return _no_content(token) or (token.is_punct and token.text not in keep)


def take_letter_suffixes(doc: Doc, entities: Sequence[Tuple[int, int, str]]) -> List[Tuple[int, int, str]]:
    """`entities` (start, end, label; in order, not overlapping), each taking
    the letter `letter_suffix_end` finds after it, unless another starts there."""
    starts = {start for start, _, _ in entities}
    suffixed = [(start, end, letter_suffix_end(doc, end), label) for start, end, label in entities]
    return [(start, end if letter_end - 1 in starts else letter_end, label)
            for start, end, letter_end, label in suffixed]


def letter_suffix_end(doc: Doc, end: int) -> int:
    """`end`, or the end of the letter where the next word, a space after
    doc[:end] (`apart_in_line`), is a single capital letter other than "I"
    that ends a word ("hepatitis B", but not "vitamin B12", "factor B-1" or
    "factor B(1)")."""
    at = end
    while at < len(doc) and is_blank(doc[at]):
        at += 1
    if at >= len(doc) or not apart_in_line(doc, end, at):
        return end
    letter = doc[at]
    if len(letter.text) != 1 or not letter.text.isupper() or letter.text == "I":
        return end
    glued = at + 1  # the token glued to the letter, past invisible characters ("B\u00ad-1")
    while glued < len(doc) and not doc[glued - 1].whitespace_ and not doc[glued].text.translate(_NO_INVISIBLE):
        glued += 1
    if glued < len(doc) and not doc[glued - 1].whitespace_:
        following = doc[glued].text[0]
        if following.isalnum() or following == "(" or following in HYPHENS:
            return end
    return at + 1


def join_adjacent(
    doc: Doc, entities: Sequence[Tuple[int, int, str]], labels: Iterable[str]
) -> List[Tuple[int, int, str]]:
    """`entities` (start, end, label; in order, not overlapping) with each run
    of `labels` entities that follow one another with a space between them
    (`apart_in_line`: not a line end) joined into one."""
    joinable = set(labels)
    joined: List[Tuple[int, int, str]] = []
    for start, end, label in entities:
        if joined:
            prev_start, prev_end, prev_label = joined[-1]
            if (
                label == prev_label
                and label in joinable
                and apart_in_line(doc, prev_end, start)
            ):
                joined[-1] = (prev_start, end, label)
                continue
        joined.append((start, end, label))
    return joined
