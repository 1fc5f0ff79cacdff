"""Where a head's predicted entities start and end (bounds.py)."""

import pytest
import spacy
from spacy.tokens import Doc

from spacy_bioner.bounds import entity_bounds, join_adjacent, paragraph_pieces, take_letter_suffixes

VOCAB = spacy.blank("en").vocab  # lexical attributes: punctuation


@pytest.mark.parametrize(
    "words,kept",
    [
        ("dendritic cell ( DC", "dendritic cell"),
        ("] heptadecanoic acid", "heptadecanoic acid"),
        ("angiotensin-converting enzyme , ( ACE", "angiotensin-converting enzyme"),
        ("IA ( b ) ] ,", "IA ( b )"),
        ("interleukin ( IL ) -2", "interleukin ( IL ) -2"),  # balanced: kept whole
        ("[ 3H ] naloxone", "[ 3H ] naloxone"),
        ("( DC", "DC"),
        ("( , )", "( , )"),
        ("( )", "( )"),
        ("[ (", ""),  # nothing left: no entity
        ("x [ y ( z ] w ) v", "y"),  # crossing brackets: cut again (ties: the first)
        ("( IL ] -2 )", "IL"),
        ("( \n IL-2 receptor", "IL-2 receptor"),  # no whitespace at a cut end
        ("IL-2 receptor \n )", "IL-2 receptor"),
        # Nor a token of symbols or invisible characters alone.
        ("dendritic cell \u200b ( DC", "dendritic cell"),
        ("dendritic cell ® ( DC", "dendritic cell"),
        ("] \ufeff heptadecanoic acid", "heptadecanoic acid"),
        # The longest in words: a line end or a zero-width space is none.
        ("urea transporter ( UT - A1", "UT - A1"),
        ("urea \n transporter ( UT - A1", "UT - A1"),
        ("urea \u200b transporter ( UT - A1", "UT - A1"),
    ],
)
def test_an_entity_keeps_its_longest_stretch_without_an_unbalanced_bracket(words, kept):
    doc = Doc(VOCAB, words=words.split(" "))
    start, end = entity_bounds(doc, 0, len(doc), balance_brackets=True)
    assert doc[start:end].text == kept
    assert entity_bounds(doc, 0, len(doc), balance_brackets=False) == (0, len(doc))


@pytest.mark.parametrize(
    "words,kept",
    [
        (["\ufeff", "asthma", "\u200b"], "asthma"),  # a BOM, a zero-width space
        # Private use; emoji, one with a skin tone, one with a variation selector.
        (["\ue000", "Aspirin", "💊", "👍🏽", "❤️"], "Aspirin"),
        (["Na", "+"], "Na +"), (["°", "C"], "C"), (["Prozac®"], "Prozac®"),  # punctuation stays; so do glued symbols
        (["💊"], ""),
    ],
)
def test_an_entity_sheds_tokens_of_symbols_or_invisible_characters_at_its_ends(words, kept):
    doc = Doc(VOCAB, words=words)
    start, end = entity_bounds(doc, 0, len(doc), balance_brackets=False)
    assert doc[start:end].text == kept


def test_an_entity_is_cut_at_each_blank_line():
    doc = Doc(VOCAB, words=["a", "\n\n", "b", "\n", "c", " \n \t\n", "d", "\n\n"])
    assert paragraph_pieces(doc, 0, len(doc)) == [(0, 1), (2, 5), (6, 7)]
    assert paragraph_pieces(doc, 2, 5) == [(2, 5)] and paragraph_pieces(doc, 1, 2) == []
    # A blank line with a zero-width space in it, in three tokens.
    doc = Doc(VOCAB, words=["a", "\n", "\u200b", "\n", "b", "\n", "\u200b", "c"], spaces=[False] * 8)
    assert paragraph_pieces(doc, 0, len(doc)) == [(0, 1), (4, 8)]


@pytest.mark.parametrize(
    "text,entity,expected",
    [
        ("chronic hepatitis B infection", "hepatitis", "hepatitis B"),
        ("mitomycin C, then", "mitomycin", "mitomycin C"),
        ("with amphotericin B.", "amphotericin", "amphotericin B"),
        ("protein kinase C (PKC)", "protein kinase", "protein kinase C"),
        ("factor B(1) binds", "factor", "factor"),  # a bracket glued to the letter
        ("vitamin B12 levels", "vitamin", "vitamin"),  # no single letter
        ("factor B-1 binds", "factor", "factor"),
        ("type I collagen", "type", "type"),  # "I" is too often a numeral or a pronoun
        ("aspirin A and B", "aspirin", "aspirin A"),
        ("ends with hepatitis B", "hepatitis", "hepatitis B"),  # the last token
        # A double space parts as a space does; a line end, a title's or a list item's as well as a
        # wrapped line's, does not.
        ("chronic hepatitis  B infection", "hepatitis", "hepatitis  B"),
        ("chronic hepatitis\nB infection", "hepatitis", "hepatitis"),
        ("Malignant hyperthermia\nA 12-year-old boy", "hyperthermia", "hyperthermia"),
        ("chronic hepatitis\n\nB infection", "hepatitis", "hepatitis"),
        ("chronic hepatitis\u200b B infection", "hepatitis", "hepatitis\u200b B"),  # invisible: nothing
        ("factor B\u00ad-1 binds", "factor", "factor"),
    ],
)
def test_a_single_capital_letter_after_an_entity_is_part_of_it(bio_nlp, text, entity, expected):
    doc = bio_nlp(text)
    start = text.index(entity)
    span = doc.char_span(start, start + len(entity))
    assert span is not None
    ((s, e, label),) = take_letter_suffixes(doc, [(span.start, span.end, "X")])
    assert (doc[s:e].text, label) == (expected, "X")


def test_a_letter_before_unicodes_hyphen_is_no_suffix():
    """On a corpus's own tokens, where Unicode's hyphen is a token too."""
    doc = Doc(VOCAB, words=["factor", "B", "\u2010", "1", "binds"], spaces=[True, False, False, True, False])
    assert take_letter_suffixes(doc, [(0, 1, "protein")]) == [(0, 1, "protein")]


def test_no_entities_no_change(bio_nlp):
    doc = bio_nlp("hepatitis B and hemolytic anemia")
    assert take_letter_suffixes(doc, []) == [] and join_adjacent(doc, [], ["D"]) == []
    assert take_letter_suffixes(bio_nlp(""), []) == []


def test_a_letter_that_starts_another_entity_stays_with_it(bio_nlp):
    doc = bio_nlp("hepatitis B virus")
    assert take_letter_suffixes(doc, [(0, 1, "Disease"), (1, 3, "Organism")]) == [(0, 1, "Disease"), (1, 3, "Organism")]


@pytest.mark.parametrize(
    "text,entities,labels,expected",
    [
        # "hemolytic" and "anemia" are one Disease; a run of three joins too.
        ("hemolytic anemia was seen", [(0, 1, "D"), (1, 2, "D")], ["D"], [(0, 2, "D")]),
        ("a b c", [(0, 1, "D"), (1, 2, "D"), (2, 3, "D")], ["D"], [(0, 3, "D")]),
        # A double space or a no-break space parts as a space does; a line end (a list's) does not.
        ("hemolytic  anemia", [(0, 1, "D"), (2, 3, "D")], ["D"], [(0, 3, "D")]),
        ("hemolytic\u00a0anemia", [(0, 1, "D"), (2, 3, "D")], ["D"], [(0, 3, "D")]),
        ("nausea\nvomiting", [(0, 1, "D"), (2, 3, "D")], ["D"], [(0, 1, "D"), (2, 3, "D")]),
        # Other labels, labels not listed, and entities parted by a blank line, a word or punctuation stay apart.
        ("hemolytic anemia", [(0, 1, "C"), (1, 2, "D")], ["C", "D"], [(0, 1, "C"), (1, 2, "D")]),
        ("hemolytic anemia", [(0, 1, "C"), (1, 2, "C")], ["D"], [(0, 1, "C"), (1, 2, "C")]),
        ("hemolytic\n\nanemia", [(0, 1, "D"), (2, 3, "D")], ["D"], [(0, 1, "D"), (2, 3, "D")]),
        ("hemolytic\u200b anemia", [(0, 1, "D"), (2, 3, "D")], ["D"], [(0, 3, "D")]),
        ("hemolytic and anemia", [(0, 1, "D"), (2, 3, "D")], ["D"], [(0, 1, "D"), (2, 3, "D")]),
        ("anemia, fever", [(0, 1, "D"), (2, 3, "D")], ["D"], [(0, 1, "D"), (2, 3, "D")]),
        ("IL-2 receptor", [(0, 3, "D"), (3, 4, "D")], ["D"], [(0, 4, "D")]),
    ],
)
def test_entities_of_a_label_a_space_apart_are_joined(bio_nlp, text, entities, labels, expected):
    doc = bio_nlp(text)
    assert join_adjacent(doc, entities, labels) == expected
