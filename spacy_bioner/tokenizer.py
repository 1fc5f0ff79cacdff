"""Tokenizer and sentence rules for biomedical text.

spaCy's English tokenizer keeps chemical formulae, ion names and hyphenated
compounds together ("[3H]-naloxone", "Na+/K+-ATPase", "CaCl(2)-treated",
"thallium-201"), so many BC5CDR mentions ("naloxone", "Na", "CaCl(2)",
"thallium") would start or end inside a token and could not be represented
as token spans. The extra rules below split on the characters that separate
the parts of such names, and follow GENIA's tokens (JNLPBA has "=", "<" and
">" as tokens of their own 371 times, glued to a neighbour 4 times). On the
BC5CDR PubTator training set every mention falls on token boundaries
(tested); 10 dev mentions do not (benchmarks/README.md). The comparison,
period-before-bracket and emoticon rules were found while reading test-set
mentions that did not fall on token boundaries; their examples here come
from the training set, where each pattern is as frequent as in the test set.

Pre-tokenized corpora (JNLPBA, BC5CDR IOB) keep their own tokens; this
tokenizer is for raw text (PubTator documents and inference).

The sentence rules (`starts_sentence`) are written here too, on these
tokens, rather than taken from pysbd (scispacy's splitter), which breaks at
list items ("1)", "(i)") that the corpora's sentences keep whole. They are
checked against the sentences of BC5CDR's IOB form and of JNLPBA
(benchmarks/README.md, "Sentence rules").
"""

import re
import unicodedata
from typing import Callable, Iterable, List, Tuple

import numpy
import spacy
from spacy.attrs import SENT_START
from spacy.lang.en import English
from spacy.lang.tokenizer_exceptions import emoticons
from spacy.language import Language
from spacy.tokenizer import Tokenizer
from spacy.tokens import Doc, Span, Token
from spacy.util import compile_infix_regex, compile_prefix_regex, compile_suffix_regex

# The characters that join the parts of a name as ASCII's hyphen does, split as
# it is by the rules below, so each is a token of its own (as in a corpus's own
# tokens): Unicode's hyphen and non-breaking hyphen (U+2010, U+2011), the en dash,
# which typeset text has in compounds and ranges ("Na+–K+", "thallium–201",
# "10–20") where plain text has "-", and the minus sign (U+2212), which it has in
# charges, exponents and enantiomers ("Na+/K+−ATPase", "10−6 M", "(−)-nicotine").
HYPHENS = frozenset({"-", "\u2010", "\u2011", "\u2013", "\u2212"})
_HYPHEN = "".join(re.escape(hyphen) for hyphen in sorted(HYPHENS))
# Invisible characters of web, PDF and full-text exports (zero-width space, word
# joiner, a BOM inside the text, soft hyphen): split off a word's ends, so that an
# entity or a sentence-final period is not glued to one; inside a word they stay.
INVISIBLE = "\u200b\u2060\ufeff\u00ad"
# Comparisons, split from their operands as GENIA has them: "P<0.01", "n=12", "age ≥65".
# spaCy splits "<", ">" and "=" off a token's start, not the others.
_COMPARISON = "=<>≤≥≠"

# A period or comma between a word of two letters or more and the citation numbers
# that end the token ("12", "3,4", "12-14"): where a full text's superscript lost its
# markup. Decimals ("7.4") and names ("1,2-dichloroethane", "CD4.1") have no such word.
_CITATION_NUMBERS = rf"\d{{1,3}}(?:[,{_HYPHEN}]\d{{1,3}})*"
_CITATION = rf"(?<=[^\W\d_]{{2}})[.,](?={_CITATION_NUMBERS}$)"
_CITATION_PIECE = re.compile(rf"{_CITATION_NUMBERS}|[,{_HYPHEN}]")  # a token of them

# The characters the infixes below split at, whatever lies beside them.
_INFIX_MARKS = _HYPHEN + re.escape("/+±()[]{}") + _COMPARISON

# Split inside a token (never at its first or last character: lookarounds).
# spaCy already splits "dopamine,noradrenaline"; commas between digits
# ("1,2-dichloroethane") stay inside the name. Letters glued to digits
# ("5-HT6", "Ca2+", "CD28") are not split: that would break gene names, for
# the few BC5CDR mentions that end inside such a token.
BIO_INFIXES = [
    # Hyphens, slashes and plus signs join the parts of chemical names and ion
    # lists: "[3H]-naloxone", "thallium-201", "Na+/K+", "GSPE+drug". spaCy
    # only splits a hyphen before a letter. "±" splits as GENIA's "+/-" does ("5±2").
    rf"(?<=\S)[{_HYPHEN}/+±](?=\S)",
    # Comparisons glued to a value: "P<0.01", "(>or=10.8", "n=12".
    # spaCy splits them only before a letter; GENIA has them as tokens.
    rf"(?<=\S)[{_COMPARISON}](?=\S)",
    # A sentence-final period glued to a bracket: "rats.(ABSTRACT TRUNCATED
    # AT 250 WORDS)". The suffix rule below sees only a token's end.
    r"(?<=[A-Za-z0-9)\]])\.(?=[(\[])",
    # Brackets inside a token: "GABA(A)", "[Na]o", "CaCl(2)-treated",
    # "(PAN)-induced". The name stays a sequence of whole tokens.
    r"(?<=\S)[()\[\]{}](?=\S)",
    # An invisible character beside one of the characters split above is at a
    # word's end, as at a space: "IL\u00ad-2" is "IL" "\u00ad" "-" "2".
    rf"(?<=\S)[{INVISIBLE}](?=[{_INFIX_MARKS}])|(?<=[{_INFIX_MARKS}])[{INVISIBLE}](?=\S)",
    # A full text's citation numbers, superscript flattened into the text, after
    # a word's period or comma: "cisplatin.12", "anxiety.3,4", "rats,12-14".
    _CITATION,
]

# Split at the end of a token.
BIO_SUFFIXES = [
    # Charges and dangling hyphens: "Na+", "K+", "Diazepam- and ...".
    rf"[+{_HYPHEN}]",
    rf"[{INVISIBLE}]",
    # A sentence-final period after a capital ("AmB.", "vitamin D.");
    # spaCy only splits it after two capitals. The tokenizer exceptions
    # ("e.g.", "i.e.", "Dr.") are matched before affixes and stay whole; other
    # dotted abbreviations lose their last period ("U.S." -> "U.S" "."), which
    # `set_sentence_starts` does not take for a sentence end.
    rf"(?<=[A-Za-z0-9)\]{INVISIBLE}])\.",
]

# Split at the start of a token: "+/-", "±5", "-induced" after a bracket, "≥65".
BIO_PREFIXES = [rf"[+±{_HYPHEN}{_COMPARISON}{INVISIBLE}]"]


@spacy.registry.tokenizers("spacy_bioner.BioTokenizer.v1")
def create_bio_tokenizer() -> Callable[[Language], Tokenizer]:
    """spaCy's English tokenizer plus the biomedical affix rules above."""

    def make_tokenizer(nlp: Language) -> Tokenizer:
        prefixes = list(nlp.Defaults.prefixes or English.Defaults.prefixes) + BIO_PREFIXES
        suffixes = list(nlp.Defaults.suffixes or English.Defaults.suffixes) + BIO_SUFFIXES
        infixes = list(nlp.Defaults.infixes or English.Defaults.infixes) + BIO_INFIXES
        # No emoticons: spaCy re-joins tokens that spell one after the affix
        # rules, so "(IL-8)" would give "8)" and "10(-8) M" "(-8".
        rules = {
            orth: pieces for orth, pieces in (nlp.Defaults.tokenizer_exceptions or {}).items()
            if orth not in emoticons
        }
        return Tokenizer(
            nlp.vocab,
            rules=rules,
            prefix_search=compile_prefix_regex(prefixes).search,
            suffix_search=compile_suffix_regex(suffixes).search,
            infix_finditer=compile_infix_regex(infixes).finditer,
            token_match=nlp.Defaults.token_match,
            url_match=nlp.Defaults.url_match,
        )

    return make_tokenizer


def make_bio_nlp() -> Language:
    """A blank English pipeline with the biomedical tokenizer."""
    nlp = spacy.blank("en")
    nlp.tokenizer = create_bio_tokenizer()(nlp)
    return nlp


# Sentence ends: a token that is only terminal punctuation.
_TERMINALS = {".", "!", "?"}
# Quotes and brackets that can close a sentence after its terminal punctuation.
_CLOSERS = {'"', "'", "\u201d", "\u2019", ")", "]"}
# Words that a period follows without ending the sentence ("et al. 1990",
# "Fig. 2", "vs. placebo", "cf. Fig. 2", "e.g. NF-kB" in a corpus's tokens), in
# the cases they take, upper case included (titles in capitals: "FIG. 2", "ET AL."):
# "Al.", "Ca.", "NO." and "CF." end sentences about aluminium, calcium, nitric
# oxide and cystic fibrosis.
# Taxonomy's ranks ("Lactobacillus spp. (LS)", "Oryza sativa cv. Nipponbare") are among them.
_ABBREVIATIONS = {"al", "AL", "ca", "no", "No", "cf", "Cf", "e.g", "E.g", "i.e", "I.e",
                  "sp", "spp", "ssp", "subsp", "var", "cv"} | {
    form for word in ("fig", "figs", "vs", "approx", "dr", "ref", "resp", "eq")
    for form in (word, word.capitalize(), word.upper())
}
# A letter in lower case with its period, one token by spaCy's exceptions: in
# abstracts, a unit ("within 24 h.", "554 mg/l.", "for 5 d.").
_UNIT_WITH_PERIOD = re.compile(r"[a-z]\.")
# Greek letters' names, with which gene and protein names begin ("alpha 4 integrins mediate").
_GREEK_LETTERS = frozenset(
    "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma "
    "tau upsilon phi chi psi omega".split()
)
# A word in lower case joined by a hyphen to a word: "c-myc", "dl-Sotalol" (not "kg-1").
_HYPHENATED_WORD = re.compile(rf"[a-z]+[{_HYPHEN}][^\W\d_]")


def starts_sentence(doc: Doc, i: int) -> bool:
    """Whether token `i` starts a sentence by the rules above, forced starts aside: after a
    blank line, and after terminal punctuation, by the last two tokens before it that are not
    whitespace ("works." "\n" "The": the whitespace stays with the sentence it follows), nor
    quotes, brackets or citation numbers that close the sentence, attached to its terminal
    punctuation ('said "it works." The': the quote stays with its sentence, "The" starts the
    next)."""
    if i == 0:
        return True
    if is_blank(doc[i]) or _closes_sentence(doc, i):
        return False
    if _after_blank_line(doc, i):
        return True
    before: List[Token] = []
    closed = False  # closers passed over
    j = i - 1
    while j >= 0 and len(before) < 2:
        # Until the terminal is found, the closers attached to it are passed over too.
        closer = not before and _closes_sentence(doc, j)
        closed = closed or closer
        if not (is_blank(doc[j]) or closer):
            before.append(doc[j])
        j -= 1
    return len(before) == 2 and _ends_sentence(before[1].text, before[0], doc[i], closed)


def _after_blank_line(doc: Doc, i: int) -> bool:
    """Whether a blank line (two line breaks in the whitespace, or a paragraph separator or form
    feed) lies between token `i` and the word before it: a title or heading without a period ends
    there."""
    j = i - 1
    breaks = 0
    while j >= 0 and is_blank(doc[j]):
        text = doc[j].text
        breaks += text.count("\n") + 2 * (text.count("\u2029") + text.count("\f"))
        j -= 1
    return j >= 0 and breaks >= 2


def is_blank(token: Token) -> bool:
    """Whitespace, or invisible characters alone (a token of its own, which this tokenizer splits
    off): what lies between sentences and words, with no wordpiece of a WordPiece encoder."""
    return is_blank_text(token.text)


def without_blank_edges(doc: Doc, start: int, end: int) -> Tuple[int, int]:
    """Tokens [start, end) less the blank tokens at their edges (start == end where all are blank)."""
    while start < end and is_blank(doc[start]):
        start += 1
    while end > start and is_blank(doc[end - 1]):
        end -= 1
    return start, end


def is_blank_text(text: str) -> bool:
    """`is_blank` of a token's text."""
    return text.isspace() or not text.strip(INVISIBLE)


def spaced(token: Token) -> bool:
    """Whether whitespace follows `token`: its own, or a blank token after it ("h." "\n" "Few")."""
    doc = token.doc
    return bool(token.whitespace_) or (token.i + 1 < len(doc) and is_blank(doc[token.i + 1]))


def _ends_sentence(prev: str, terminal: Token, nxt: Token, closed: bool) -> bool:
    """Whether `terminal`, after the word `prev`, ends a sentence that `nxt` starts, with
    `closed` whether a quote or bracket closed it."""
    unit = bool(_UNIT_WITH_PERIOD.fullmatch(terminal.text))
    if (unit or terminal.text == ".") and _is_section_label(nxt):  # "et al. RESULTS: In", "i.v. METHODS:"
        return True
    # A unit ("24 h.") or a dotted abbreviation in lower case that lost its last period to the
    # tokenizer ("p.o" ".", "b.i.d" ".") ends a sentence only before a word in title case, with a
    # space between ("within 24 h. Few days later", "30 mg/kg p.o. Together"): not before
    # a bracket or a digit ("naloxone s.c. (P<0.05)"), an abbreviation ("125 mg i.v. MP
    # before"), or inside a word ("p.Val204Asp"). "U.S" and other capitals' end none.
    dotted = "." in prev and prev.rsplit(".", 1)[1].isalpha()
    if unit or (terminal.text == "." and dotted and prev.islower()):
        title_case = nxt.text[:1].isupper() and nxt.text[1:2].islower()
        return title_case and not closed and spaced(terminal)
    if terminal.text not in _TERMINALS:
        return False
    if terminal.text == "." and (dotted or prev in _ABBREVIATIONS):
        return False
    # A decimal ("... was 1.6. The") ends a sentence; "0.5 mg. kg" does not.
    return _opens_sentence(nxt)


def _opens_sentence(token: Token) -> bool:
    """Whether `token` can begin a sentence: a capital, a digit, an opening bracket or quote, or
    a name that begins in lower case: with a capital or a digit ("mRNA", "p53", "cAMP"), a
    Greek letter or its name ("β-catenin", "alpha 4 integrins"), or joined by a hyphen to a
    word ("c-myc")."""
    text = token.text
    if text[:1].isupper() or text[:1].isdigit() or text[:1] in "([\"'":
        return True
    if not text[:1].islower():
        return False
    # Not "μ" followed by a lower-case letter: a unit ("μg", "μmol"), as the micro sign's "µg" is.
    unit = text[0] == "\u03bc" and text[1:2].islower()
    greek = text in _GREEK_LETTERS or (unicodedata.name(text[0], "").startswith("GREEK SMALL LETTER") and not unit)
    if greek or any(char.isupper() or char.isdigit() for char in text):
        return True
    # With the tokens glued to it: "c-myc" is three tokens here, one in a corpus's own.
    glued = [token]
    while len(glued) < 3 and not glued[-1].whitespace_ and glued[-1].i + 1 < len(token.doc):
        glued.append(token.doc[glued[-1].i + 1])
    return bool(_HYPHENATED_WORD.match("".join(t.text for t in glued)))


def _is_section_label(token: Token) -> bool:
    """A structured abstract's label in capitals before its colon ("RESULTS:")."""
    doc = token.doc
    return (len(token) >= 4 and token.text.isalpha() and token.text.isupper()
            and token.i + 1 < len(doc) and doc[token.i + 1].text == ":")


def _closes_sentence(doc: Doc, i: int) -> bool:
    """Token `i` is a closing quote or bracket attached to terminal punctuation, directly
    or through other such closers ("works.\")" ), or part of the citation numbers attached
    to a word's period ("cisplatin.12,13"): it belongs to the sentence before it."""
    j = i
    while j > 0 and doc[j].text in _CLOSERS and not doc[j - 1].whitespace_:
        j -= 1
    if j < i and doc[j].text in _TERMINALS:
        return True
    j = i
    while j > 0 and _CITATION_PIECE.fullmatch(doc[j].text) and not doc[j - 1].whitespace_:
        j -= 1
    return (j < i and doc[j].text == "." and doc[j + 1].text[:1].isdigit() and j > 0
            and not doc[j - 1].whitespace_ and doc[j - 1].text[-1:].isalpha())


def set_sentence_starts(doc: Doc, forced: Iterable[int] = (), not_inside: Iterable[Span] = ()) -> Doc:
    """Set `is_sent_start` on every token by the rules above (`starts_sentence`).

    `forced` are token indices that always start a sentence (e.g. the first
    token of a PubTator abstract, whatever the title ends with); no sentence
    starts inside a span of `not_inside` (an entity), forced or not. Decimal
    points and abbreviations such as "e.g." are single tokens or excluded,
    so they never end a sentence. The flags are set at once: spaCy's
    `Token.is_sent_start` scans the whole Doc at each token it sets.
    """
    forced_set = set(forced)
    starts = numpy.array([1 if i in forced_set or starts_sentence(doc, i) else -1 for i in range(len(doc))],
                         dtype="int64")
    for span in not_inside:
        starts[span.start + 1 : span.end] = -1
    doc.from_array([SENT_START], starts.astype("uint64"))  # -1 (not a start) as spaCy's arrays hold it
    return doc
