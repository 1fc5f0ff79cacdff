"""The biomedical tokenizer's splits and the sentence rules (tokenizer.py)."""

import pytest
import spacy
from spacy.tokens import Doc
from toy import PUBTATOR

from spacy_bioner.corpora.pubtator import _parse_pubtator
from spacy_bioner.corpora.text import read_lines
from spacy_bioner.tokenizer import HYPHENS, set_sentence_starts, starts_sentence


@pytest.mark.parametrize(
    "text, tokens",
    [
        ("[3H]-naloxone binding", ["[", "3H", "]", "-", "naloxone", "binding"]),
        ("Na+/K+-ATPase", ["Na", "+", "/", "K", "+", "-", "ATPase"]),
        ("CaCl(2)-treated rats", ["CaCl", "(", "2", ")", "-", "treated", "rats"]),
        ("thallium-201 imaging", ["thallium", "-", "201", "imaging"]),
        ("IL-2 and CD28", ["IL", "-", "2", "and", "CD28"]),
        ("Diazepam- and lorazepam", ["Diazepam", "-", "and", "lorazepam"]),
        ("with vitamin D.", ["with", "vitamin", "D", "."]),
        # Kept whole: a number's comma, letters glued to digits, abbreviations.
        ("1,2-dichloroethane", ["1,2", "-", "dichloroethane"]),
        ("5-HT6 and Ca2 e.g. rats", ["5", "-", "HT6", "and", "Ca2", "e.g.", "rats"]),
        # A full text's citation numbers, superscript flattened, off the word before them; not a
        # decimal, nor a name's period or comma after a digit.
        ("cisplatin.12 and anxiety,3,4 and rats.12-14", ["cisplatin", ".", "12", "and", "anxiety", ",", "3,4",
                                                          "and", "rats", ".", "12", "-", "14"]),
        ("pH 7.4 and CD4.1 and a.1 site", ["pH", "7.4", "and", "CD4.1", "and", "a.1", "site"]),
    ],
)
def test_bio_tokenizer_splits_the_parts_of_chemical_names(text, tokens, bio_nlp):
    assert [t.text for t in bio_nlp(text)] == tokens


@pytest.mark.parametrize("hyphen", ["\u2010", "\u2011", "\u2013", "\u2212"])
@pytest.mark.parametrize(
    "text",
    ["[3H]-naloxone binding", "Na+/K+-ATPase", "IL-2 and CD28", "thallium-201", "Diazepam- and lorazepam",
     "(-)-nicotine", "10-20 mg", "10-6 M", "-5 mV", "p53-/- mice"],
)
def test_unicode_hyphens_and_the_en_dash_split_as_the_ascii_hyphen(text, hyphen, bio_nlp):
    """Typeset text has U+2010, U+2011, an en dash (U+2013) or a minus sign (U+2212)
    where plain text has "-": each splits as "-" does, into a token of its own, and
    is one of HYPHENS, by which the other rules know a hyphen token."""
    ascii_tokens = [t.text for t in bio_nlp(text)]
    assert [t.text for t in bio_nlp(text.replace("-", hyphen))] == [t.replace("-", hyphen) for t in ascii_tokens]
    assert hyphen in HYPHENS


@pytest.mark.parametrize(
    "text, tokens",
    [
        # spaCy's emoticons "8)" and "(-8" used to re-join the pieces.
        ("of interleukin-8 (IL-8) by", ["of", "interleukin", "-", "8", "(", "IL", "-", "8", ")", "by"]),
        ("(CCK-8), which", ["(", "CCK", "-", "8", ")", ",", "which"]),
        ("clonidine 10(-8) M", ["clonidine", "10", "(", "-", "8", ")", "M"]),
        ("(n = 8) and", ["(", "n", "=", "8", ")", "and"]),
        # Comparisons glued to their operands.
        ("(>or=10.8 mg/l)", ["(", ">", "or", "=", "10.8", "mg", "/", "l", ")"]),
        ("(P<0.01, n=12)", ["(", "P", "<", "0.01", ",", "n", "=", "12", ")"]),
        # Typeset comparisons split off as "<" and ">" are, and "±" as GENIA's "+/-".
        ("age ≥65 years", ["age", "≥", "65", "years"]),
        ("(≤10 mg, P≠0)", ["(", "≤", "10", "mg", ",", "P", "≠", "0", ")"]),
        ("5±2 and ±SD", ["5", "±", "2", "and", "±", "SD"]),
        # A sentence-final period glued to the next bracket.
        ("in rats.(ABSTRACT", ["in", "rats", ".", "(", "ABSTRACT"]),
    ],
)
def test_bio_tokenizer_keeps_mentions_out_of_emoticons_and_comparisons(text, tokens, bio_nlp):
    assert [t.text for t in bio_nlp(text)] == tokens


@pytest.mark.parametrize("invisible", ["\u200b", "\u2060", "\ufeff", "\u00ad"])
def test_invisible_characters_at_a_word_s_ends_are_tokens_of_their_own(invisible, bio_nlp):
    """A zero-width space after "p53" made it "p53\u200b", an entity one character too long, and
    glued a sentence-final period ("2\u200b."), which then ended no sentence."""
    text = f"The {invisible}p53{invisible} level of IL-2{invisible}. It fell.{invisible} Then {invisible}it rose."
    doc = set_sentence_starts(bio_nlp(text))
    assert doc.text == text
    assert [t.text for t in doc][:8] == ["The", invisible, "p53", invisible, "level", "of", "IL", "-"]
    assert [t.text for t in doc][8:11] == ["2", invisible, "."]
    assert [sent[0].text for sent in doc.sents] == ["The", "It", "Then"]
    # Inside a word it stays: "inter\u00adleukin" is one word.
    assert len(bio_nlp(f"inter{invisible}leukin")) == 1
    # Beside a hyphen, slash or bracket split inside a token, it is at a word's end too.
    assert [t.text for t in bio_nlp(f"IL{invisible}-2 and CaCl(2){invisible}-treated")] == [
        "IL", invisible, "-", "2", "and", "CaCl", "(", "2", ")", invisible, "-", "treated"]
    assert [t.text for t in bio_nlp(f"Na+/{invisible}K+")] == ["Na", "+", "/", invisible, "K", "+"]


@pytest.mark.parametrize(
    "text, starts",
    [
        ("IL-2 binds p53. The receptor is active.", ["IL", "The"]),
        ("As Smith et al. 1990 showed, it binds.", ["As"]),
        ("See Fig. 2 for the dose.", ["See"]),
        # Taxonomy's ranks: "spp." before a bracket ended a sentence, and so no definition followed.
        ("Lactobacillus spp. (LS) and Oryza sativa cv. Nipponbare grew.", ["Lactobacillus"]),
        ("Drugs, e.g. haloperidol, act.", ["Drugs"]),
        ("A dose of 0.5 mg. kg was given.", ["A"]),
        ("It binds p53 vs. placebo.", ["It"]),
        ("It works. (A second test) failed! 3 rats died? Yes.", ["It", "(", "3", "Yes"]),
        # A decimal before the period is not an abbreviation.
        ("Activity was 1.6. Thermal ratios at E18.5. We saw it.", ["Activity", "Thermal", "We"]),
        # A unit or a dotted abbreviation in lower case with its period ends a sentence
        # before a word in title case after a space; not before a bracket, a digit, an
        # abbreviation, nor inside a word.
        ("It was given i.v. Anaesthesia followed.", ["It", "Anaesthesia"]),
        ("Pain faded within 24 h. Few days later, 2.8 g. Then 30 mg/kg p.o. Together.",
         ["Pain", "Few", "Then", "Together"]),
        ("It was given s.c. (P<0.05) for 5 d. 10 rats got 125 mg i.v. MP before it.", ["It"]),
        ("The mutation (p.Val204Asp) causes loss at 2 mg/kg b. w. once.", ["The"]),
        ("It rose by 2 mg. kg-1. d-1 for weeks.", ["It"]),
        # Names that begin in lower case begin sentences too; units do not.
        ("It fell. mRNA rose. p53 was active. alpha 4 integrins bind. c-myc was high. dl-Sotalol too.",
         ["It", "mRNA", "p53", "alpha", "c", "dl"]),
        # So do Greek letters (a PubMed sample: "irradiation. ε-Aminocaproic acid"); units do not, with
        # the micro sign or the Greek mu NFKC makes of it ("µg", "μg"); the letter does ("μ-Opioid").
        ("It fell. ε-Aminocaproic acid rose. β-catenin too. κB sites bind at 5 mg. µg doses at 2 mg. μg doses. "
         "μ-Opioid receptors.", ["It", "ε", "β", "κB", "μ"]),
        # A structured abstract's label starts a sentence, whatever the period followed.
        ("As by Smith et al. RESULTS: It rose at 5 mg/kg i.v. METHODS: Rats.", ["As", "RESULTS", "METHODS"]),
        # Whitespace after the period, of any kind, ends the sentence all the same.
        ("It works.\nThe next.  One more.\u00a0Last.", ["It", "The", "One", "Last"]),
        ("Pain faded within 24 h.\nFew days later, 30 mg/kg p.o.\u00a0Together.", ["Pain", "Few", "Together"]),
        # Element symbols and nitric oxide are no abbreviations; the words they look like are.
        ("Rats were exposed to Al. Brain levels rose. Production of NO. It fell.", ["Rats", "Brain", "Production", "It"]),
        ("See fig. 2 and No. 3.", ["See"]),
        ("It rose (cf. Fig. 2). Patients with CF. They coughed.", ["It", "Patients", "They"]),
        # A quote or bracket attached to a sentence's end closes it; one after a space opens the next.
        ('Called "meth mouth." Although rare.', ["Called", "Although"]),
        ('It binds (see above.) The next. "The rats died." Then.', ["It", "The", '"', "Then"]),
        ('It works.") The end.', ["It", "The"]),
        ("AS SHOWN IN FIG. 2 (SMITH ET AL. 2001) IT ROSE.", ["AS"]),
        # A blank line ends a title or heading without a period; a line break alone (a wrapped line) does not.
        ("Cisplatin nephrotoxicity\n\nWe gave cisplatin\nto rats.\r\n \r\nMethods\n\n\nRats", ["Cisplatin", "We",
                                                                                          "Methods", "Rats"]),
        ("Results\u2029We saw\x0cTables", ["Results", "We", "Tables"]),
        # A full text's citation numbers after a sentence's period are its last tokens.
        ("It causes anxiety.12 The drug.3,4 Rats.12-14 Then by Smith et al.12 results.", ["It", "The", "Rats",
                                                                                         "Then"]),
    ],
)
def test_sentence_starts_follow_terminal_punctuation_not_abbreviations(text, starts, bio_nlp):
    doc = set_sentence_starts(bio_nlp(text))
    assert [sent[0].text for sent in doc.sents] == starts
    # The same rules, read token by token where a doc's sentences are not set.
    assert [starts_sentence(bio_nlp(text), i) for i in range(len(doc))] == [token.is_sent_start for token in doc]


def test_sentence_rules_read_a_corpus_s_own_tokens(bio_nlp):
    """GENIA splits "e.g." and keeps "c-myc" whole: the rules read its tokens alike."""
    words = "Factors ( e.g . NF-kB ) bind . c-myc rose . cAMP fell vs . 4 +/- 1 U/mL .".split()
    doc = set_sentence_starts(Doc(bio_nlp.vocab, words=words))
    assert [sent[0].text for sent in doc.sents] == ["Factors", "c-myc", "cAMP"]


def test_forced_sentence_starts_begin_a_sentence_whatever_precedes_them(bio_nlp):
    doc = bio_nlp("Haloperidol and rats haloperidol induced catalepsy.")
    doc = set_sentence_starts(doc, forced=[3])
    assert [sent.text for sent in doc.sents] == ["Haloperidol and rats", "haloperidol induced catalepsy."]


def test_no_sentence_starts_inside_an_entity_forced_or_not(bio_nlp):
    doc = bio_nlp("Rats got it. Haloperidol induced catalepsy. Then.")
    doc = set_sentence_starts(doc, forced=[6], not_inside=[doc[2:7]])
    assert [sent[0].text for sent in doc.sents] == ["Rats", "Then"]
    assert [token.is_sent_start for token in doc] == [True] + [False] * 7 + [True, False]


def _aligned_mentions(nlp, split: str) -> float:
    """The share of a BC5CDR split's mentions that are whole tokens under `nlp`."""
    path = PUBTATOR[split]
    docs = _parse_pubtator(path, read_lines(path))
    total = aligned = 0
    for record in docs:
        doc = nlp.make_doc(record.text)
        for start, end, *_ in record.mentions:
            total += 1
            aligned += doc.char_span(start, end) is not None
    return aligned / total


@pytest.mark.slow
def test_bio_tokenizer_puts_bc5cdr_mentions_on_token_boundaries(bio_nlp):
    """The rules were written on the training set: every mention there is
    whole tokens; on dev, more than under spaCy's English tokenizer."""
    assert _aligned_mentions(bio_nlp, "train") == 1.0
    assert _aligned_mentions(bio_nlp, "dev") > _aligned_mentions(spacy.blank("en"), "dev")
