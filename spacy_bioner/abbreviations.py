"""Abbreviation consistency: each mention of a short form takes its long form's label.

An abstract defines an abbreviation once, "haloperidol (HAL)", and then uses
the short form alone. A tagger decides each mention of "HAL" from its own
context, so mentions of one abbreviation come out with different labels, or
some with none. The annotation guidelines of BC5CDR and GENIA label a short
form as its long form is labelled, so the `bio_ner_abbreviations` component,
placed after the heads, makes each head's mentions of a short form agree with
the head's prediction for the long form:

- the long form is an entity of the head, or the end of one ("idiopathic
  Parkinson's disease (PD)": Schwartz and Hearst's long form is the
  shortest one, "Parkinson's disease"): every mention of the short form
  becomes an entity of that label (a mention already an entity of another
  label is relabelled; one that overlaps another entity is left alone);
- no entity of the head ends where the long form ends: mentions of the
  short form that the head predicted as entities are dropped.

A mention of a one-token short form is also its plural or singular, the
short form with or without a final "s" ("mast cells (MCs)": "MC"), as
abstracts use both (`plural_variants`), unless the singular is a word in
title case ("Cas": "Ca"). The stem of a numbered name is no
mention: "COX" of "COX-2" names one member of the family "COX" defines.
A short form defined again with another long form ("haloperidol (HAL)",
then "hepatic artery ligation (HAL)") has that one from there on.

In doc.ents, where the heads disagree on a mention, the entity that ends
the long form there decides: a mention that is another head's entity there
is replaced by the span of that label that a head predicted on it, so one
abbreviation is not a Chemical in one sentence and a protein in the next.

Each step is a setting, as each was measured on dev (benchmarks/README.md).
Spans that the component adds or relabels take the long form's score.

With `correct_ents`, the same corrections apply to doc.ents itself, so that
the entities of any NER component (spaCy's `ner`, a scispaCy model) gain
them: `nlp.add_pipe("bio_ner_abbreviations", config={"spans_keys": [],
"correct_ents": True, "plural_variants": True})`, last in the pipeline.

Definitions are found with the algorithm of Schwartz and Hearst (2003, "A
simple algorithm for identifying abbreviation definitions in biomedical
text"), on spaCy tokens, with the candidate rules of scispacy's
`AbbreviationDetector` and checks of Schwartz's reference implementation
(ExtractAbbrev.java): the parenthesised text ends at its first ", " or "; "
("(MDS; n = 17)"), more than two words in it make it the long form, a
short form before it has a capital letter, and a long form is no shorter
than its short form and does not contain it as a word. It is written here
because scispacy (0.6) pins numpy < 2 and brings nmslib, more than a pipeline
package should impose on its users, and PyPI's `abbreviations` works on
strings, whose results would have to be mapped back onto tokens.
"""

import re
import warnings
import weakref
from collections import defaultdict
from dataclasses import dataclass
from typing import AbstractSet, Dict, Iterable, List, Optional, Sequence, Set, Tuple

import numpy as np
from spacy.language import Language
from spacy.tokens import Doc, Span

from .annotation import (
    group_scores,
    head_ents,
    head_keys,
    may_be_head_ent,
    merge_into_ents,
    regrouped,
    set_before_heads,
    spans_with_scores,
    token_array,
)
from .bounds import unbalanced_brackets
from .chain import blank_tokens
from .tokenizer import HYPHENS, is_blank, spaced, starts_sentence, without_blank_edges

# At most this many words between the parentheses of a definition: Schwartz and Hearst's
# longest long form, for a short form of 4 characters or more.
MAX_PARENTHESIS_WORDS = 8
# Up to this many whitespace-delimited words inside the parentheses are a
# short form, "haloperidol (HAL)"; more are a long form, "HAL (haloperidol
# ...)" (Schwartz's ExtractAbbrev: more than two words).
MAX_SHORT_FORM_WORDS = 2
_PARENTHESIS_DEPTH = {"(": 1, ")": -1}
# Brackets, separating punctuation and hyphens right before a definition's "(" end no long
# form: "propionate [(TP)", "nitrosoure] (BCNU)", "dopamine-1, (DA1)"; the hyphen of a compound
# that the parentheses interrupt, "antibody-(PR3-ANCA) positive", "Dexamethasone- (Dex-) induced".
_SKIPPED_BEFORE = frozenset({"[", "]", "{", "}", ",", ";", ":"} | HYPHENS)
# Latin abbreviations of running text, in any case: "(e.g., valproate)" and
# "(i.e. the dose)" define no short form.
LATIN_ABBREVIATIONS = ("e.g.", "i.e.", "cf.", "vs.", "etc.", "et al.")
# The letter match reads a Greek letter as the Latin initial of its name, as short
# forms spell it: "γ-aminobutyric acid (GABA)", "α-synuclein (aSyn)". "µ", the
# micro sign, is written for mu.
_GREEK_INITIALS = str.maketrans("αβγδεζηθικλμνξοπρσςτυφχψωµ", "abgdezetiklmnxoprsstupcpom")


@dataclass(frozen=True)
class Abbreviation:
    """A definition of a short form in a document: its long form and the mentions
    of the short form that it defines (up to the short form's next definition)."""

    long_form: Span
    mentions: Tuple[Span, ...]

    @property
    def short_form(self) -> str:
        """The short form's text."""
        return self.mentions[0].text


def is_short_form(span: Span) -> bool:
    """Schwartz and Hearst's filter on a short-form candidate: words of 2 to 9
    characters, at least half of them letters, and a letter or digit first
    (ExtractAbbrev's rule: "5-FU"; scispacy asks for a letter). Words are
    whitespace-delimited, as scispacy's tokens are: the BioTokenizer makes
    three tokens of "cis-RA". Text that starts with a Latin abbreviation
    ("e.g.") passes that filter but is no short form."""
    text = span.text
    words = " ".join(text.lower().split()) + " "
    return (
        all(2 <= len(word) < 10 for word in text.split())
        and sum(c.isalpha() for c in text) >= len(text) / 2
        and text[0].isalnum()
        and not any(words.startswith(latin + " ") for latin in LATIN_ABBREVIATIONS)
    )


def _letter(char: str) -> str:
    """`char` as the letter match compares it."""
    return char.lower().translate(_GREEK_INITIALS)


def best_long_form(candidate: Span, short_form: Span) -> Optional[Span]:
    """The shortest end of `candidate` that `short_form` abbreviates, or None.

    Schwartz and Hearst: the short form's letters and digits are matched,
    from the last, against the candidate's characters in order, from the
    right; the first must begin a word of the long form. Case is ignored,
    and a Greek letter matches the initial of its name (`_GREEK_INITIALS`).
    """
    long_text = " ".join(token.text for token in candidate)
    short_text = " ".join(token.text for token in short_form)
    li = len(long_text) - 1
    for si in range(len(short_text) - 1, -1, -1):
        char = _letter(short_text[si])
        if not char.isalnum():
            continue
        while li >= 0 and (
            _letter(long_text[li]) != char or (si == 0 and li > 0 and long_text[li - 1].isalnum())
        ):
            li -= 1
        if li < 0:
            return None
        li -= 1
    # li + 1 is where the long form starts; it starts with the token holding it.
    offset = 0
    for i, token in enumerate(candidate):
        offset += len(token.text) + 1
        if offset > li + 1:
            return candidate[i:]
    return None


def is_long_form(long_form: Span, short_form: Span) -> bool:
    """Schwartz's ExtractAbbrev checks on a found long form: no shorter than the
    short form, and not containing it as a word ("cells (... lymphoma cells)");
    and, not in ExtractAbbrev, with its brackets balanced ("Group PS, LS) or
    rocuronium (GPR)"), as a name's are."""
    long_text, short_text = " ".join(long_form.text.split()), " ".join(short_form.text.split())
    return (
        len(long_text) >= len(short_text)
        and f" {short_text} " not in f" {long_text} "
        and not unbalanced_brackets(long_form.doc, long_form.start, long_form.end)
    )


def stems_numbered_name(doc: Doc, end: int) -> bool:
    """Whether the tokens before `end` are glued to a hyphen and a number, as
    "COX" is in "COX-2", or a capital and a number, as "PD" is in "PD-L1": the
    stem of a numbered name, not a mention of it."""
    return (
        end + 1 < len(doc)
        and not doc[end - 1].whitespace_
        and doc[end].text in HYPHENS
        and not doc[end].whitespace_
        and (doc[end + 1].text[:1].isdigit() or _NUMBERED_PART.match(doc[end + 1].text) is not None)
    )


# The part of a numbered name after its stem's hyphen that starts with a capital: "L1" of "PD-L1".
_NUMBERED_PART = re.compile(r"[A-Z]\d")


def words_back(doc: Doc, end: int, n_words: int) -> int:
    """Where the last `n_words` words before token `end` start. Words are
    Schwartz and Hearst's, cut at whitespace, not tokens: the BioTokenizer's
    hyphens would spend the window of "1-methyl-4-phenyl-1,2,3,6-tetrahydropyridine
    (MPTP)" within its one word."""
    start = end
    words = 0
    while start > 0 and words < n_words:
        start -= 1
        words += _begins_word(doc, start)
    return start


def _begins_word(doc: Doc, i: int) -> bool:
    """Token `i` begins a word: it is no blank token ("\n"), and whitespace or nothing is before it."""
    before = doc[i - 1] if i else None
    return not is_blank(doc[i]) and (before is None or bool(before.whitespace_) or is_blank(before))


def _closing_parenthesis(doc: Doc, start: int) -> Optional[int]:
    """The index of the ")" closing the "(" at `start`, if it comes within
    `MAX_PARENTHESIS_WORDS` words (as `words_back` counts them)."""
    depth = _PARENTHESIS_DEPTH.get(doc[start].text, 0)
    words = 0
    for i in range(start + 1, len(doc)):
        depth += _PARENTHESIS_DEPTH.get(doc[i].text, 0)
        if depth == 0:
            return i
        # The first word inside follows the "(" without a space.
        words += i == start + 1 or _begins_word(doc, i)
        if words > MAX_PARENTHESIS_WORDS:
            return None
    return None


def _last_word(doc: Doc, end: int) -> int:
    """Where the word before token `end` starts (`words_back`), past the brackets
    and quotes it opens with: "(TNF-alpha (tumor necrosis factor alpha))"."""
    start = words_back(doc, end, 1)
    while start < end - 1 and not doc[start].text[0].isalnum():
        start += 1
    return start


def _cut(doc: Doc, start: int, close: int) -> int:
    """Where the parenthesised text from `start` ends for a definition: at its
    first ", " or "; " outside nested brackets ("(MDS; n = 17)": "MDS"), as
    ExtractAbbrev cuts it, else at `close`."""
    depth = 0
    for i in range(start, close):
        depth += _PARENTHESIS_DEPTH.get(doc[i].text, 0)
        if depth == 0 and i > start and doc[i].text in {",", ";"} and spaced(doc[i]):
            return i
    return close


def _definitions(doc: Doc, openings: Iterable[int]) -> Iterable[Tuple[Span, Span]]:
    """(long form, short form) of each definition in `doc`, in order, from
    the positions of its "(" tokens."""
    for opening in openings:
        if opening == 0:
            continue
        close = _closing_parenthesis(doc, opening)
        # A bracket that opens a sentence ("MDMA is used. (MDS; n = 17)") follows no long or short form.
        if close is None or close == opening + 1 or starts_sentence(doc, opening):
            continue
        # The text before "(" ends at its last word: no entity ends on whitespace
        # ("haloperidol\n(HAL)") or on a bracket or hyphen before it, so a long form ending
        # there would support no mention.
        before = opening
        while before > 0 and (is_blank(doc[before - 1]) or doc[before - 1].text in _SKIPPED_BEFORE):
            before -= 1
        if before == 0:
            continue
        # Where the parentheses interrupt a hyphenated compound, a hyphen ending them is that
        # compound's: "Dexamethasone- (Dex-) induced" defines "Dex", mentioned in "Dex-induced"
        # (but "knockout (VIP-/-)" defines "VIP-/-").
        end = _cut(doc, opening + 1, close)
        if any(token.text in HYPHENS for token in doc[before:opening]):
            while end > opening + 1 and doc[end - 1].text in HYPHENS:
                end -= 1
        # Whitespace inside the brackets ("(XSCID\n)", a line wrapped there) is no part of either form.
        first, end = without_blank_edges(doc, opening + 1, end)
        if first == end:
            continue
        inside = doc[first:end]
        long_inside = len(inside.text.split()) > MAX_SHORT_FORM_WORDS
        if long_inside:  # "HAL (haloperidol ...)"
            short, candidate = doc[_last_word(doc, before) : before], inside
            # ExtractAbbrev: a short form before the parentheses has a capital letter.
            if not any(c.isupper() for c in short.text):
                continue
        else:  # "haloperidol (HAL)": at most min(|SF| + 5, 2|SF|) words back
            n_chars = sum(len(t) for t in inside)
            short = inside
            start = words_back(doc, before, min(n_chars + 5, 2 * n_chars))
            # Not in Schwartz and Hearst: within the sentence ("alternatives. Two patients treated
            # with parenteral paramethasone (Triniol)").
            start = next((i for i in range(before - 1, start, -1) if starts_sentence(doc, i)), start)
            candidate = doc[start:before]
        if len(candidate) == 0 or not is_short_form(short):
            continue
        long_form = best_long_form(candidate, short)
        # Not in Schwartz and Hearst: in "SF (LF)" the long form is all of the
        # parenthesised text, not its end ("LNNA (0.5 g/L in drinking water)").
        if long_form is not None and long_inside and long_form.start != inside.start:
            continue
        if long_form is not None and is_long_form(long_form, short):
            yield long_form, short


def find_abbreviations(doc: Doc, plural_variants: bool = False) -> List[Abbreviation]:
    """The abbreviations defined in `doc`, each with its mentions, in the order of their definitions.

    A short form defined again with another long form ("haloperidol (HAL)",
    then "hepatic artery ligation (HAL)") makes one abbreviation of each
    definition: each has the mentions from its definition to the next one of
    the same short form, and the first also those before it. The same long
    form again, in any case, is no new definition; a long form defined again
    with another short form keeps its first one.
    Mentions are the token sequences equal to the short form, the one in the
    definition included, but not those glued to a hyphen and a number
    ("COX-2"); with `plural_variants`, then the tokens equal to a one-token
    short form with or without a final "s" ("MCs" and "MC"), of 2 characters
    at least and with a singular not in title case ("Cas" and "Ca" are no
    plural and singular), unless that variant is defined first itself.
    """
    # The tokens but blank ones (a line end inside "TNF\nalpha" is none of a mention's words).
    words_at = np.flatnonzero(~blank_tokens(doc)).tolist()
    texts = [doc[i].text for i in words_at]
    # Where each token text occurs: a mention starts at one of its first word's
    # positions, so a long document is not scanned again for every definition.
    positions: Dict[str, List[int]] = defaultdict(list)
    for k, text in enumerate(texts):
        positions[text].append(k)
    definitions = _distinct_definitions(doc, [words_at[k] for k in positions.get("(", ())], plural_variants)
    # A definition's mentions end where the next definition of its short form starts.
    ends: List[int] = []
    next_start: Dict[str, int] = {}
    for long_form, short, key, _ in reversed(definitions):
        ends.append(next_start.get(key, len(doc)))
        next_start[key] = min(long_form.start, short.start)
    found = []
    defined: Set[str] = set()
    for (long_form, short, key, mention_words), end in zip(definitions, reversed(ends)):
        # The first definition of a short form also has the mentions before it, as in Schwartz and Hearst.
        start = min(long_form.start, short.start) if key in defined else 0
        defined.add(key)
        mentions = []
        for words in mention_words:
            for k in positions.get(words[0], ()):
                if not (start <= words_at[k] < end and texts[k : k + len(words)] == words):
                    continue
                mention = doc[words_at[k] : words_at[k + len(words) - 1] + 1]
                if not (long_form.start <= mention.start and mention.end <= long_form.end or
                        stems_numbered_name(doc, mention.end)):
                    mentions.append(mention)
        found.append(Abbreviation(long_form, tuple(mentions)))
    return found


def _distinct_definitions(
    doc: Doc, openings: Iterable[int], plural_variants: bool
) -> List[Tuple[Span, Span, str, List[List[str]]]]:
    """The definitions of `_definitions` that define something new, each with
    its short form's words (joined by a space: blank tokens are none) and the
    token texts of its short form's mentions: the short form's own, then,
    with `plural_variants`, its plural or singular (`_plural_variant`). None
    new: a long form defined before with another short form, a short form's
    current long form again (in any case), a plural variant of a short form
    defined before."""
    short_of_long: Dict[str, str] = {}
    current: Dict[str, str] = {}  # short form -> its last long form, lowercased
    mention_words: Dict[str, List[List[str]]] = {}  # short form -> its mentions' token texts
    variants: Set[str] = set()
    distinct = []
    for long_form, short in _definitions(doc, openings):
        # Both forms by their words: whitespace inside them is none of them.
        words = [token.text for token in short if not is_blank(token)]
        text, long_text = " ".join(words), " ".join(token.text for token in long_form if not is_blank(token))
        if (
            text in variants
            or short_of_long.setdefault(long_text, text) != text
            or current.get(text) == long_text.lower()
        ):
            continue
        current[text] = long_text.lower()
        if text not in mention_words:
            mention_words[text] = [words]
            variant = _plural_variant(words) if plural_variants else None
            # One short form has the variant's mentions: a later definition of it is skipped.
            if variant is not None and variant not in mention_words and variant not in variants:
                variants.add(variant)
                mention_words[text].append([variant])
        distinct.append((long_form, short, text, mention_words[text]))
    return distinct


def _plural_variant(words: List[str]) -> Optional[str]:
    """A one-token short form with or without a final "s", if that is its plural or singular."""
    if len(words) != 1:
        return None
    variant = words[0][:-1] if words[0].endswith("s") else words[0] + "s"
    # A one-letter variant ("T" of "Ts") is too often something else, and so is a singular
    # in title case: "Crk-associated substrate (Cas)" names no plural of calcium's "Ca".
    singular = min(variant, words[0], key=len)
    return variant if len(variant) >= 2 and not singular.istitle() else None


class _LastDocument:
    """The abbreviations found in the last document, kept for the next
    component that asks: a pipeline holds one abbreviation component per
    head, and each runs on a document right after the one before it. They
    are given again only for the same Doc object with the same tokens, and
    the same `plural_variants`. The Doc is held weakly and the abbreviations
    as token offsets, so that a document the caller has let go (its tensors,
    its `_.trf_data`) is freed as it would be without this."""

    def __init__(self) -> None:
        self._last: Optional[Tuple[weakref.ref, np.ndarray, bool, List[Tuple[Tuple[int, int], ...]]]] = None

    def find(self, doc: Doc, plural_variants: bool) -> List[Abbreviation]:
        """`find_abbreviations(doc, plural_variants)`, found once for the components of one document."""
        tokens = token_array(doc)
        last = self._last  # one read: another thread may replace it meanwhile
        if last is not None and last[0]() is doc and last[2] == plural_variants and np.array_equal(last[1], tokens):
            return [Abbreviation(doc[slice(*bounds[0])], tuple(doc[slice(*b)] for b in bounds[1:])) for bounds in last[3]]
        found = find_abbreviations(doc, plural_variants)
        offsets = [
            tuple((span.start, span.end) for span in (abbreviation.long_form, *abbreviation.mentions))
            for abbreviation in found
        ]
        self._last = (weakref.ref(doc), tokens, plural_variants, offsets)
        return found


_last_document = _LastDocument()


@Language.factory(
    "bio_ner_abbreviations",
    assigns=["doc.ents", "doc.spans"],
    requires=["doc.spans"],
    default_config={
        "spans_keys": None,
        "add_missing": True,
        "relabel": True,
        "remove_unsupported": True,
        "ents_follow_long_form": False,
        "plural_variants": False,
        "correct_ents": False,
    },
)
def make_abbreviation_consistency(
    nlp: Language,
    name: str,
    spans_keys: Optional[List[str]],
    add_missing: bool,
    relabel: bool,
    remove_unsupported: bool,
    ents_follow_long_form: bool,
    plural_variants: bool,
    correct_ents: bool,
) -> "AbbreviationConsistency":
    """Create the component that makes short forms agree with their long forms.

    spans_keys: the heads (span keys) to correct; None for every bio_ner head
        of the pipeline it is created in, [] for none. Sourced into another
        pipeline, it keeps its source's heads until that pipeline is saved and
        loaded: name the keys there.
    add_missing: mentions of a short form whose long form is an entity (or the
        end of one) become entities too.
    relabel: mentions predicted with another label take the long form's.
    remove_unsupported: mentions predicted as entities are dropped when no
        entity of the head ends where the long form ends.
    ents_follow_long_form: in doc.ents, a mention that is an entity of
        another label than the entity ending the long form there takes a
        head's span of that label on the same tokens, where there is one.
    plural_variants: a one-token short form's mentions include its plural or
        singular, with or without a final "s" ("MCs" and "MC").
    correct_ents: correct doc.ents itself, as a head's group is corrected,
        after the heads: for entities predicted by another component (spaCy's
        `ner`, a scispaCy model); entities with an id or a kb_id (an entity
        ruler's pattern, a linker's) stay as they are. With spans_keys [],
        only doc.ents.
    The last three are off by default, so that pipelines saved before they
    existed predict as they did; the configs set the first two. Like the
    heads' bounds settings, these are the pipeline's config
    (`spacy.load(path, config=...)` changes them; an attribute changed at
    runtime is not saved).
    """
    return AbbreviationConsistency(
        nlp,
        name,
        spans_keys=spans_keys,
        add_missing=add_missing,
        relabel=relabel,
        remove_unsupported=remove_unsupported,
        ents_follow_long_form=ents_follow_long_form,
        plural_variants=plural_variants,
        correct_ents=correct_ents,
    )


class AbbreviationConsistency:
    """Makes each head's mentions of a short form agree with its long form
    (and those of doc.ents, with `correct_ents`)."""

    def __init__(
        self,
        nlp: Language,
        name: str = "bio_ner_abbreviations",
        *,
        spans_keys: Optional[Sequence[str]] = None,
        add_missing: bool = True,
        relabel: bool = True,
        remove_unsupported: bool = True,
        ents_follow_long_form: bool = False,
        plural_variants: bool = False,
        correct_ents: bool = False,
    ) -> None:
        self.nlp = nlp
        self.name = name
        self._spans_keys = None if spans_keys is None else list(spans_keys)
        self.add_missing = add_missing
        self.relabel = relabel
        self.remove_unsupported = remove_unsupported
        self.ents_follow_long_form = ents_follow_long_form
        self.plural_variants = plural_variants
        self.correct_ents = correct_ents
        # Configured keys are checked against the pipeline's heads on the first
        # doc: the heads may be added after this component is created.
        self._keys_checked = False

    @property
    def spans_keys(self) -> List[str]:
        """The span keys of the heads this component corrects."""
        if self._spans_keys is None:
            return list(head_keys(self.nlp))
        return self._spans_keys

    def __call__(self, doc: Doc) -> Doc:
        """Make each head's mentions of the doc's short forms agree with their long forms."""
        if not self._keys_checked:
            self._warn_unknown_keys()
        keys = [key for key in self.spans_keys if key in doc.spans]
        abbreviations = _last_document.find(doc, self.plural_variants) if keys or self.correct_ents else []
        if not abbreviations:
            return doc
        heads = list(dict.fromkeys([*head_keys(self.nlp), *keys]))
        if keys:
            self._correct_heads(doc, keys, abbreviations)
        if self.correct_ents:
            self._correct_ents(doc, abbreviations)
        if self.ents_follow_long_form:
            self._ents_follow_long_forms(doc, heads, abbreviations)
        return doc

    def _correct_heads(self, doc: Doc, keys: List[str], abbreviations: List[Abbreviation]) -> None:
        """Correct the groups of the heads with `keys`, then their entities in doc.ents."""
        gone: Set[Tuple[int, int, str]] = set()
        added: List[Tuple[Span, float]] = []
        for key in keys:
            key_gone, key_added = self._correct(doc, key, abbreviations)
            gone |= key_gone
            added += key_added
        # All heads first, then doc.ents: a head's new entity may clash with
        # one that another head has just dropped.
        # Only the heads' entities go: one set by a ruler or the user stays. A
        # span gone from a head's group is the head's in doc.ents where `head_ents`
        # took it for the head's before (`may_be_head_ent`).
        set_before = set_before_heads(doc)
        gone &= {(ent.start, ent.end, ent.label_) for ent in doc.ents if may_be_head_ent(ent, set_before)}
        if gone or added:
            # A span of any head that lost its place to one gone may have it now.
            merge_into_ents(doc, [span for span, _ in added], [score for _, score in added], replacing=gone)

    def _ents_follow_long_forms(self, doc: Doc, heads: List[str], abbreviations: List[Abbreviation]) -> None:
        """Give each mention in doc.ents the label of the doc.ents entity that
        ends its long form, where a head predicted that label on the mention."""
        ents = {(ent.start, ent.end): ent for ent in doc.ents}
        ending = {end: ent.label_ for (_, end), ent in ents.items()}
        # Mentions whose entity has another label than the one ending their long form.
        disagreeing = [
            (span, label)
            for abbreviation in abbreviations
            if (label := ending.get(abbreviation.long_form.end)) is not None
            for span in ((mention.start, mention.end) for mention in abbreviation.mentions)
            if span in ents and ents[span].label_ != label
        ]
        if not disagreeing:
            return
        offered: Set[Tuple[int, int, str]] = {
            (span.start, span.end, span.label_) for key in heads for span in doc.spans.get(key, [])
        }
        placed = head_ents(doc, heads)
        changed = False
        for span, label in disagreeing:
            # Entities no head placed (a ruler's, the user's) stay.
            if (*span, ents[span].label_) in placed and (*span, label) in offered:
                ents[span] = Span(doc, *span, label=label)
                changed = True
        if changed:
            doc.ents = [ents[span] for span in sorted(ents)]

    def _warn_unknown_keys(self) -> None:
        """Warn once about configured keys that no head of the pipeline writes: a
        misspelt or excluded head would otherwise leave its short forms silently uncorrected."""
        self._keys_checked = True
        # Disabled heads count: `select_pipes` turns them off for a while, on purpose.
        names = head_keys(self.nlp, include_disabled=True)
        heads = sorted(names)
        order = self.nlp.component_names
        wanted = heads if self._spans_keys is None else [key for key in self._spans_keys if key in names]
        later = sorted((names[key] for key in wanted
                        if self.name in order and order.index(names[key]) > order.index(self.name)), key=order.index)
        if later:
            warnings.warn(
                f"{self.name}: runs before the head{'s' * (len(later) > 1)} {', '.join(map(repr, later))}, "
                "whose entities are not there yet to correct: place it after them (add_pipe(..., "
                f"after={later[-1]!r}), or its place in [nlp] pipeline)."
            )
        if self._spans_keys is None:
            if not heads and not self.correct_ents:
                warnings.warn(
                    f"{self.name}: the pipeline has no bio_ner head, so no short form is corrected. To "
                    "correct the entities of another NER component (spaCy's `ner`), set correct_ents = true."
                )
            return
        unknown = [key for key in self._spans_keys if key not in heads]
        if unknown:
            warnings.warn(
                f"{self.name}: spans_keys {unknown} name no bio_ner head of the pipeline (its heads "
                f"write {heads}): only a document that holds such a group already has its short forms "
                "corrected there. Set spans_keys to the heads' "
                "span keys, or leave this component out with the heads it was meant for."
            )

    def _correct(
        self, doc: Doc, key: str, abbreviations: List[Abbreviation]
    ) -> Tuple[Set[Tuple[int, int, str]], List[Tuple[Span, float]]]:
        """Correct doc.spans[key]; return the (start, end, label) of the spans
        it lost, and the spans it gained with their scores."""
        # Scores that still fit the group (group_scores): a group changed since has none.
        has_scores = group_scores(doc.spans[key]) is not None
        before = {(span.start, span.end): (span.label_, score) for span, score in spans_with_scores(doc, key)}
        entities = self._consistent(len(doc), before, abbreviations)
        if entities == before:
            return set(), []
        ordered = sorted(entities.items())
        spans = [Span(doc, start, end, label=label) for (start, end), (label, _) in ordered]
        scores = [score for _, (_, score) in ordered]
        # The same group, corrected: its other attributes stay.
        doc.spans[key] = regrouped(doc, key, doc.spans[key], spans, scores if has_scores else None)
        old = {(start, end, label) for (start, end), (label, _) in before.items()}
        new = {(span.start, span.end, span.label_) for span in spans}
        # A span without a score (a group not written by bio_ner) gives way to scored ones.
        added = [
            (span, 0.0 if score is None else score)
            for span, score in zip(spans, scores)
            if (span.start, span.end, span.label_) not in old
        ]
        return old - new, added

    def _correct_ents(self, doc: Doc, abbreviations: List[Abbreviation]) -> None:
        """Correct doc.ents as a head's group is corrected. An entity with an id or
        a kb_id (an entity ruler's pattern, a linker's), or one the heads found set
        before them (`set_before_heads`), is kept as it is."""
        ents = {(ent.start, ent.end): ent for ent in doc.ents}
        before: Dict[Tuple[int, int], Tuple[str, Optional[float]]] = {
            span: (ent.label_, None) for span, ent in ents.items()
        }
        set_before = set_before_heads(doc)
        kept = {span for span, ent in ents.items() if not may_be_head_ent(ent, set_before)}
        entities = self._consistent(len(doc), before, abbreviations, kept)
        if entities != before:
            doc.ents = [
                ents[span] if before.get(span) == value else Span(doc, *span, label=value[0])
                for span, value in sorted(entities.items())
            ]

    def _consistent(
        self,
        n_tokens: int,
        before: Dict[Tuple[int, int], Tuple[str, Optional[float]]],
        abbreviations: List[Abbreviation],
        kept: AbstractSet[Tuple[int, int]] = frozenset(),
    ) -> Dict[Tuple[int, int], Tuple[str, Optional[float]]]:
        """Non-overlapping entities, (start, end) -> (label, score), with their
        mentions of short forms made to agree with their long forms under this
        component's settings; those in `kept` are neither relabelled nor dropped."""
        entities = dict(before)
        # Kept up to date with `entities`, so that a long document is not scanned for every mention.
        covered = np.zeros(n_tokens, dtype=np.int32)  # entities on each token
        starts_by_end: Dict[int, Set[int]] = defaultdict(set)

        def add(span: Tuple[int, int], value: Tuple[str, Optional[float]]) -> None:
            entities[span] = value
            covered[span[0] : span[1]] += 1
            starts_by_end[span[1]].add(span[0])

        def remove(span: Tuple[int, int]) -> None:
            del entities[span]
            covered[span[0] : span[1]] -= 1
            starts_by_end[span[1]].discard(span[0])

        for span, value in before.items():
            add(span, value)
        for abbreviation in abbreviations:
            long_form = abbreviation.long_form
            # The entity that ends the long form: the long form is the shortest
            # one the letters allow, so the entity may start inside it ("of haloperidol":
            # "haloperidol") or before it ("idiopathic Parkinson's disease": "Parkinson's disease").
            long_entities = [(start, long_form.end) for start in starts_by_end[long_form.end]]
            for mention in abbreviation.mentions:
                span = (mention.start, mention.end)
                if span in kept:
                    continue
                if len(long_entities) != 1:
                    if self.remove_unsupported and span in entities:
                        remove(span)
                elif span in entities:
                    # Only another label is changed: a mention already labelled
                    # as the long form keeps its own score.
                    if self.relabel and entities[span][0] != entities[long_entities[0]][0]:
                        entities[span] = entities[long_entities[0]]
                elif self.add_missing and not covered[span[0] : span[1]].any():
                    add(span, entities[long_entities[0]])
        return entities
