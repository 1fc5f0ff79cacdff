"""Abbreviation definitions (Schwartz and Hearst) and the component that makes
each head's mentions of a short form agree with its long form."""

import gc
import weakref

import pytest
import spacy
from spacy.tokens import Doc, Span, SpanGroup

from spacy_bioner.abbreviations import _LastDocument, find_abbreviations
from spacy_bioner.annotation import HEAD_ATTR, SCORES_ATTR, head_group, head_keys, merge_into_ents

TEXT = (
    "Haloperidol ( HAL ) induced catalepsy in rats with Parkinson disease ( PD ) . "
    "HAL was given twice ; PD worsened , and HAL - treated rats lost weight ."
)


def make_doc(nlp, text=TEXT):
    return Doc(nlp.vocab, words=text.split(" "))


def set_head(doc, key, entities, scores=None):
    """Write a head's predictions, as bio_ner does: a scored span group, merged into doc.ents."""
    spans = [Span(doc, start, end, label=label) for start, end, label in entities]
    scores = scores or [0.9] * len(spans)
    doc.spans[key] = head_group(doc, key, spans, scores, head=key)
    merge_into_ents(doc, spans, scores)


def triples(spans):
    return sorted((span.start, span.end, span.label_) for span in spans)


@pytest.fixture
def nlp():
    """A pipeline with two bio_ner heads (not trained: the component reads only their keys)."""
    nlp = spacy.blank("en")
    nlp.add_pipe("bio_ner", name="bc5cdr", config={"spans_key": "bc5cdr"})
    nlp.add_pipe("bio_ner", name="jnlpba", config={"spans_key": "jnlpba"})
    return nlp


def test_definitions_and_mentions(nlp):
    doc = make_doc(nlp)
    found = {a.short_form: a for a in find_abbreviations(doc)}
    assert set(found) == {"HAL", "PD"}
    assert found["HAL"].long_form.text == "Haloperidol"
    assert found["PD"].long_form.text == "Parkinson disease"
    assert [m.start for m in found["HAL"].mentions] == [2, 15, 24]
    assert [m.start for m in found["PD"].mentions] == [12, 20]


def test_definitions_are_found_once_per_document_while_its_tokens_stay(nlp):
    """The components of several heads ask for one document's abbreviations in
    turn: they are found once, and found again once the tokens change."""
    last = _LastDocument()
    doc = make_doc(nlp)
    first = last.find(doc, plural_variants=True)
    kept = last._last
    assert last.find(doc, plural_variants=True) == first == find_abbreviations(doc, plural_variants=True)
    assert last._last is kept  # given again, not searched again
    other = make_doc(nlp)  # another Doc, the same text
    assert last.find(other, plural_variants=True) == find_abbreviations(other, plural_variants=True)
    assert last._last is not kept
    kept = last._last
    assert last.find(other, plural_variants=False) == find_abbreviations(other, plural_variants=False)
    assert last._last is not kept
    with doc.retokenize() as retokenizer:  # "rats with" becomes one token
        retokenizer.merge(doc[7:9])
    found = {a.short_form: a for a in last.find(doc, plural_variants=False)}
    assert found["PD"].long_form.start == 8 and found["PD"].long_form.text == "Parkinson disease"
    assert [m.start for m in found["PD"].mentions] == [11, 19]


def test_the_last_document_is_not_kept_alive(nlp):
    """A document the caller lets go is freed (its tensors with it), though
    its abbreviations were the last found."""
    last = _LastDocument()
    doc = make_doc(nlp)
    assert last.find(doc, plural_variants=False)
    freed = weakref.ref(doc)
    del doc
    gc.collect()
    assert freed() is None


@pytest.mark.parametrize(
    "text,short,long",
    [
        ("rats given 6 - hydroxydopamine ( 6 - OHDA ) lesions", None, None),  # "-" is no word of 2+ characters
        ("treated with nitric oxide synthase ( NOS ) inhibitors", "NOS", "nitric oxide synthase"),
        # The long form inside the parentheses, the short form before them.
        ("the TNF ( tumour necrosis factor in serum ) levels", "TNF", "tumour necrosis factor in serum"),
        ("the effect was larger ( p < 0.05 ) in women", None, None),
        ("as in group ( 1 ) above", None, None),
        ("a drug ( aspirin ) was given", None, None),  # letters that the words before cannot spell
        # A long form that contains the short form as a word.
        ("the Ras protein ( Ras ) binds", None, None),
        # Long form in the parentheses: the word before them, the short form, has a capital letter.
        ("Namalwa cells ( human Burkitt lymphoma cells ) were", None, None),
        ("activated protein kinase C ( +PKC ) levels", None, None),  # a short form starts with a letter or digit
    ],
)
def test_schwartz_hearst_candidates(nlp, text, short, long):
    found = find_abbreviations(make_doc(nlp, text))
    assert [(a.short_form, a.long_form.text) for a in found] == ([(short, long)] if short else [])


@pytest.mark.parametrize(
    "text,expected",
    [
        # Two words in the parentheses are a short form (no "kinase"/"kinase", "alpha"/"alpha"),
        # counted on whitespace: the BioTokenizer makes 4 tokens of "PI 3-kinase" and of "IL-2R alpha",
        # whose "-" is no word of its own.
        (
            "phosphatidylinositol 3-kinase (PI 3-kinase) and interleukin 2 receptor alpha (IL-2R alpha)",
            [("PI 3-kinase", "phosphatidylinositol 3-kinase"), ("IL-2R alpha", "interleukin 2 receptor alpha")],
        ),
        ("13-cis-retinoic acid (cis-RA) and cis-RA", [("cis-RA", "cis-retinoic acid")]),
        ("Namalwa cells (human Burkitt lymphoma cells) were used", []),
        # BC5CDR 16810074: the definition fails (letters out of order), and the dose
        # that follows is no long form of LNNA.
        (
            "Nomega-nitro-L-arginine (LNNA) was given. LNNA (0.5 g/L in drinking water) lowered LNNA levels",
            [],
        ),
        ("serum TNF (tumour necrosis factor in serum) rose", [("TNF", "tumour necrosis factor in serum")]),
        # The short form before the parentheses is the word before them, of several BioTokenizer
        # tokens, without the brackets it opens with.
        ("serum TNF-alpha (tumor necrosis factor alpha) rose", [("TNF-alpha", "tumor necrosis factor alpha")]),
        ("levels (TNF-alpha (tumor necrosis factor alpha) in serum) rose", [("TNF-alpha", "tumor necrosis factor alpha")]),
        # ExtractAbbrev's cut of the parenthesised text at ", " and "; ".
        (
            "myelodysplastic syndrome (MDS; n = 17) or acute myeloid leukemia (AML, n = 7)",
            [("MDS", "myelodysplastic syndrome"), ("AML", "acute myeloid leukemia")],
        ),
        ("levels of nitric oxide (NO,NO2) fell", []),  # no space after the comma: no cut
        ("an opioid (fentanyl, meperidine, or morphine) was given", []),
        # The window before "(" is counted in words: this name is 11 tokens, one word.
        (
            "rats given 1-methyl-4-phenyl-1,2,3,6-tetrahydropyridine (MPTP) lost MPTP",
            [("MPTP", "methyl-4-phenyl-1,2,3,6-tetrahydropyridine")],
        ),
        # A short form may start with a digit, as in Schwartz and Hearst's ExtractAbbrev; its
        # letters must still appear in order ("6-OHDA" does not: O before H in "hydroxy").
        (
            "Patients received 5-fluorouracil (5-FU) daily; 5-FU was stopped.",
            [("5-FU", "5-fluorouracil")],
        ),
        ("Rats got 6-hydroxydopamine (6-OHDA).", []),
        ("The culture was kept at 37 degrees (37C)", []),
        # A Greek letter of the long form matches its name's Latin initial.
        ("Levels of γ-aminobutyric acid (GABA) rose", [("GABA", "γ-aminobutyric acid")]),
        ("Aggregation of α-synuclein (aSyn) causes PD", [("aSyn", "α-synuclein")]),
        ("Tumor necrosis factor-α (TNF-α) rose", [("TNF-α", "Tumor necrosis factor-α")]),
        # Latin abbreviations of running text define nothing; "CF" is no "cf.".
        ("Patients on anti-epileptic drugs (e.g., valproate) and lithium", []),
        ("If agitation becomes marked, high-potency neuroleptics (i.e., haloperidol) help", []),
        ("Other drugs (E.g. lithium) and cystic fibrosis (CF)", [("CF", "cystic fibrosis")]),
        # A bracket right before "(" ends no long form (BC5CDR 17572393, 3461217: every gold
        # mention of the short form was removed, as no entity ended on the bracket) ...
        (
            "Rats were given carmustine-[1,3-bis (2-chloroethyl)-1-nitrosoure] (BCNU). BCNU was toxic.",
            [("BCNU", "bis (2-chloroethyl)-1-nitrosoure")],
        ),
        ("Rats received testosterone propionate [(TP) CAS 57-85-2] daily", [("TP", "testosterone propionate")]),
        # ... nor a hyphen, of a compound that the parentheses interrupt; a hyphen ending the
        # short form is that compound's too (BC5CDR 19203554, 24587916) ...
        (
            "Proteinase 3-antineutrophil cytoplasmic antibody-(PR3-ANCA) positive glomerulonephritis",
            [("PR3-ANCA", "Proteinase 3-antineutrophil cytoplasmic antibody")],
        ),
        ("Dexamethasone- (Dex-) induced hypertension", [("Dex", "Dexamethasone")]),
        ("vasoactive intestinal polypeptide knockout (VIP-/-) mice", [("VIP-/-", "vasoactive intestinal polypeptide knockout")]),
        ("Patients on dexamethasone (-) and others", []),
        # ... nor does a comma (BC5CDR 1969772: every DA1 was removed, as no entity ended on it) ...
        ("Specific dopamine-1, (DA1) agonists act on DA1 receptors", [("DA1", "dopamine-1")]),
        # ... a long form's brackets are balanced (BC5CDR 12452237: "Group PR" became a Chemical) ...
        ("Patients were given pancuronium (Group PS, LS) or rocuronium (GPR). GPR was fast.", []),
        # The parentheses hold at most 8 words, however many tokens the BioTokenizer makes of them.
        (
            "a dose of L-3,4-dihydroxyphenylalanine (L-DOPA; 25 mg/kg i.p.) plus benserazide",
            [("L-DOPA", "L-3,4-dihydroxyphenylalanine")],
        ),
        ("Levels of N-methyl-d-aspartate (NMDA, one two three four five six seven eight) rose", []),
        # Whitespace inside the brackets, where a line was wrapped, is in neither form.
        ("X-linked severe combined immunodeficiency (XSCID\n) and XSCID",
         [("XSCID", "X-linked severe combined immunodeficiency")]),
        ("X-linked severe combined immunodeficiency (\nXSCID) and XSCID",
         [("XSCID", "X-linked severe combined immunodeficiency")]),
        ("a drug (\n) and more", []),
        # A line end after the comma that ends a short form, a zero-width space before the brackets.
        ("methylenedioxymethamphetamine (MDMA,\necstasy) and MDMA", [("MDMA", "methylenedioxymethamphetamine")]),
        ("multiple myeloma \u200b(MM) and MM", [("MM", "myeloma")]),  # as without the zero-width space
        # ... and a long form stays within its sentence (BC5CDR's title and abstract here).
        (
            "Allergy to corticosteroids: diagnosis and alternatives. Two patients treated with parenteral "
            "paramethasone (Triniol) reacted.",
            [],
        ),
        # A bracket that opens a sentence follows neither form: the sentence before it defines nothing.
        ("Recreational MDMA is used. (MDS; n = 17) MDS was high.", []),
        # ... but an abbreviation's period ends no sentence.
        ("Samples held Lactobacillus spp. (LS) and LS grew.", [("LS", "Lactobacillus spp.")]),
    ],
)
def test_definitions_on_bio_tokens(text, expected):
    """On the BioTokenizer's tokens, where words and tokens differ."""
    from spacy_bioner.tokenizer import make_bio_nlp

    found = find_abbreviations(make_bio_nlp()(text))
    assert [(a.short_form, a.long_form.text) for a in found] == expected


@pytest.mark.parametrize("definition", ["(TNF alpha)", "(TNF\nalpha)"])
def test_a_short_form_of_two_words_is_mentioned_whatever_whitespace_parts_them(definition):
    """A line end or a double space inside a mention, or inside the definition, was a token that no
    other mention had."""
    from spacy_bioner.tokenizer import make_bio_nlp

    text = f"tumour necrosis factor alpha {definition} rose; TNF alpha and TNF\nalpha and TNF  alpha fell"
    (found,) = find_abbreviations(make_bio_nlp()(text))
    assert found.long_form.text == "tumour necrosis factor alpha"
    assert [" ".join(mention.text.split()) for mention in found.mentions] == 4 * ["TNF alpha"]


def test_mentions_are_every_match_of_the_short_form_in_a_long_document(nlp):
    """Many definitions, multi-word short forms and mentions up to the last
    token, against a scan of every position."""
    parts = []
    for i in range(40):
        parts.append(f"heat shock protein {i} ( HSP {i} ) binds HSP {(i * 7) % 40} ; HSP")
    doc = make_doc(nlp, " ; ".join(parts) + " ; HSP 39")
    found = find_abbreviations(doc)
    assert len(found) >= 20 and "HSP 39" in {a.short_form for a in found}
    texts = [token.text for token in doc]
    for abbreviation in found:
        words, long_form = abbreviation.short_form.split(" "), abbreviation.long_form
        expected = [
            (i, i + len(words))
            for i in range(len(doc))
            if texts[i : i + len(words)] == words and not (long_form.start <= i < long_form.end)
        ]
        assert [(m.start, m.end) for m in abbreviation.mentions] == expected
        if abbreviation.short_form == "HSP 39":
            assert expected[-1] == (len(doc) - 2, len(doc))


def test_a_short_form_defined_again_has_its_new_long_form_until_the_next_definition(nlp):
    """Each definition has the mentions up to the next one of its short form, the first also
    those before it; the current long form again, in any case, is no new definition."""
    text = (
        "HF rose ; heart failure ( HF ) and HF ; high fat ( HF ) diets ; HF ; High fat ( HF ) ; HF ; "
        "heart failure ( HF ) and HF"
    )
    found = find_abbreviations(make_doc(nlp, text))
    assert [(a.long_form.text, [m.start for m in a.mentions]) for a in found] == [
        ("heart failure", [0, 6, 9]),
        ("high fat", [14, 18, 23, 26]),
        ("heart failure", [31, 34]),
    ]


def test_a_long_form_defined_again_keeps_its_first_short_form(nlp):
    (abbreviation,) = find_abbreviations(make_doc(nlp, "heart failure ( HF ) ; heart failure ( HTF ) ; HF and HTF"))
    assert abbreviation.short_form == "HF"
    assert [m.start for m in abbreviation.mentions] == [3, 12]


def test_mentions_after_a_new_definition_take_its_long_forms_label(nlp):
    """"HAL" is haloperidol, a Chemical, then hepatic artery ligation, a Disease."""
    doc = make_doc(nlp, "haloperidol ( HAL ) and HAL . Then hepatic artery ligation ( HAL ) and HAL .")
    set_head(doc, "bc5cdr", [(0, 1, "Chemical"), (2, 3, "Chemical"), (8, 11, "Disease"), (15, 16, "Chemical")])
    nlp.add_pipe("bio_ner_abbreviations")(doc)
    expected = [(0, 1, "Chemical"), (2, 3, "Chemical"), (5, 6, "Chemical")]
    expected += [(8, 11, "Disease"), (12, 13, "Disease"), (15, 16, "Disease")]
    assert triples(doc.spans["bc5cdr"]) == expected
    assert triples(doc.ents) == expected


def test_mentions_take_the_long_forms_label(nlp):
    """Added where missing, relabelled where wrong, with the long form's score; doc.ents follows."""
    doc = make_doc(nlp)
    # Haloperidol: Chemical; the first HAL missed, the second one a Disease.
    set_head(doc, "bc5cdr", [(0, 1, "Chemical"), (15, 16, "Disease")], scores=[0.8, 0.6])
    doc.spans["bc5cdr"].attrs["source"] = "mine"  # another attribute of the group stays with it
    nlp.add_pipe("bio_ner_abbreviations")(doc)
    assert triples(doc.spans["bc5cdr"]) == [(0, 1, "Chemical"), (2, 3, "Chemical"), (15, 16, "Chemical"), (24, 25, "Chemical")]
    assert doc.spans["bc5cdr"].attrs == {SCORES_ATTR: [0.8, 0.8, 0.8, 0.8], HEAD_ATTR: "bc5cdr", "source": "mine"}
    assert triples(doc.ents) == triples(doc.spans["bc5cdr"])


def test_mentions_without_a_long_form_entity_are_dropped(nlp):
    doc = make_doc(nlp)
    # "Parkinson disease" not predicted, its short form twice.
    set_head(doc, "bc5cdr", [(12, 13, "Disease"), (20, 21, "Disease"), (5, 6, "Disease")])
    nlp.add_pipe("bio_ner_abbreviations")(doc)
    assert triples(doc.spans["bc5cdr"]) == [(5, 6, "Disease")]
    assert triples(doc.ents) == [(5, 6, "Disease")]


def test_overlapping_entities_are_left_alone(nlp):
    doc = make_doc(nlp)
    # "HAL - treated" is an entity: the HAL inside it is not added.
    set_head(doc, "bc5cdr", [(0, 1, "Chemical"), (24, 27, "Chemical")])
    nlp.add_pipe("bio_ner_abbreviations")(doc)
    assert triples(doc.spans["bc5cdr"]) == [(0, 1, "Chemical"), (2, 3, "Chemical"), (15, 16, "Chemical"), (24, 27, "Chemical")]


@pytest.mark.parametrize(
    "setting,expected",
    [
        ({"add_missing": False}, [(0, 1, "Chemical"), (15, 16, "Chemical")]),
        ({"relabel": False}, [(0, 1, "Chemical"), (2, 3, "Chemical"), (15, 16, "Disease"), (24, 25, "Chemical")]),
        (
            {"remove_unsupported": False},
            [(0, 1, "Chemical"), (2, 3, "Chemical"), (15, 16, "Chemical"), (20, 21, "Disease"), (24, 25, "Chemical")],
        ),
    ],
)
def test_each_correction_is_a_setting(nlp, setting, expected):
    doc = make_doc(nlp)
    set_head(doc, "bc5cdr", [(0, 1, "Chemical"), (15, 16, "Disease"), (20, 21, "Disease")])
    nlp.add_pipe("bio_ner_abbreviations", config=setting)(doc)
    assert triples(doc.spans["bc5cdr"]) == expected


def test_each_head_is_corrected_on_its_own(nlp):
    """The long form is an entity for one head only: that head gains the mentions,
    the other loses its own; doc.ents keeps the best-scored of clashing entities."""
    doc = make_doc(nlp)
    set_head(doc, "jnlpba", [(0, 1, "protein")], scores=[0.7])
    set_head(doc, "bc5cdr", [(2, 3, "Chemical"), (15, 16, "Chemical")], scores=[0.9, 0.95])
    nlp.add_pipe("bio_ner_abbreviations")(doc)
    assert triples(doc.spans["jnlpba"]) == [(0, 1, "protein"), (2, 3, "protein"), (15, 16, "protein"), (24, 25, "protein")]
    assert triples(doc.spans["bc5cdr"]) == []
    assert triples(doc.ents) == triples(doc.spans["jnlpba"])


def test_another_heads_entity_returns_to_doc_ents_when_the_one_it_lost_to_is_removed(nlp):
    """doc.ents stays the union of the heads: bc5cdr's unsupported HAL mentions
    go, and jnlpba's HAL, which lost to one of them, takes its place."""
    doc = make_doc(nlp)
    set_head(doc, "jnlpba", [(15, 16, "protein")], scores=[0.6])
    set_head(doc, "bc5cdr", [(2, 3, "Chemical"), (15, 16, "Chemical")], scores=[0.9, 0.9])
    assert triples(doc.ents) == [(2, 3, "Chemical"), (15, 16, "Chemical")]
    nlp.add_pipe("bio_ner_abbreviations", config={"spans_keys": ["bc5cdr"], "remove_unsupported": True})(doc)
    assert triples(doc.spans["bc5cdr"]) == []
    assert triples(doc.ents) == triples(doc.spans["jnlpba"]) == [(15, 16, "protein")]


@pytest.mark.parametrize("follow", [True, False])
def test_in_doc_ents_a_short_form_follows_its_long_forms_entity(nlp, follow):
    """bc5cdr labels Haloperidol and every HAL Chemical; jnlpba, whose long form
    is no entity, keeps its surer protein HALs (remove_unsupported off, as
    shipped for it). doc.ents gives each HAL the long form's label."""
    doc = make_doc(nlp)
    set_head(doc, "bc5cdr", [(0, 1, "Chemical"), (2, 3, "Chemical"), (15, 16, "Chemical"), (24, 25, "Chemical")],
             scores=[0.95, 0.5, 0.5, 0.5])
    set_head(doc, "jnlpba", [(15, 16, "protein"), (24, 25, "protein")], scores=[0.8, 0.8])
    groups = {key: triples(doc.spans[key]) for key in ("bc5cdr", "jnlpba")}
    config = {"spans_keys": ["jnlpba"], "remove_unsupported": False, "ents_follow_long_form": follow}
    nlp.add_pipe("bio_ner_abbreviations", config=config)(doc)
    label = "Chemical" if follow else "protein"
    assert triples(doc.ents) == [(0, 1, "Chemical"), (2, 3, "Chemical"), (15, 16, label), (24, 25, label)]
    assert {key: triples(doc.spans[key]) for key in groups} == groups  # the heads' own spans stay


def test_an_entity_no_head_predicted_stays_in_doc_ents(nlp):
    doc = make_doc(nlp)
    set_head(doc, "bc5cdr", [(0, 1, "Chemical"), (15, 16, "Chemical")])
    doc.ents = [*doc.ents[:1], Span(doc, 15, 16, label="DRUG", kb_id="D1")]
    nlp.add_pipe("bio_ner_abbreviations", config={"spans_keys": ["bc5cdr"], "ents_follow_long_form": True})(doc)
    assert [(e.start, e.label_, e.kb_id_) for e in doc.ents] == [(0, "Chemical", ""), (2, "Chemical", ""), (15, "DRUG", "D1"), (24, "Chemical", "")]


def test_only_the_configured_heads(nlp):
    doc = make_doc(nlp)
    set_head(doc, "jnlpba", [(0, 1, "protein")])
    set_head(doc, "bc5cdr", [(0, 1, "Chemical")])
    nlp.add_pipe("bio_ner_abbreviations", config={"spans_keys": ["bc5cdr"]})(doc)
    assert triples(doc.spans["jnlpba"]) == [(0, 1, "protein")]
    assert len(doc.spans["bc5cdr"]) == 4
    unchanged = make_doc(nlp)
    set_head(unchanged, "bc5cdr", [(0, 1, "Chemical")])
    nlp.remove_pipe("bio_ner_abbreviations")
    nlp.add_pipe("bio_ner_abbreviations", config={"spans_keys": []})(unchanged)
    assert triples(unchanged.spans["bc5cdr"]) == [(0, 1, "Chemical")]


def test_in_a_trained_pipeline_saved_and_loaded(tiny_pipeline, tmp_path):
    """After the heads of a real pipeline; it and its settings survive to_disk /
    spacy.load, and the loaded one corrects what the trained heads predict."""
    text = "the B lymphocytes ( BL ) activates in BL expression of BL ."
    nlp = spacy.load(tiny_pipeline)
    plain = nlp(text)
    keys = list(head_keys(nlp))
    for key in keys:  # the tiny heads find the long form, and miss the short one
        assert [(s.text, s.label_) for s in plain.spans[key]] == [("B lymphocytes", "cell_type")], key
    nlp.add_pipe("bio_ner_abbreviations", config={"remove_unsupported": False})
    nlp.to_disk(tmp_path / "nlp")
    loaded = spacy.load(tmp_path / "nlp")
    component = loaded.get_pipe("bio_ner_abbreviations")
    assert loaded.pipe_names[-1] == "bio_ner_abbreviations"
    assert component.spans_keys == ["jnlpba", "bc5cdr"] == keys
    assert (component.add_missing, component.relabel, component.remove_unsupported) == (True, True, False)
    doc = loaded(text)
    mentions = [token.i for token in doc if token.text == "BL"]
    assert len(mentions) == 3
    for key in keys:
        group = doc.spans[key]
        assert triples(group) == sorted([(1, 3, "cell_type")] + [(i, i + 1, "cell_type") for i in mentions])
        # Every mention takes the long form's score.
        scores = {(s.start, s.end, s.label_): score for s, score in zip(group, group.attrs[SCORES_ATTR])}
        long_score = plain.spans[key].attrs[SCORES_ATTR][0]
        assert [scores[(i, i + 1, "cell_type")] for i in mentions] == pytest.approx([long_score] * 3)
    assert triples(doc.ents) == triples(doc.spans["jnlpba"])


def test_a_head_entity_that_ends_the_long_form_and_starts_before_it_supports_the_short_form(nlp):
    """Schwartz and Hearst's long form is the shortest one ("Parkinson disease"
    for PD); the head's entity may start before it ("idiopathic Parkinson
    disease"): the short form's mentions are added, not dropped."""
    doc = make_doc(nlp, "in idiopathic Parkinson disease ( PD ) patients , PD worsened while PD - free rats")
    (abbreviation,) = find_abbreviations(doc)
    assert abbreviation.long_form.text == "Parkinson disease"
    set_head(doc, "bc5cdr", [(1, 4, "Disease"), (9, 10, "Chemical")], scores=[0.7, 0.6])
    nlp.add_pipe("bio_ner_abbreviations")(doc)  # all three corrections
    expected = [(1, 4, "Disease"), (5, 6, "Disease"), (9, 10, "Disease"), (12, 13, "Disease")]
    assert triples(doc.spans["bc5cdr"]) == expected
    assert doc.spans["bc5cdr"].attrs[SCORES_ATTR] == [0.7, 0.7, 0.7, 0.7]
    assert triples(doc.ents) == expected


def test_an_oracle_head_keeps_its_entities_on_a_real_abstract(tmp_path):
    """BC5CDR dev abstract 1732442 defines "Radiolabeled metaiodobenzylguanidine
    (MIBG)"; the gold Chemical is the whole of "Radiolabeled metaiodobenzylguanidine",
    the long form "metaiodobenzylguanidine". With the gold as a head's predictions,
    the component (all three corrections) changes nothing: the MIBG mentions stay."""
    import lzma

    from toy import PUBTATOR

    from spacy_bioner.corpora.pubtator import read_pubtator
    from spacy_bioner.tokenizer import make_bio_nlp

    with lzma.open(PUBTATOR["dev"], "rt", encoding="utf8") as lines:
        record = [line for line in lines if line.startswith(("1732442|", "1732442\t"))]
    (tmp_path / "abstract.txt").write_text("".join(record) + "\n", encoding="utf8")
    nlp = make_bio_nlp()
    nlp.add_pipe("bio_ner", name="bc5cdr", config={"spans_key": "bc5cdr"})
    (doc,), _ = read_pubtator(tmp_path / "abstract.txt", nlp, spans_key="bc5cdr")
    gold = triples(doc.spans["bc5cdr"])
    mibg = [(start, end, "Chemical") for start, end, _ in gold if doc[start:end].text == "MIBG"]
    assert len(mibg) >= 5 and set(mibg) <= set(gold)
    assert "Radiolabeled metaiodobenzylguanidine" in {doc[start:end].text for start, end, _ in gold}
    set_head(doc, "bc5cdr", gold)
    nlp.add_pipe("bio_ner_abbreviations")(doc)
    assert triples(doc.spans["bc5cdr"]) == gold
    assert triples(doc.ents) == gold


def test_a_mention_with_the_long_forms_label_keeps_its_own_score(nlp):
    """Only added and relabelled mentions take the long form's score: the
    head's own prediction of the right label is not rescored (nor by relabel = false)."""
    for relabel in (True, False):
        doc = make_doc(nlp)
        set_head(doc, "bc5cdr", [(0, 1, "Chemical"), (2, 3, "Chemical")], scores=[0.8, 0.3])
        component = nlp.add_pipe("bio_ner_abbreviations", name=f"abbreviations_{relabel}", config={"relabel": relabel})
        component(doc)
        scores = dict(zip(triples(doc.spans["bc5cdr"]), doc.spans["bc5cdr"].attrs[SCORES_ATTR]))
        assert scores == {(0, 1, "Chemical"): 0.8, (2, 3, "Chemical"): 0.3, (15, 16, "Chemical"): 0.8,
                          (24, 25, "Chemical"): 0.8}


def test_a_group_changed_after_the_head_scored_it_is_corrected_without_scores(nlp):
    """A span added by the user: which score is whose is unknown (annotation.group_scores),
    so the corrected group has none, and the next merge into doc.ents does not fail on them."""
    doc = make_doc(nlp)
    set_head(doc, "bc5cdr", [(0, 1, "Chemical"), (5, 6, "Disease")])
    doc.spans["bc5cdr"].append(Span(doc, 9, 11, label="Disease"))
    nlp.add_pipe("bio_ner_abbreviations")(doc)
    assert triples(doc.spans["bc5cdr"]) == [
        (0, 1, "Chemical"), (2, 3, "Chemical"), (5, 6, "Disease"), (9, 11, "Disease"), (12, 13, "Disease"),
        (15, 16, "Chemical"), (20, 21, "Disease"), (24, 25, "Chemical"),
    ]
    assert SCORES_ATTR not in doc.spans["bc5cdr"].attrs
    # doc.ents take the corrections (the group's spans are the head's, scores or not);
    # the span the user appended to the group only was never in doc.ents.
    assert triples(doc.ents) == [triple for triple in triples(doc.spans["bc5cdr"]) if triple != (9, 11, "Disease")]
    merge_into_ents(doc, [Span(doc, 7, 8, label="Disease")], [0.5])
    assert (7, 8, "Disease") in triples(doc.ents)


def test_a_span_the_step_adds_to_a_group_without_scores_gives_way_to_anothers_scored_entity(nlp):
    """Whose score is which is unknown in a changed group: a mention the step adds there is the
    least sure in doc.ents, and another head's scored entity on its tokens stays."""
    doc = make_doc(nlp)
    set_head(doc, "bc5cdr", [(0, 1, "Chemical")])
    doc.spans["bc5cdr"].append(Span(doc, 9, 11, label="Disease"))  # the user's: the group's scores go
    set_head(doc, "jnlpba", [(15, 16, "protein")], scores=[0.5])
    nlp.add_pipe("bio_ner_abbreviations", config={"spans_keys": ["bc5cdr"]})(doc)
    assert (15, 16, "Chemical") in triples(doc.spans["bc5cdr"])
    assert (15, 16, "protein") in triples(doc.ents) and (2, 3, "Chemical") in triples(doc.ents)


def test_an_entity_removed_before_the_step_stays_out_of_doc_ents(nlp):
    """A component between the heads and the step (a confidence filter) dropped the
    head's "dementia": the step, which does not touch it, does not bring it back."""
    doc = Doc(nlp.vocab, words="haloperidol ( HAL ) was given ; HAL dementia rose".split())
    set_head(doc, "bc5cdr", [(0, 1, "Chemical"), (8, 9, "Disease")], scores=[0.9, 0.3])
    doc.ents = [ent for ent in doc.ents if ent.label_ != "Disease"]
    nlp.add_pipe("bio_ner_abbreviations")(doc)
    assert triples(doc.ents) == [(0, 1, "Chemical"), (2, 3, "Chemical"), (7, 8, "Chemical")]


def test_a_scored_group_no_head_writes_stays_out_of_doc_ents(nlp):
    """spancat's "sc" (scored, overlapping spans) stays out of doc.ents, and an entity
    set by something else stays in."""
    doc = make_doc(nlp)
    set_head(doc, "bc5cdr", [(0, 1, "Chemical")])
    doc.spans["sc"] = SpanGroup(doc, name="sc", spans=[Span(doc, 4, 6, "X"), Span(doc, 5, 6, "Y")],
                                attrs={SCORES_ATTR: [0.99, 0.98]})
    doc.ents = [*doc.ents, Span(doc, 7, 8, label="ANIMAL")]
    nlp.add_pipe("bio_ner_abbreviations")(doc)
    assert triples(doc.ents) == [(0, 1, "Chemical"), (2, 3, "Chemical"), (7, 8, "ANIMAL"),
                                 (15, 16, "Chemical"), (24, 25, "Chemical")]


def test_spans_keys_naming_no_head_are_warned_about_once(nlp, recwarn):
    """A misspelt key (or a head left out of the pipeline) would silently
    correct nothing; a head that is only disabled is no mistake."""
    component = nlp.add_pipe("bio_ner_abbreviations", config={"spans_keys": ["bc5cd", "jnlpba"]})
    for _ in range(2):
        doc = make_doc(nlp)
        set_head(doc, "bc5cdr", [(0, 1, "Chemical")])
        component(doc)
        assert triples(doc.spans["bc5cdr"]) == [(0, 1, "Chemical")]
    messages = [str(w.message) for w in recwarn if "name no bio_ner head" in str(w.message)]
    assert messages == [
        "bio_ner_abbreviations: spans_keys ['bc5cd'] name no bio_ner head of the pipeline (its heads write "
        "['bc5cdr', 'jnlpba']): only a document that holds such a group already has its short forms "
        "corrected there. Set spans_keys to the heads' "
        "span keys, or leave this component out with the heads it was meant for."
    ]
    recwarn.clear()
    with nlp.select_pipes(disable=["bc5cdr"]):
        nlp.add_pipe("bio_ner_abbreviations", name="bc5cdr_abbreviations", config={"spans_keys": ["bc5cdr"]})(
            make_doc(nlp)
        )
    assert not [w for w in recwarn if "name no bio_ner head" in str(w.message)]


def test_a_corrector_before_its_heads_is_warned_about(nlp, recwarn):
    """Placed before the head it corrects, it found no entity to correct: nothing done, nothing said."""
    nlp.add_pipe("bio_ner_abbreviations", first=True)(make_doc(nlp))
    messages = [str(w.message) for w in recwarn if "runs before" in str(w.message)]
    assert messages == ["bio_ner_abbreviations: runs before the heads 'bc5cdr', 'jnlpba', whose entities are not "
                        "there yet to correct: place it after them (add_pipe(..., after='jnlpba'), or its place in "
                        "[nlp] pipeline)."]
    recwarn.clear()
    nlp.add_pipe("bio_ner_abbreviations", name="after_heads", config={"spans_keys": ["bc5cdr"]})(make_doc(nlp))
    assert not [w for w in recwarn if "runs before" in str(w.message)]


@pytest.mark.parametrize(
    "text,short,mentions",
    [
        # Defined in the plural, mentioned in the singular, and the other way round.
        ("mast cells ( MCs ) degranulate ; MC numbers and MCs rose", "MCs", ["MCs", "MCs", "MC"]),
        ("high grade glioma ( HGG ) and other HGGs ; HGG", "HGG", ["HGG", "HGG", "HGGs"]),
        # A one-letter variant is no mention.
        ("T cells ( Ts ) and T lymphocytes", "Ts", ["Ts"]),
        # Nor one whose singular is a word in title case, as an element's symbol is.
        ("Crk-associated substrate ( Cas ) binds Ca and Cas", "Cas", ["Cas", "Cas"]),
        # A singular with capitals after its first letter is an acronym's.
        ("protein tyrosine phosphatases ( PTPases ) ; PTPase", "PTPases", ["PTPases", "PTPase"]),
    ],
)
def test_plural_and_singular_of_a_short_form_are_mentions(nlp, text, short, mentions):
    (abbreviation,) = find_abbreviations(make_doc(nlp, text), plural_variants=True)
    assert abbreviation.short_form == short
    assert [m.text for m in abbreviation.mentions] == mentions


def test_plural_variants_on_bio_tokens():
    """The BioTokenizer keeps "DCs" one token, and splits it from "/DC"."""
    from spacy_bioner.tokenizer import make_bio_nlp

    (abbreviation,) = find_abbreviations(make_bio_nlp()("dendritic cells (DCs) were counted; DCs/DC ratios"), plural_variants=True)
    assert [m.text for m in abbreviation.mentions] == ["DCs", "DCs", "DC"]


@pytest.mark.parametrize("plural_variants", [True, False])
def test_the_stem_of_a_numbered_name_is_no_mention(plural_variants):
    """"COX" of "COX-2" and "IL" of "IL-2" name a family's member, not the family;
    "COX - 2", apart, and "COX-induced" keep their mention."""
    from spacy_bioner.tokenizer import make_bio_nlp

    nlp = make_bio_nlp()
    doc = nlp("cyclooxygenase (COX) and COX-2, COX -2, COX-induced; interleukins (ILs) and IL-12 or IL")
    cox, ils = find_abbreviations(doc, plural_variants=plural_variants)
    assert [m.start for m in cox.mentions] == [2, 9, 13]  # the definition's, "COX -2", "COX-induced"
    assert [m.text for m in ils.mentions] == (["ILs", "IL"] if plural_variants else ["ILs"])
    # A capital and a number after the hyphen name a member too: "PD" of "PD-L1" is no mention of PD.
    (pd,) = find_abbreviations(nlp("Parkinson's disease (PD) patients had high PD-L1 levels; PD-induced"),
                               plural_variants=plural_variants)
    assert [m.start for m in pd.mentions] == [4, 14]  # the definition's and "PD-induced", not "PD-L1"


def test_a_variant_defined_later_keeps_the_first_definition(nlp):
    doc = make_doc(nlp, "mast cells ( MC ) and monocytes ( MCs ) ; MCs")
    (abbreviation,) = find_abbreviations(doc, plural_variants=True)
    assert abbreviation.long_form.text == "mast cells"
    assert [m.start for m in abbreviation.mentions] == [3, 8, 11]


@pytest.mark.parametrize("plural_variants", [True, False])
def test_plural_variants_is_a_setting(nlp, plural_variants):
    """BC5CDR-style: "osteoclasts" defined as "OCs", one "OC" missed, one "OC" mislabelled."""
    doc = make_doc(nlp, "bone osteoclasts ( OCs ) and OC activity ; OC counts fell")
    set_head(doc, "bc5cdr", [(1, 2, "Disease"), (9, 10, "Chemical")])
    nlp.add_pipe("bio_ner_abbreviations", config={"plural_variants": plural_variants})(doc)
    expected = [(1, 2, "Disease"), (3, 4, "Disease"), (6, 7, "Disease"), (9, 10, "Disease")]
    if not plural_variants:
        expected = [(1, 2, "Disease"), (3, 4, "Disease"), (9, 10, "Chemical")]
    assert triples(doc.spans["bc5cdr"]) == expected
    assert triples(doc.ents) == expected


def test_settings_added_later_are_off_unless_configured(nlp):
    """A pipeline saved before them predicts as it did: spaCy fills a missing
    setting from the factory's defaults."""
    component = nlp.add_pipe("bio_ner_abbreviations")
    assert not component.ents_follow_long_form and not component.plural_variants and not component.correct_ents


def test_a_ruler_entity_a_head_also_predicted_keeps_its_place(nlp):
    """A ruler's entity took the score of the head's span of the same tokens and label: a surer
    entity of the other head then replaced it, its id lost, and the abbreviation step could
    drop or relabel it."""
    doc = make_doc(nlp)
    # Told apart from a head's by their ids: a linker's kb_id, an entity ruler pattern's id.
    doc.ents = [Span(doc, 9, 11, label="Disease", kb_id="MESH:D010300"), Span(doc, 20, 21, label="Disease", span_id="PD")]
    ruled = [(9, 11, "Disease", "MESH:D010300"), (20, 21, "Disease", "PD")]
    set_head(doc, "bc5cdr", [(9, 10, "Disease"), (20, 21, "Disease")], scores=[0.5, 0.5])
    set_head(doc, "jnlpba", [(20, 21, "protein")], scores=[0.9])
    assert [(e.start, e.end, e.label_, e.kb_id_ or e.id_) for e in doc.ents] == ruled
    # No head's entity ends the long form "Parkinson disease": each drops its PD, the ruler's stays.
    nlp.add_pipe("bio_ner_abbreviations", config={"ents_follow_long_form": True})(doc)
    assert triples(doc.spans["bc5cdr"]) == [(9, 10, "Disease")] and triples(doc.spans["jnlpba"]) == []
    assert [(e.start, e.end, e.label_, e.kb_id_ or e.id_) for e in doc.ents] == ruled


def test_the_window_counts_whitespace_words_and_a_line_break_ends_one():
    """Words are cut at whitespace, a whitespace token ("\\n") included; a hyphenated name is one word."""
    from spacy_bioner.abbreviations import words_back
    from spacy_bioner.tokenizer import make_bio_nlp

    doc = make_bio_nlp()("in Parkinson disease.\nProtein kinase C (PKC) and 1-methyl-4-phenyl (MP)")
    first, second = [token.i for token in doc if token.text == "("]
    assert doc[words_back(doc, first, 3) : first].text == "Protein kinase C"
    assert doc[words_back(doc, first, 4) : first].text == "disease.\nProtein kinase C"
    assert doc[words_back(doc, second, 1) : second].text == "1-methyl-4-phenyl"
    assert words_back(doc, first, 100) == 0


@pytest.mark.parametrize("space", ["\u00a0", "\u2009", "\n", " \n "])
def test_a_long_form_ends_at_its_last_word_before_whitespace_and_the_parenthesis(nlp, space):
    """No entity ends on a whitespace token: a long form ending on one would
    support no mention, and the head's mentions of the short form would be dropped."""
    from spacy_bioner.tokenizer import make_bio_nlp

    doc = make_bio_nlp()(f"We gave haloperidol{space}(HAL) to rats. HAL caused catalepsy.")
    (abbreviation,) = find_abbreviations(doc)
    assert abbreviation.long_form.text == "haloperidol"
    entities = [(token.i, token.i + 1, "Chemical") for token in doc if token.text in {"haloperidol", "HAL"}]
    set_head(doc, "bc5cdr", entities)
    nlp.add_pipe("bio_ner_abbreviations")(doc)
    assert triples(doc.spans["bc5cdr"]) == entities
    assert triples(doc.ents) == entities


def test_a_long_form_ends_before_the_hyphen_of_a_compound_the_parenthesis_interrupts(nlp):
    """BC5CDR 24587916: the long form ended on the hyphen, where no entity ends, so the head's
    mentions of "Dex" were dropped and the one it missed was not added."""
    from spacy_bioner.tokenizer import make_bio_nlp

    doc = make_bio_nlp()("Dexamethasone- (Dex-) induced hypertension. Rats got Dex, and Dex-induced hypertension fell.")
    entities = [(token.i, token.i + 1, "Chemical") for token in doc if token.text in {"Dexamethasone", "Dex"}]
    assert len(entities) == 4
    set_head(doc, "bc5cdr", entities[:2] + entities[3:])
    nlp.add_pipe("bio_ner_abbreviations")(doc)
    assert triples(doc.spans["bc5cdr"]) == entities
    assert triples(doc.ents) == entities


def ruler_pipeline(patterns):
    """Entities from another component, a real one (spaCy's entity ruler stands in for its `ner`),
    corrected in doc.ents by the abbreviation step of a pipeline with no bio_ner head."""
    nlp = spacy.blank("en")
    assert [token.text for token in nlp(TEXT)] == TEXT.split(" ")
    nlp.add_pipe("entity_ruler").add_patterns(patterns)
    nlp.add_pipe("bio_ner_abbreviations", config={"spans_keys": [], "correct_ents": True})
    return nlp


@pytest.mark.parametrize("hal", [[], [{"label": "Disease", "pattern": "HAL"}]])
def test_correct_ents_makes_another_components_entities_agree(hal, tmp_path):
    """Haloperidol is a Chemical: each HAL becomes one, added where missing, relabelled where a
    Disease; no entity ends "Parkinson disease", so its short form's entities go. It survives saving."""
    nlp = ruler_pipeline([
        {"label": "Chemical", "pattern": "Haloperidol"},
        {"label": "Disease", "pattern": "PD"},
        {"label": "Disease", "pattern": "catalepsy"},
        *hal,
    ])
    with nlp.select_pipes(disable=["bio_ner_abbreviations"]):
        hals = [(start, start + 1, "Disease") for start in (2, 15, 24)] if hal else []
        assert triples(nlp(TEXT).ents) == sorted([(0, 1, "Chemical"), (5, 6, "Disease"), (12, 13, "Disease"), (20, 21, "Disease"), *hals])
    expected = [(0, 1, "Chemical"), (2, 3, "Chemical"), (5, 6, "Disease"), (15, 16, "Chemical"), (24, 25, "Chemical")]
    assert triples(nlp(TEXT).ents) == expected
    nlp.to_disk(tmp_path / "pipeline")
    loaded = spacy.load(tmp_path / "pipeline")
    assert loaded.get_pipe("bio_ner_abbreviations").correct_ents
    assert triples(loaded(TEXT).ents) == expected


def test_correct_ents_keeps_entities_with_an_id():
    """An entity ruler pattern with an id (or a linker's kb_id) is deliberate: not relabelled, not dropped."""
    nlp = ruler_pipeline([
        {"label": "Chemical", "pattern": "Haloperidol"},
        {"label": "Disease", "pattern": "HAL", "id": "hal-disease"},
        {"label": "Disease", "pattern": "PD", "id": "pd"},
    ])
    doc = nlp(TEXT)
    assert [(e.start, e.label_, e.id_) for e in doc.ents] == [
        (0, "Chemical", ""), (2, "Disease", "hal-disease"), (12, "Disease", "pd"), (15, "Disease", "hal-disease"),
        (20, "Disease", "pd"), (24, "Disease", "hal-disease"),
    ]


def test_a_pipeline_without_heads_is_told_to_set_correct_ents(recwarn):
    """Added after spaCy's `ner` with the default settings, the step would silently correct nothing."""
    nlp = spacy.blank("en")
    nlp.add_pipe("entity_ruler").add_patterns([{"label": "Chemical", "pattern": "Haloperidol"}])
    nlp.add_pipe("bio_ner_abbreviations")
    for _ in range(2):
        assert triples(nlp(TEXT).ents) == [(0, 1, "Chemical")]
    messages = [str(w.message) for w in recwarn if "no bio_ner head" in str(w.message)]
    assert messages == [
        "bio_ner_abbreviations: the pipeline has no bio_ner head, so no short form is corrected. To correct "
        "the entities of another NER component (spaCy's `ner`), set correct_ents = true."
    ]
