"""Readers: the embedded corpora convert with the published counts, bad
input fails with a one-line message, and random input either converts
faithfully or raises ConversionError."""

import bz2
import gzip
import io
import json
import lzma
import os
import re
import zipfile
from collections import Counter, defaultdict
from contextlib import nullcontext
from pathlib import Path
from typing import List, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from toy import BC5CDR_IOB, JNLPBA_TEST, JNLPBA_TRAIN, PUBTATOR, iob_sentences, piped

from spacy_bioner.corpora import (
    ConversionError,
    ConversionReport,
    read_bioc,
    read_brat,
    read_iob,
    read_jnlpba,
    read_jsonl,
    read_lines,
    read_pubtator,
    read_pubtator_texts,
)
from spacy_bioner.evaluation import docs_to_iob


def pubtator_mentions(path: Path) -> List[Tuple[str, int, int, str]]:
    """(pmid, start, end, label) of every mention line, read independently."""
    mentions = []
    for line in lzma.open(path, "rt", encoding="utf8"):
        fields = line.rstrip("\n").split("\t")
        if len(fields) >= 6 and fields[1].isdigit():
            mentions.append((fields[0], int(fields[1]), int(fields[2]), fields[4]))
    return mentions


# --- the embedded corpora ----------------------------------------------------


@pytest.fixture(scope="module")
def jnlpba_train(bio_nlp):
    return read_jnlpba(JNLPBA_TRAIN, bio_nlp.vocab)


def test_jnlpba_train_dev_split(jnlpba_train):
    docs, report = jnlpba_train
    assert len(docs) == report.documents == 2000
    n_sents = [len(list(doc.sents)) for doc in docs]
    assert sum(n_sents[:1800]) == 16807
    assert sum(n_sents[1800:]) == 1739
    assert report.sentences == 18546 and report.tokens == 492551
    assert report.entities == {
        "protein": 30269, "DNA": 9533, "RNA": 951, "cell_line": 3830, "cell_type": 6718
    }
    assert not report.repaired and not report.dropped and not report.expanded
    assert all(doc.user_data["pmid"].isdigit() for doc in docs)
    # The spans contract: doc.ents and doc.spans["jnlpba"] are the same spans.
    for doc in docs[:50]:
        assert [(s.start, s.end, s.label_) for s in doc.spans["jnlpba"]] == [
            (s.start, s.end, s.label_) for s in doc.ents
        ]


def test_jnlpba_test(bio_nlp):
    # Two PMIDs of the test set mark two abstracts each (of other texts).
    with pytest.warns(UserWarning, match=r"Genia4EReval2.iob2.xz: 2 documents with the id of an earlier one "
                                         r"\(98281994 of document 151, as of document 69\): the id no longer"):
        docs, report = read_jnlpba(JNLPBA_TEST, bio_nlp.vocab)
    assert len(docs) == 404 and report.sentences == 3856 and report.tokens == 101039
    assert report.entities == {
        "protein": 5067, "DNA": 1056, "RNA": 118, "cell_line": 500, "cell_type": 1921
    }


@pytest.mark.parametrize(
    "split,chemical,disease", [("train", 5203, 4182), ("dev", 5347, 4244), ("test", 5385, 4424)]
)
def test_bc5cdr_pubtator(split, chemical, disease, bio_nlp):
    path = PUBTATOR[split]
    mentions = pubtator_mentions(path)
    in_file = Counter(label for *_, label in mentions)
    assert in_file == {"Chemical": chemical, "Disease": disease}

    docs, report = read_pubtator(path, bio_nlp)
    assert len(docs) == report.documents == 500
    # Converted entities plus the reported drops account for every mention.
    dropped = Counter(issue.label for issue in report.dropped)
    for label in in_file:
        assert report.entities[label] + dropped[label] == in_file[label]
    # Exact alignment, measured against the file's offsets.
    exact = set()
    for doc in docs:
        assert doc.has_annotation("SENT_START")
        assert list(doc.spans["bc5cdr"]) == list(doc.ents)
        exact.update(
            (doc.user_data["pmid"], e.start_char, e.end_char, e.label_) for e in doc.ents
        )
    aligned = sum(1 for m in mentions if m in exact)
    assert aligned / len(mentions) >= 0.995
    assert aligned + len(report.expanded) + len(report.dropped) == len(mentions)
    assert len(report.of_kind("relation")) > 1000
    assert report.loss_fraction < 0.005


def test_pubtator_kb_ids_and_composites(bio_nlp):
    docs, report = read_pubtator(PUBTATOR["train"], bio_nlp)
    first = docs[0]
    assert first.user_data["pmid"] == "227508"
    assert (first.ents[0].text, first.ents[0].label_, first.ents[0].kb_id_) == (
        "Naloxone", "Chemical", "D009270"
    )
    assert any(e.kb_id_ == "" for e in first.ents)  # "-1": no MeSH id
    composites = report.of_kind("composite")
    assert composites and all("|" in issue.reason for issue in composites)


def test_pubtator_a_pmid_given_twice_is_warned_of(tmp_path, bio_nlp):
    """Each copy is a document (as BioC's and Label Studio's readers keep them), and the warning says where."""
    lines = ["1|t|Aspirin.", "1|a|", "", "2|t|Asthma.", "2|a|", "", "1|t|Aspirin again.", "1|a|", ""]
    with pytest.warns(UserWarning, match=r"c.pubtator: 1 document with the PMID of an earlier one "
                                         r"\(PMID 1 at line 7, as at line 1\): the id no longer tells them apart"):
        docs, _ = read_pubtator(write(tmp_path, "c.pubtator", "\n".join(lines).encode()), bio_nlp)
    assert [doc.text for doc in docs] == ["Aspirin. ", "Asthma. ", "Aspirin again. "]


def test_documents_without_text_are_skipped_and_counted(tmp_path, bio_nlp):
    """An empty document is skipped and reported in each format (brat's were; PubTator wrote a Doc of
    one space, BioC refused the whole file); one with annotations on no text is an error."""
    pubtator = write(tmp_path, "e.pubtator", b"7|t|\n7|a|\n\n8|t|Asthma.\n8|a|\n8\t0\t6\tAsthma\tDisease\t-1\n")
    docs, report = read_pubtator(pubtator, bio_nlp)
    assert [doc.text for doc in docs] == ["Asthma. "] and [e.text for e in docs[0].ents] == ["Asthma"]
    assert [(i.kind, i.where.split(":", 1)[1]) for i in report.issues] == [("skipped", "1 PMID 7")]
    documents = [bioc_document("d1", [(0, "")]), bioc_document("d2", [(0, "Asthma.")], [("a", "Disease", [(0, 6)], "Asthma", {})])]
    docs, report = read_bioc(bioc_file(tmp_path / "e.xml", documents), bio_nlp)
    assert [doc.text for doc in docs] == ["Asthma."] and [e.text for e in docs[0].ents] == ["Asthma"]
    assert [(i.kind, i.where.split(" ", 1)[1]) for i in report.issues] == [("skipped", "document d1")]
    with pytest.raises(ConversionError, match="e2.xml:.* document d1: no text, but 1 annotation"):
        read_bioc(bioc_file(tmp_path / "e2.xml", [bioc_document("d1", [(0, "")], [("a", "Disease", [(0, 0)], "", {})])]),
                  bio_nlp)
    with pytest.raises(ConversionError, match="e3.xml: no BioC document with text"):
        read_bioc(bioc_file(tmp_path / "e3.xml", documents[:1]), bio_nlp)


def test_files_saved_with_a_bom_and_concatenated_read_as_each_alone(tmp_path, bio_nlp):
    """`cat a b` of files that each start with a BOM (Windows editors): the second BOM begins a line,
    where it is no text (it was a token's in IOB, and a malformed PubTator title line)."""
    bom = "\ufeff".encode()
    iob = write(tmp_path, "c.tsv", (bom + b"IL-2\tB-protein\n\n") * 2)
    docs, _ = read_iob(iob, bio_nlp.vocab, n_sents=1)
    assert [[(e.text, e.label_) for e in doc.ents] for doc in docs] == [[("IL-2", "protein")]] * 2
    pubtator = write(tmp_path, "c.pubtator", bom + b"1|t|Asthma.\n1|a|\n\n" + bom + b"2|t|Aspirin.\n2|a|\n")
    docs, _ = read_pubtator(pubtator, bio_nlp)
    assert [(doc.user_data["pmid"], doc.text) for doc in docs] == [("1", "Asthma. "), ("2", "Aspirin. ")]


def test_pubtator_no_id_in_a_composite_is_empty_in_its_place(tmp_path, bio_nlp):
    """"-1" (no MeSH id) is "" in a composite's ids too (BC5CDR's PMID 8638876 has "D002544|-1"),
    each id in the place of its part; a composite of "-1"s has no kb_id at all."""
    text = "Arterial and venous occlusion and liver or kidney toxicity."
    lines = [
        f"5|t|{text}",
        "5|a|",
        "5\t0\t29\tArterial and venous occlusion\tDisease\tD002544|-1\tArterial occlusion|venous occlusion",
        "5\t34\t58\tliver or kidney toxicity\tDisease\t-1|-1\tliver toxicity|kidney toxicity",
    ]
    docs, _ = read_pubtator(write(tmp_path, "c.pubtator", ("\n".join(lines) + "\n").encode()), bio_nlp)
    assert [(e.text, e.kb_id_) for e in docs[0].ents] == [
        ("Arterial and venous occlusion", "D002544|"), ("liver or kidney toxicity", "")
    ]


@pytest.mark.parametrize("split,n_sents", [("train", 4560), ("devel", 4581), ("test", 4797)])
def test_bc5cdr_iob(split, n_sents, bio_nlp):
    path = BC5CDR_IOB[split]
    docs, report = read_iob(path, bio_nlp.vocab, spans_key="bc5cdr")
    assert len(docs) == report.sentences == n_sents
    sentences = iob_sentences(path)
    b_tags = Counter(tag[2:] for sent in sentences for _, tag in sent if tag.startswith("B-"))
    assert report.entities == b_tags
    assert docs_to_iob(docs, spans_key="bc5cdr") == sentences


def test_iob_n_sents_groups_sentences(bio_nlp):
    docs, report = read_iob(BC5CDR_IOB["train"], bio_nlp.vocab, n_sents=10)
    assert len(docs) == 456 and report.sentences == 4560
    assert docs_to_iob(docs, spans_key="ents") == iob_sentences(BC5CDR_IOB["train"])


@pytest.mark.parametrize("split,pubtator", [("train", "train"), ("devel", "dev"), ("test", "test")])
def test_bc5cdr_iob_regrouped_into_its_abstracts(split, pubtator, bio_nlp):
    texts = read_pubtator_texts(PUBTATOR[pubtator])
    docs, report = read_iob(BC5CDR_IOB[split], bio_nlp.vocab, spans_key="bc5cdr", documents=texts)
    # Every sentence, token and tag of the file, in its order; one Doc per abstract.
    assert docs_to_iob(docs, spans_key="bc5cdr") == iob_sentences(BC5CDR_IOB[split])
    assert len(docs) == 500 and sorted(doc.user_data["pmid"] for doc in docs) == sorted(dict(texts))
    by_pmid = dict(texts)
    squashed = [("".join(doc.text.split()), "".join(by_pmid[doc.user_data["pmid"]].split())) for doc in docs]
    assert all(ours == theirs for ours, theirs in squashed)
    # The abstract as PubTator writes it, but where it has a run of whitespace (one space here).
    differ = [doc for doc in docs if doc.text != by_pmid[doc.user_data["pmid"]]]
    assert len(differ) < 10
    assert all(doc.text == " ".join(by_pmid[doc.user_data["pmid"]].split()) for doc in differ)


def test_regrouped_documents_keep_their_spacing_and_order(tmp_path, bio_nlp):
    iob = write(tmp_path, "c.iob", b"IL\tB-protein\n-\tI-protein\n2\tI-protein\nrises\tO\n.\tO\n\n"
                b"It\tO\nfalls\tO\n.\tO\n\nCa2\tB-Chemical\n+\tI-Chemical\nflows\tO\n")
    texts = [("7", "Ca2+ flows"), ("3", "IL-2 rises.  It falls.")]
    docs, _ = read_iob(iob, bio_nlp.vocab, documents=iter(texts))  # any iterable
    assert [(doc.user_data["pmid"], doc.text) for doc in docs] == [("3", "IL-2 rises. It falls."), ("7", "Ca2+ flows")]
    assert [[(e.text, e.label_) for e in doc.ents] for doc in docs] == [[("IL-2", "protein")], [("Ca2+", "Chemical")]]
    assert [s.text for s in docs[0].sents] == ["IL-2 rises.", "It falls."]


def test_documents_without_a_sentence_in_the_file_are_named(tmp_path, bio_nlp):
    """They were left out without a word."""
    iob = write(tmp_path, "c.iob", b"Ca2\tB-Chemical\n+\tI-Chemical\nflows\tO\n")
    texts = [("3", "IL-2 rises."), ("7", "Ca2+ flows"), ("9", "p53 binds.")]
    with pytest.warns(UserWarning, match=r"c\.iob: no sentence of 2 of the 3 documents is in the file \(first: 3\)"):
        docs, _ = read_iob(iob, bio_nlp.vocab, documents=texts)
    assert [doc.user_data["pmid"] for doc in docs] == ["7"]


def test_n_sents_of_a_file_with_document_markers_is_an_error(tmp_path, bio_nlp):
    """It was ignored: one Doc per marked document all the same."""
    iob = write(tmp_path, "c.iob", b"###MEDLINE:1\n\na\tO\n\nb\tO\n\n###MEDLINE:2\n\nc\tO\n")
    with pytest.raises(ConversionError, match="marks its own documents"):
        read_iob(iob, bio_nlp.vocab, n_sents=2)
    assert len(read_iob(iob, bio_nlp.vocab)[0]) == 2


def test_a_document_without_sentences_is_left_out_with_a_warning(tmp_path, bio_nlp):
    """It was left out without a word, which shifts a split by documents (--dev-docs) by one."""
    iob = write(tmp_path, "c.iob", b"###MEDLINE:1\n\n###MEDLINE:2\n\nc\tO\n")
    with pytest.warns(UserWarning, match=r"c.iob: 1 ###MEDLINE: document without sentences left out: 1 \(line 1\)"):
        docs, _ = read_iob(iob, bio_nlp.vocab)
    assert [doc.user_data["pmid"] for doc in docs] == ["2"]
    # A line with a tag and no token names what it lacks.
    with pytest.raises(ConversionError, match=r"c.iob:1: no token \(expected 'token<TAB>tag'\)"):
        read_iob(write(tmp_path, "c.iob", b"\tO\n"), bio_nlp.vocab)


@pytest.mark.parametrize(
    "data,texts,message",
    [
        (b"a\tO\nb\tO\n\nz\tO\n", [("1", "a b c"), ("2", "z")],
         "c.iob:4: the sentence 'z'... does not go on with document 1, whose text goes on with 'c'"),
        (b"a\tO\n", [("1", "a b")], "the file ends before document 1 does, whose text goes on with 'b'"),
        (b"a\tO\n\na\tO\n", [("1", "a")], "c.iob:3: the sentence 'a'... begins none of the 1 documents"),
        (b"Background\tO\n.\tO\n\nAspirin\tO\n", [("A", "Background. Ibuprofen"), ("B", "Background. Aspirin")],
         "does not go on with document A (taken as the first of 2 documents that begin alike)"),
        (b"-DOCSTART-\n\na\tO\n\n-DOCSTART-\n\nb\tO\n", [("1", "a b")], "marks its own documents"),
        (b"a\tO\nb\tO\n", [("1", "a b")], "give documents or n_sents, not both"),
    ],
)
def test_regrouping_errors_name_the_sentence_or_document(tmp_path, data, texts, message, bio_nlp):
    iob = write(tmp_path, "c.iob", data)
    with pytest.raises(ConversionError, match=re.escape(message)):
        read_iob(iob, bio_nlp.vocab, documents=texts, n_sents=2 if "n_sents" in message else 1)


# --- small inputs: schemes, repairs, errors ----------------------------------


@pytest.mark.parametrize("source, options, n_docs", [
    (JNLPBA_TEST, {}, 404),  # ###MEDLINE: abstracts
    (BC5CDR_IOB["test"], {"n_sents": 10}, None),  # sentences without markers
    (BC5CDR_IOB["test"], {"documents": "test"}, 500),  # sentences regrouped into their abstracts
], ids=["marked", "n_sents", "documents"])
def test_an_iob_file_is_read_twice_and_never_held(monkeypatch, source, options, n_docs, bio_nlp):
    """Read through first (for its scheme and checks), then a document at a time: the first Doc comes
    when the second read has reached no further than its own lines, so that convert --shard-size
    holds a few documents of a file of any size (it held the parsed file, ~25 bytes a byte)."""
    from spacy_bioner.corpora import iob

    passes: List[int] = []  # lines read, per read of the file

    def counted(path):
        passes.append(0)
        for line in read_lines(path):
            passes[-1] += 1
            yield line

    monkeypatch.setattr(iob, "iter_lines", counted)
    if "documents" in options:
        options = {"documents": read_pubtator_texts(PUBTATOR[options["documents"]])}
    docs = iob.iter_iob(source, bio_nlp.vocab, report=ConversionReport(str(source)), **options)
    first = next(docs)
    assert len(passes) == 2 and 0 < passes[1] < passes[0] / 50
    assert passes[1] >= len(first) + len(list(first.sents))  # a line a token, a blank line a sentence
    rest = list(docs)
    assert passes[1] == passes[0]
    expected, _ = read_iob(source, bio_nlp.vocab, **options)
    assert 1 + len(rest) == len(expected) == (n_docs or len(expected))


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def ents(doc):
    return [(e.start, e.end, e.label_) for e in doc.ents]


@pytest.mark.parametrize(
    "tags,scheme",
    [
        ("B-P I-P O B-D B-D", "iob2"),
        ("I-P I-P O I-D B-D", "iob1"),
        ("B-P E-P O S-D S-D", "bioes"),
        ("B-P L-P O U-D U-D", "bioes"),
    ],
)
def test_iob_schemes(tmp_path, tags, scheme, bio_nlp):
    lines = "".join(f"w{i}\t{tag}\n" for i, tag in enumerate(tags.split()))
    path = write(tmp_path, "x.iob", lines.encode())
    for scheme_arg in ("auto", scheme):
        docs, report = read_iob(path, bio_nlp.vocab, scheme=scheme_arg)
        assert ents(docs[0]) == [(0, 2, "P"), (3, 4, "D"), (4, 5, "D")]
        assert not report.repaired


def test_iob_repairs_dangling_inside_tag(tmp_path, bio_nlp):
    path = write(tmp_path, "x.iob", b"a\tO\nb\tI-P\nc\tI-P\nd\tB-D\ne\tI-P\n")
    with pytest.warns(UserWarning, match="x.iob"):
        docs, report = read_iob(path, bio_nlp.vocab, scheme="iob2")
    assert ents(docs[0]) == [(1, 3, "P"), (3, 4, "D"), (4, 5, "P")]
    assert [issue.where for issue in report.repaired] == [f"{path}:2", f"{path}:5"]


def test_bioes_entities_not_closed_by_an_end_tag_are_repaired_and_noted(tmp_path, bio_nlp):
    """BIOES ends an entity with E- (or L-): a B- run cut by O, another entity or the sentence
    end is read to its last tag, and noted as I-/E- repairs are, not taken silently."""
    path = write(tmp_path, "x.bioes", b"a\tB-P\nb\tO\nc\tB-P\nd\tI-P\ne\tS-D\nf\tB-D\ng\tE-D\nh\tB-P\n")
    with pytest.warns(UserWarning, match=r"x\.bioes: 3 entities broke the BIOES scheme and were repaired"):
        docs, report = read_iob(path, bio_nlp.vocab, scheme="bioes")
    assert ents(docs[0]) == [(0, 1, "P"), (2, 4, "P"), (4, 5, "D"), (5, 7, "D"), (7, 8, "P")]
    assert [(issue.where, issue.reason) for issue in report.repaired] == [
        (f"{path}:1", "B-P not closed by E-P (next: O): read as an entity ending at B-P"),
        (f"{path}:3", "B-P not closed by E-P (next: S-D): read as an entity ending at I-P"),
        (f"{path}:8", "B-P not closed by E-P (next: sentence end): read as an entity ending at B-P"),
    ]
    # A dangling I- that starts an unclosed entity is one repair, not two.
    dangling = write(tmp_path, "y.bioes", b"a\tI-P\nb\tO\nc\tS-D\n")
    with pytest.warns(UserWarning, match="1 entities broke"):
        _, report = read_iob(dangling, bio_nlp.vocab, scheme="bioes")
    assert [issue.reason for issue in report.repaired] == ["I-P after sentence start read as the start of an entity"]


def test_iob_documents_and_columns(tmp_path, bio_nlp):
    data = b"-DOCSTART- -X- O O\n\nEU NNP B-ORG\nrejects VBZ O\n\n-DOCSTART- -X- O O\n\nPeter NNP B-PER\n"
    docs, report = read_iob(write(tmp_path, "c.conll", data), bio_nlp.vocab)
    assert [d.text.split() for d in docs] == [["EU", "rejects"], ["Peter"]]
    assert report.entities == {"ORG": 1, "PER": 1}
    assert all("ents" in d.spans for d in docs)


def test_crlf_and_bom_accepted(tmp_path, bio_nlp):
    iob = write(tmp_path, "a.iob", "\ufeffIL-2\tB-protein\r\ngene\tI-protein\r\n\r\nx\tO\r\n".encode())
    docs, _ = read_iob(iob, bio_nlp.vocab)
    assert [d.text.split() for d in docs] == [["IL-2", "gene"], ["x"]]
    assert ents(docs[0]) == [(0, 2, "protein")]
    pubtator = write(
        tmp_path,
        "a.pubtator",
        "\ufeff1|t|Aspirin toxicity.\r\n1|a|None.\r\n1\t0\t7\tAspirin\tChemical\tD001241\r\n\r\n".encode(),
    )
    docs, _ = read_pubtator(pubtator, bio_nlp)
    assert docs[0].text == "Aspirin toxicity. None."
    assert [(e.text, e.kb_id_) for e in docs[0].ents] == [("Aspirin", "D001241")]


def test_space_separated_columns_keep_a_no_break_space_inside_a_token(tmp_path, bio_nlp):
    """Space-separated IOB splits on ASCII spaces only: "5\u00a0mg" is one token, not "5" with "mg" lost."""
    iob = write(tmp_path, "nbsp.iob", "5\u00a0mg B-Chemical\ndaily O\n".encode())
    docs, _ = read_iob(iob, bio_nlp.vocab)
    assert [t.text for t in docs[0]] == ["5\u00a0mg", "daily"]
    assert ents(docs[0]) == [(0, 1, "Chemical")]


def test_stray_columns(tmp_path, bio_nlp):
    """IOB: the first column is the token and the last the tag; columns in
    between (POS, chunk) and empty trailing columns are ignored. PubTator:
    columns after the 7th (composite) are ignored."""
    iob = write(tmp_path, "x.iob", b"IL-2\tNN\tB-NP\tB-protein\t\r\ngene NN I-protein  \r\nx\tO\t\t\n")
    docs, _ = read_iob(iob, bio_nlp.vocab)
    assert [t.text for t in docs[0]] == ["IL-2", "gene", "x"]
    assert [(e.text, e.label_) for e in docs[0].ents] == [("IL-2 gene", "protein")]
    pubtator = write(
        tmp_path,
        "x.pubtator",
        b"1|t|Aspirin toxicity.\n1|a|None.\n1\t0\t7\tAspirin\tChemical\tD001241\t\tstray\textra\n",
    )
    docs, report = read_pubtator(pubtator, bio_nlp)
    assert [(e.text, e.kb_id_) for e in docs[0].ents] == [("Aspirin", "D001241")]
    assert not report.issues


@pytest.mark.parametrize(
    "third",
    [["O", "O", "O"], ["B-protein", "O", "B-protein"]],
    ids=["a layer of O", "predicted tags"],
)
def test_a_second_column_of_tags_of_the_same_labels_needs_tag_column(tmp_path, third, bio_nlp):
    """conlleval's "token gold predicted", or a second annotation layer: the last column is not
    taken for the gold without a word; --tag-column says which one is."""
    gold = ["B-protein", "I-protein", "O"]
    lines = [f"{word}\t{tag}\t{other}" for word, tag, other in zip(["IL-2", "gene", "x"], gold, third)]
    iob = write(tmp_path, "three.tsv", "\n".join(lines).encode())
    with pytest.raises(ConversionError, match="column 2 holds entity tags that differ from those of the last"):
        read_iob(iob, bio_nlp.vocab)
    docs, _ = read_iob(iob, bio_nlp.vocab, tag_column=2)
    assert ents(docs[0]) == [(0, 2, "protein")]
    docs, _ = read_iob(iob, bio_nlp.vocab, tag_column=3)
    assert ents(docs[0]) == [(0, 1, "protein")] * (third[0] != "O") + [(2, 3, "protein")] * (third[2] != "O")


@pytest.mark.parametrize(
    "lines,message",
    [
        # conlleval's file with one prediction missing: that line's last column is its gold.
        (["IL-2\tB-protein\tB-protein", "gene\tI-protein\t", "x\tB-protein\tO"], "column 2 holds entity tags"),
        # GENIA's two layers, of labels of their own: no chunk tags.
        (["IL-2\tB-DNA\tB-protein", "gene\tI-DNA\tO"], "column 2 holds entity tags"),
    ],
    ids=["a line short of a column", "two layers of other labels"],
)
def test_a_guess_at_the_tag_column_is_refused(tmp_path, lines, message, bio_nlp):
    iob = write(tmp_path, "g.tsv", "\n".join(lines).encode())
    with pytest.raises(ConversionError, match=message):
        read_iob(iob, bio_nlp.vocab)
    docs, _ = read_iob(iob, bio_nlp.vocab, tag_column=2)
    assert ents(docs[0])[0][:2] == (0, 2)


def test_lines_of_other_numbers_of_columns_take_their_last_where_no_other_holds_entity_tags(tmp_path, bio_nlp):
    iob = write(tmp_path, "r.tsv", b"IL-2\tNN\tB-protein\ngene\tI-protein\nx\tNN\tO\n")
    docs, _ = read_iob(iob, bio_nlp.vocab)
    assert ents(docs[0]) == [(0, 2, "protein")]


def test_a_label_for_tags_that_have_their_own_is_warned_of(tmp_path, bio_nlp):
    iob = write(tmp_path, "l.tsv", b"IL-2\tB-protein\n")
    with pytest.warns(UserWarning, match="no bare tag .* for --label 'Disease'"):
        docs, _ = read_iob(iob, bio_nlp.vocab, label="Disease")
    assert ents(docs[0]) == [(0, 1, "protein")]


def test_chunk_tags_beside_the_entity_tags_are_no_second_layer(tmp_path, bio_nlp):
    """CoNLL-2003: POS, chunk (B-NP, of other labels) and the entity tags last."""
    iob = write(tmp_path, "c.conll", b"EU NNP B-NP B-ORG\nrejects VBZ B-VP O\nGerman JJ B-NP B-MISC\n")
    docs, report = read_iob(iob, bio_nlp.vocab)
    assert report.entities == {"ORG": 1, "MISC": 1}
    with pytest.raises(ConversionError, match="no column 5"):
        read_iob(iob, bio_nlp.vocab, tag_column=5)


def test_bare_tags_take_the_label_given(tmp_path, bio_nlp):
    """BioBERT's single-type corpora (NCBI-disease, BC2GM) tag B, I and O, naming no label."""
    iob = write(tmp_path, "ncbi.tsv", b"Familial\tB\nbreast\tI\ncancer\tI\nis\tO\nrare\tO\n")
    with pytest.raises(ConversionError, match=r"unknown tag 'B'.*--label"):
        read_iob(iob, bio_nlp.vocab)
    docs, report = read_iob(iob, bio_nlp.vocab, label="Disease")
    assert ents(docs[0]) == [(0, 3, "Disease")]
    assert report.entities == {"Disease": 1}


def jsonl(tmp_path: Path, records) -> Path:
    return write(tmp_path, "in.jsonl", "\n".join(r if isinstance(r, str) else json.dumps(r) for r in records).encode())


def test_jsonl_entities_by_offsets_as_prodigy_and_doccano_write_them(tmp_path, bio_nlp):
    text = "Cisplatin nephrotoxicity in rats."
    records = [
        {"id": "p1", "text": text, "spans": [{"start": 0, "end": 9, "label": "Chemical"},
                                             {"start": 10, "end": 24, "label": "Disease"}], "answer": "accept"},
        {"id": 2, "text": text.replace("rats", "mice"), "spans": [{"start_offset": 0, "end_offset": 9, "label": "Chemical"}]},
        {"text": "No entity here.", "spans": []},
        {"text": text, "spans": [{"start": 0, "end": 9, "label": "Chemical"}], "answer": "reject"},
    ]
    docs, report = read_jsonl(jsonl(tmp_path, records), bio_nlp, spans_key="cdr")
    assert [(ents(doc), doc.user_data.get("pmid")) for doc in docs] == [
        ([(0, 1, "Chemical"), (1, 2, "Disease")], "p1"), ([(0, 1, "Chemical")], "2"), ([], None)]
    assert [list(doc.spans["cdr"]) == list(doc.ents) for doc in docs] == [True] * 3
    assert [(issue.kind, issue.where) for issue in report.issues] == [("skipped", f"{tmp_path / 'in.jsonl'}:4")]
    assert report.entities == {"Chemical": 2, "Disease": 1}
    doccano = jsonl(tmp_path, [{"text": text, "label": [[10, 24, "Disease"], [0, 9, "Chemical"]]}])
    docs, _ = read_jsonl(doccano, bio_nlp, entities_key="label")
    assert ents(docs[0]) == [(0, 1, "Chemical"), (1, 2, "Disease")]


def test_jsonl_entities_inside_tokens_or_overlapping_are_expanded_or_dropped_and_reported(tmp_path, bio_nlp):
    text = "Ca2+ and IL-2 receptor"
    spans = [[0, 2, "Chemical"], [9, 13, "protein"], [9, 22, "protein"]]
    docs, report = read_jsonl(jsonl(tmp_path, [{"text": text, "spans": spans}]), bio_nlp)
    assert [e.text for e in docs[0].ents] == ["Ca2", "IL-2 receptor"]
    assert [issue.kind for issue in report.issues] == ["expanded", "dropped"]
    assert report.loss_fraction == pytest.approx(2 / 3)


def test_whitespace_at_a_mentions_edges_is_no_part_of_it_nor_a_loss(tmp_path, bio_nlp):
    text = "Aspirin  and\nheparin."
    docs, report = read_jsonl(jsonl(tmp_path, [{"text": text, "spans": [[0, 9, "Chemical"], [12, 20, "Chemical"],
                                                                         [7, 9, "Chemical"]]}]), bio_nlp)
    assert [e.text for e in docs[0].ents] == ["Aspirin", "heparin"]
    assert [(i.kind, i.reason) for i in report.issues] == [("dropped", "'  ' [7:9] covers no token but whitespace")]


def test_a_mention_of_whitespace_alone_is_dropped_even_on_a_whitespace_token(tmp_path, bio_nlp):
    """"\n\n" is a token of its own: a mention of exactly it was placed as an entity of whitespace."""
    text = "Aspirin.\n\nHeparin."
    docs, report = read_jsonl(jsonl(tmp_path, [{"text": text, "spans": [[8, 10, "X"], [10, 17, "Chemical"]]}]), bio_nlp)
    assert [e.text for e in docs[0].ents] == ["Heparin"]
    assert [(i.kind, i.reason) for i in report.issues] == [("dropped", "'\\n\\n' [8:10] covers no token but whitespace")]


def test_an_expanded_mention_keeps_no_blank_token_at_its_edges(tmp_path, bio_nlp):
    """An invisible character is a token of its own, no more a part of a mention than a space is."""
    text = "Aspirin \u200bhelps\u2060 rats"
    docs, report = read_jsonl(jsonl(tmp_path, [{"text": text, "spans": [[1, 9, "Chemical"], [10, 16, "X"]]}]), bio_nlp)
    assert [e.text for e in docs[0].ents] == ["Aspirin", "helps"]
    assert [issue.kind for issue in report.issues] == ["expanded", "expanded"]


@pytest.mark.parametrize(
    "record,message",
    [
        ('{"text": "a"', "in.jsonl:1: not JSON"),
        ('["a"]', "in.jsonl:1: a JSON list, not an object"),
        ({"body": "a"}, "in.jsonl:1: no 'text' field"),
        ({"text": " "}, "in.jsonl:1: an empty 'text' field"),
        ({"text": "abc", "spans": {"start": 0}}, "in.jsonl:1: 'spans' is a dict, not a list"),
        ({"text": "abc", "spans": [[0, 4, "X"]]}, "in.jsonl:1 entity 1: offsets 0-4 are no span of the text"),
        ({"text": "abc", "spans": [["0", 1, "X"]]}, "in.jsonl:1 entity 1: offsets '0'-1"),
        ({"id": "d", "text": "abc", "spans": [[0, 1, ""]]}, "in.jsonl:1 id d entity 1: no label"),
        ({"text": "abc", "spans": [[0, 1]]}, r"in.jsonl:1 entity 1: \[0, 1\] is no entity"),
        ({"text": "abc", "answer": "ignore"}, "in.jsonl:1: no record to convert \\(1 not accepted\\)"),
        ({"text": "abc", "label": [[0, 1, "X"]]}, "no record has a 'spans' field.*--entities-key.*label, text"),
        ({"text": "abc", "spans": [[0, 1, "X"]], "_view_id": "ner"}, "in.jsonl:1: a binary annotation"),
        ({"text": "ab\ud83d", "spans": []}, r"in.jsonl:1: half a UTF-16 pair \('\\ud83d'\) at character 2"),
        ({"id": True, "text": "abc", "spans": []}, "in.jsonl:1: the 'id' field is no string or integer: true"),
        ('{"text": "abc",\n', "one JSON object a line"),
    ],
)
def test_jsonl_bad_records_are_errors_naming_the_line(tmp_path, record, message, bio_nlp):
    with pytest.raises(ConversionError, match=message):
        read_jsonl(jsonl(tmp_path, [record]), bio_nlp)


def test_jsonl_what_is_no_loss_is_not_counted_as_one(tmp_path, bio_nlp):
    """A mention given twice is kept once, not lost; a record skipped is not checked; a text given
    twice is warned of (it could land in train and dev); a text past max_length is refused."""
    text = "Heparin and bleeding."
    records = [{"text": text, "spans": [[0, 7, "Chemical"], [0, 7, "Chemical"], [12, 20, "Disease"]]},
               {"text": "", "answer": "ignore"}, {"text": text, "spans": [[0, 7, "Chemical"]]}]
    with pytest.warns(UserWarning, match="1 record with the text of an earlier one \\(line 3, as line 1\\)"):
        docs, report = read_jsonl(jsonl(tmp_path, records), bio_nlp)
    assert [ents(doc) for doc in docs] == [[(0, 1, "Chemical"), (2, 3, "Disease")], [(0, 1, "Chemical")]]
    assert [issue.kind for issue in report.issues] == ["duplicate", "skipped"]
    assert report.loss_fraction == 0 and report.input_entities == 3
    # Given twice off the tokens' edges: one mention expanded, not two lost.
    misaligned = [{"text": "Ca2+ rose.", "spans": [[0, 2, "Chemical"], [0, 2, "Chemical"]]}]
    docs, report = read_jsonl(jsonl(tmp_path, misaligned), bio_nlp)
    assert [e.text for e in docs[0].ents] == ["Ca2"] and [i.kind for i in report.issues] == ["duplicate", "expanded"]
    assert report.input_entities == 1
    bio_nlp.max_length, length = 10, bio_nlp.max_length
    try:
        with pytest.raises(ConversionError, match="in.jsonl:1: a text of 21 characters, more than the tokenizer's"):
            read_jsonl(jsonl(tmp_path, records), bio_nlp)
    finally:
        bio_nlp.max_length = length


def test_jsonl_of_the_pubtator_test_set_converts_as_pubtator_does(tmp_path, bio_nlp):
    """The texts and mention offsets of the PubTator file, as JSON Lines: the same tokens and
    entities, and the same mentions expanded to the tokens (two in these 160 abstracts)."""
    pubtator_docs, pubtator_report = read_pubtator(PUBTATOR["test"], bio_nlp)
    texts = read_pubtator_texts(PUBTATOR["test"])[:160]
    mentions = defaultdict(list)
    for pmid, start, end, label in pubtator_mentions(PUBTATOR["test"]):
        mentions[pmid].append([start, end, label])
    records = [{"id": pmid, "text": text, "spans": mentions[pmid]} for pmid, text in texts]
    docs, report = read_jsonl(jsonl(tmp_path, records), bio_nlp, spans_key="bc5cdr")
    assert [(doc.user_data["pmid"], [t.text for t in doc], ents(doc)) for doc in docs] == [
        (doc.user_data["pmid"], [t.text for t in doc], ents(doc)) for doc in pubtator_docs[:160]]
    expanded = [issue.reason for issue in report.expanded]
    assert len(expanded) == 2 and expanded == [issue.reason for issue in pubtator_report.expanded[:2]]
    assert not report.dropped


# --- brat standoff ------------------------------------------------------------


def brat(folder: Path, name: str, text: str, *annotations: str, suffix: str = ".ann") -> Path:
    """NAME.txt and its annotation file under `folder`, each annotation a line; the path of the latter."""
    path = folder / f"{name}{suffix}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.with_suffix(".txt").write_bytes(text.encode())
    path.write_bytes("".join(f"{line}\n" for line in annotations).encode())
    return path


def test_brat_folder_as_brat_and_the_bionlp_shared_tasks_write_it(tmp_path, bio_nlp):
    """Documents by path, ids relative to the folder (dots in a name kept); a mention brat split at a line break is one span;
    normalizations as kb ids; an event's trigger, relations and attributes are no entities (counted); .a1
    and .a2 are read together; a text without annotations is left out with a warning."""
    text = "Cisplatin nephrotoxicity\n\nWe gave cis-\nplatin. Renal failure followed."
    brat(tmp_path, "a", text,
         "T1\tChemical 0 9\tCisplatin", "T2\tDisease 10 24\tnephrotoxicity",
         "T3\tChemical 34 38;39 45\tcis- platin", "T4\tDisease 47 60\tRenal failure",
         "T5\tRegulation 61 69\tfollowed", "E1\tRegulation:T5 Theme:T4",
         "N1\tReference T1 MESH:D002945\tCisplatin", "N2\tReference T1 CHEBI:27899\tcisplatin",
         "R1\tCauses Arg1:T1 Arg2:T2", "A1\tNegation T2", "#1\tAnnotatorNotes T2\tcheck")
    brat(tmp_path / "sub", "b.v2", "IL-2 binds IL-2R.", "T1\tProtein 0 4\tIL-2", suffix=".a1")
    (tmp_path / "sub" / "b.v2.a2").write_text("T2\tProtein 11 16\tIL-2R\nT3\tBinding 5 10\tbinds\n"
                                           "E1\tBinding:T3 Theme:T1 Theme2:T2\n")
    (tmp_path / "README.txt").write_text("Not annotated.")
    with pytest.warns(UserWarning, match=r"1 .txt file without annotations left out \(README.txt\)"):
        docs, report = read_brat(tmp_path, bio_nlp, spans_key="cdr")
    assert [doc.user_data["pmid"] for doc in docs] == ["a", "sub/b.v2"]
    assert [[(e.text, e.label_, e.kb_id_) for e in doc.spans["cdr"]] for doc in docs] == [
        [("Cisplatin", "Chemical", "MESH:D002945|CHEBI:27899"), ("nephrotoxicity", "Disease", ""),
         ("cis-\nplatin", "Chemical", ""), ("Renal failure", "Disease", "")],
        [("IL-2", "Protein", ""), ("IL-2R", "Protein", "")]]
    assert [list(doc.ents) == list(doc.spans["cdr"]) for doc in docs] == [True, True]
    assert [(i.kind, Path(i.where).name, i.label, i.doc_index) for i in report.issues] == [
        ("relation", "a.ann:6", "", 0), ("relation", "a.ann:9", "", 0), ("excluded", "a.ann:10", "", 0),
        ("excluded", "a.ann:5 T5", "Regulation", 0),
        ("relation", "b.v2.a2:3", "", 1), ("excluded", "b.v2.a2:2 T3", "Binding", 1)]
    assert report.loss_fraction == 0 and report.entities == {"Chemical": 2, "Disease": 2, "Protein": 2}
    # A title without a period ends at the blank line.
    assert [s.text for s in docs[0].sents][0] == "Cisplatin nephrotoxicity\n\n"


def test_brat_as_inception_writes_it_and_folders_through_links(tmp_path, bio_nlp):
    """INCEpTION's Named Entity layer: the label in the attribute "value" (spaces in it); a tab inside a mention's
    text, as brat's own parser keeps it; a folder linked into the corpus read (once, whatever links
    back); a NAME.ann beside NAME.a1 warned of."""
    corpus, elsewhere = tmp_path / "corpus", tmp_path / "elsewhere"
    brat(corpus, "a", "Asthma and IL-2\treceptor.", "T1\tNamedEntity 0 6\tAsthma", "A1\tvalue T1 Disease",
         "T2\tNamedEntity 11 24\tIL-2\treceptor", "A2\tvalue T2 Gene or gene product", "A3\tNegated T2")
    brat(elsewhere, "b", "Aspirin.", "T1\tNamedEntity 0 7\tAspirin")
    (elsewhere / "b.a1").write_text("")
    (corpus / "linked").symlink_to(elsewhere)
    (elsewhere / "back").symlink_to(corpus)
    with pytest.warns(UserWarning, match=r"1 text with a NAME.ann and a NAME.a1 or .a2 \(b\): the .ann is read"):
        docs, report = read_brat(corpus, bio_nlp, label_attribute="value")
    assert [(doc.user_data["pmid"], [(e.text, e.label_) for e in doc.ents]) for doc in docs] == [
        ("a", [("Asthma", "Disease"), ("IL-2\treceptor", "Gene or gene product")]),  # INCEpTION writes a value raw
        ("linked/b", [("Aspirin", "NamedEntity")])]
    assert [(i.kind, i.reason) for i in report.issues] == [("excluded", "attribute 'Negated T2' ignored")]


def test_offsets_in_utf16_units_as_java_and_javascript_count_them(tmp_path, bio_nlp):
    """INCEpTION's brat, BioC's Java tools, doccano's JSON Lines: a character outside the BMP counts two.
    Read as characters, the mismatch says the other units fit; an offset inside such a character is an error."""
    text = "\U0001d6fc-Tocopherol and \U0001f600 asthma."
    start = len(text[:text.index("asthma")].encode("utf-16-le")) // 2
    ann = brat(tmp_path / "brat", "u", text, "T1\tChemical 0 13\t\U0001d6fc-Tocopherol",
               f"T2\tDisease {start} {start + 6}\tasthma")
    with pytest.raises(ConversionError, match=r"T1: the annotation.s text .* at its offsets 0-13: .*read as UTF-16 units, as Java and JavaScript count, "
                                              "they match: --offset-units utf-16"):
        read_brat(ann, bio_nlp)
    docs, report = read_brat(ann, bio_nlp, offset_units="utf-16")
    assert [e.text for e in docs[0].ents] == ["\U0001d6fc-Tocopherol", "asthma"] and not report.issues
    with pytest.warns(UserWarning, match=r"the offsets of 2 of 2 mentions count UTF-16 units"):
        docs, report = read_brat(ann, bio_nlp, offset_units="auto")
    assert [e.text for e in docs[0].ents] == ["\U0001d6fc-Tocopherol", "asthma"] and not report.issues
    with pytest.raises(ValueError, match="offset units must be one of characters, utf-16, not 'auto'"):
        read_bioc(tmp_path / "u.xml", bio_nlp, offset_units="auto")
    records = [{"text": text, "spans": [[0, 13, "Chemical"], [start, start + 6, "Disease"]]}]
    docs, report = read_jsonl(jsonl(tmp_path, records), bio_nlp, offset_units="utf-16")
    assert [e.text for e in docs[0].ents] == ["\U0001d6fc-Tocopherol", "asthma"] and not report.issues
    with pytest.raises(ConversionError, match=r"in.jsonl:1 entity 2: offsets 21-27 are no span of the text's 26 characters"):
        read_jsonl(jsonl(tmp_path, records), bio_nlp)  # read as characters: past the end
    # A span's own text, where given, is checked, and the units that fit are named.
    records = [{"text": "\U0001f600 IL-2 binds TNF.", "spans": [{"start": 3, "end": 7, "label": "Protein", "text": "IL-2"}]}]
    with pytest.raises(ConversionError, match=r"in.jsonl:1 entity 1: the annotation's text 'IL-2' is not the text's "
                                              r"'L-2 ' .* read as UTF-16 units, as Java and JavaScript count, they match: "
                                              r"--offset-units utf-16"):
        read_jsonl(jsonl(tmp_path, records), bio_nlp)
    with pytest.raises(ConversionError, match="in.jsonl:1 entity 1: UTF-16 offset 1 falls inside '\U0001d6fc'"):
        read_jsonl(jsonl(tmp_path, [{"text": text, "spans": [[1, 13, "Chemical"]]}]), bio_nlp, offset_units="utf-16")
    title = "\U0001f600 Asthma"
    document = bioc_document("1", [(0, title), (len(title) + 2, "Asthma again.")], [
        ("a", "Disease", [(3, 6)], "Asthma", {}), ("b", "Disease", [(len(title) + 2, 6)], "Asthma", {})])
    docs, report = read_bioc(bioc_file(tmp_path / "u.xml", [document]), bio_nlp, offset_units="utf-16")
    assert docs[0].text == "\U0001f600 Asthma Asthma again." and [s.text for s in docs[0].sents] == [
        "\U0001f600 Asthma", "Asthma again."]
    assert [e.start_char for e in docs[0].ents] == [2, 9] and not report.issues


def test_brat_one_span_annotated_twice_keeps_both_kb_ids(tmp_path, bio_nlp):
    """CRAFT's ontologies annotate one span more than once: of one label, one mention with the kb ids of
    both, a duplicate (nothing lost); of another label, a clash (dropped, lost)."""
    brat(tmp_path, "c", "Insulin rose.", "T1\tChemical 0 7\tInsulin", "T2\tChemical 0 7\tInsulin",
         "N1\tReference T2 CHEBI:5931\tinsulin", "T3\tChemical 0 7\tInsulin", "N2\tReference T3 MESH:D007328\tx",
         "T4\tProtein 0 7\tInsulin", "T5\tChemical 0 7\tInsulin", "N3\tReference T5 CHEBI:5931\tinsulin")
    docs, report = read_brat(tmp_path, bio_nlp)
    assert [(e.text, e.label_, e.kb_id_) for e in docs[0].ents] == [("Insulin", "Chemical", "CHEBI:5931|MESH:D007328")]
    assert [(i.kind, i.where.rsplit(" ", 1)[1]) for i in report.issues] == [
        ("duplicate", "T2"), ("duplicate", "T3"), ("duplicate", "T5"), ("dropped", "T4")]
    assert report.loss_fraction == pytest.approx(1 / 2)


def test_brat_discontinuous_mentions_are_dropped_or_covered(tmp_path, bio_nlp):
    text = "Renal and hepatic failure."
    ann = brat(tmp_path, "d", text, "T1\tDisease 0 5;18 25\tRenal failure", "T2\tDisease 10 25\thepatic failure")
    docs, report = read_brat(tmp_path, bio_nlp)
    assert [e.text for e in docs[0].ents] == ["hepatic failure"]
    assert [(i.kind, i.where, i.reason) for i in report.issues] == [
        ("dropped", f"{ann}:1 T1", "discontinuous: 'Renal' 'failure' (--discontinuous cover keeps the span from the "
         "first to the last)")]
    assert report.loss_fraction == pytest.approx(1 / 2)
    docs, report = read_brat(ann, bio_nlp, discontinuous="cover")
    assert [e.text for e in docs[0].ents] == ["Renal and hepatic failure"]
    assert [(i.kind, i.reason) for i in report.issues] == [
        ("expanded", "discontinuous: 'Renal' 'failure' -> 'Renal and hepatic failure'"),
        ("dropped", "'hepatic failure' [10:25] (Disease) overlaps 'Renal and hepatic failure' (Disease), the mention "
         "kept as placed exactly, or the longer or earlier one")]


def test_brat_entity_types_choose_what_is_converted(tmp_path, bio_nlp):
    brat(tmp_path, "t", "IL-2 binds IL-2R.", "T1\tProtein 0 4\tIL-2", "T2\tBinding 5 10\tbinds",
         "T3\tProtein 11 16\tIL-2R")
    docs, report = read_brat(tmp_path, bio_nlp, entity_types=["Binding"])
    assert [(e.text, e.label_) for e in docs[0].ents] == [("binds", "Binding")]
    assert [(i.kind, i.reason) for i in report.issues] == [("excluded", "type 'Protein' not asked for")] * 2
    assert report.loss_fraction == 0
    with pytest.warns(UserWarning, match="no mention has the type protein .*case-sensitive"):
        docs, _ = read_brat(tmp_path, bio_nlp, entity_types=["Protein", "protein"])
    assert [e.text for e in docs[0].ents] == ["IL-2", "IL-2R"]
    with pytest.raises(ConversionError, match="no entity type asked for"):
        read_brat(tmp_path, bio_nlp, entity_types=[])


def test_brat_offsets_count_the_characters_of_the_text_as_it_is(tmp_path, bio_nlp):
    """A CRLF is two characters, a character outside the BMP one, as brat reads the UTF-8 text."""
    text = "Na\u207a rose.\r\n\U0001d6fc-Tocopherol fell.\r\n"
    start = text.index("\U0001d6fc")
    brat(tmp_path, "c", text, "T1\tChemical 0 3\tNa\u207a", f"T2\tChemical {start} {start + 12}\t\U0001d6fc-Tocopherol")
    docs, report = read_brat(tmp_path, bio_nlp)
    assert [e.text for e in docs[0].ents] == ["Na\u207a", "\U0001d6fc-Tocopherol"] and not report.issues


@pytest.mark.parametrize(
    "files,message",
    [
        ({"x.txt": "abc", "x.ann": "T1\tX 0 2\tab\n"}, None),
        ({"x.txt": "abc", "x.ann": "T1\tX 0 2\tbc\n"}, r"x.ann:1 T1: the annotation's text 'bc' is not the text's 'ab' at its offsets 0-2"),
        ({"x.txt": "abc", "x.ann": "T1\tX 0 4\tabcd\n"}, r"x.ann:1 T1: offsets 0-4 are no span of the text's 3 characters \(read as characters"),
        ({"x.txt": "abc", "x.ann": "T1\tX 0 2;1 3\tab bc\n"}, "x.ann:1 T1: offsets 0-2, 1-3 overlap one another"),
        ({"x.txt": "abc", "x.ann": "T1\tX 0-2\tab\n"}, "x.ann:1: a text-bound annotation is 'T1<TAB>Type START END"),
        ({"x.txt": "abc", "x.ann": "\nN1\tReference T1\tab\n"}, "x.ann:2: a normalization is"),
        ({"x.txt": "abc", "x.ann": "Q1\tX 0 2\n"}, "x.ann:1: not a brat annotation line"),
        ({"x.txt": "abc", "x.ann": "\tX 0 2\tab\n"}, "x.ann:1: not a brat annotation line"),
        ({"x.txt": "abc", "x.ann": "T1\tX 0 2\tab\nT1\tY 1 3\tbc\n"}, "x.ann:2: the id T1 again, as at .*x.ann:1"),
        ({"x.ann": "T1\tX 0 2\tab\n"}, "x.ann: no x.txt beside it"),
        ({"x.txt": b"ab\xff", "x.ann": ""}, r"x.txt: not UTF-8 \(byte 2"),
        ({"x.txt": " \n", "x.ann": "T1\tX 0 1\t \n"}, "x.txt: an empty text with annotations in"),
        ({"x.txt": "abc"}, "no annotated text"),
        ({}, "no annotated text"),
    ],
)
def test_brat_bad_files_are_errors_naming_the_line(tmp_path, files, message, bio_nlp):
    for name, data in files.items():
        write(tmp_path, name, data if isinstance(data, bytes) else data.encode())
    if message is None:
        assert ents(read_brat(tmp_path, bio_nlp)[0][0]) == [(0, 1, "X")]  # "abc" is one token: expanded
        return
    unannotated = "x.txt" in files and "x.ann" not in files  # left out, and warned of
    with pytest.raises(ConversionError, match=message), pytest.warns(UserWarning) if unannotated else nullcontext():
        read_brat(tmp_path, bio_nlp)


def test_brat_of_the_pubtator_test_set_converts_as_pubtator_does(tmp_path, bio_nlp):
    """The texts and mention offsets of the PubTator file, as brat files: the same tokens and
    entities, and the same mentions expanded to the tokens."""
    pubtator_docs, pubtator_report = read_pubtator(PUBTATOR["test"], bio_nlp)
    texts = read_pubtator_texts(PUBTATOR["test"])[:160]
    mentions = defaultdict(list)
    for pmid, start, end, label in pubtator_mentions(PUBTATOR["test"]):
        mentions[pmid].append((start, end, label))
    for pmid, text in texts:
        brat(tmp_path, pmid, text, *(f"T{k}\t{label} {start} {end}\t{text[start:end]}"
                                     for k, (start, end, label) in enumerate(mentions[pmid], start=1)))
    docs, report = read_brat(tmp_path, bio_nlp)
    order = sorted(range(len(texts)), key=lambda i: texts[i][0])
    assert [(doc.user_data["pmid"], [t.text for t in doc], ents(doc)) for doc in docs] == [
        (pubtator_docs[i].user_data["pmid"], [t.text for t in pubtator_docs[i]], ents(pubtator_docs[i])) for i in order]
    assert sorted(issue.reason for issue in report.expanded) == sorted(
        issue.reason for issue in pubtator_report.expanded if issue.doc_index < 160)
    assert not report.dropped


# --- BioC ----------------------------------------------------------------------


def bioc_document(doc_id: str, passages, annotations=(), relations: int = 0):
    """A BioC document of (offset, text) passages and (id, type, [(offset, length)], text, infons)
    annotations, built with BioC's own library."""
    bioc = pytest.importorskip("bioc")
    document = bioc.BioCDocument()
    document.id = doc_id
    for offset, text in passages:
        passage = bioc.BioCPassage()
        passage.offset, passage.text = offset, text
        document.add_passage(passage)
    for ann_id, label, locations, text, infons in annotations:
        annotation = bioc.BioCAnnotation()
        annotation.id, annotation.text = ann_id, text
        annotation.infons.update({"type": label, **infons})
        for offset, length in locations:
            annotation.add_location(bioc.BioCLocation(offset, length))
        document.passages[0].add_annotation(annotation)
    for k in range(relations):
        relation = bioc.BioCRelation()
        relation.id = f"R{k}"
        document.add_relation(relation)
    return document


def bioc_file(path: Path, documents, form: str = "xml") -> Path:
    """`documents` as a BioC XML or JSON collection, written by BioC's own library."""
    bioc = pytest.importorskip("bioc")
    from bioc import biocjson, biocxml

    collection = bioc.BioCCollection()
    for document in documents:
        collection.add_document(document)
    with open(path, "w", encoding="utf8") as f:
        (biocxml if form == "xml" else biocjson).dump(collection, f)
    return path


@pytest.mark.parametrize("form", ["xml", "json"])
def test_bioc_of_the_pubtator_test_set_converts_as_pubtator_does(tmp_path, form, bio_nlp):
    """BC5CDR's test set as BioC (the title and abstract as passages, the mentions with their MeSH
    ids, the composite ones marked, the CID relations): the same tokens, sentences, entities, kb ids,
    report, as the PubTator file."""
    pubtator_docs, pubtator_report = read_pubtator(PUBTATOR["test"], bio_nlp)
    lines = lzma.open(PUBTATOR["test"], "rt", encoding="utf8").read().split("\n")
    documents, annotations, relations = [], defaultdict(list), Counter()
    for line in lines:
        fields = line.split("\t")
        if len(fields) >= 6 and fields[1].isdigit():
            start, end = int(fields[1]), int(fields[2])
            role = {"CompositeRole": "CompositeMention"} if len(fields) > 6 else {}
            annotations[fields[0]].append((f"{len(annotations[fields[0]])}", fields[4], [(start, end - start)],
                                           fields[3], {"MESH": fields[5], **role}))
        elif len(fields) == 4:
            relations[fields[0]] += 1
    for line in lines:
        if "|t|" in line:
            pmid, _, title = line.split("|", 2)
        elif "|a|" in line:
            abstract = line.split("|", 2)[2]
            documents.append(bioc_document(pmid, [(0, title), (len(title) + 1, abstract)], annotations[pmid],
                                           relations[pmid]))
    docs, report = read_bioc(bioc_file(tmp_path / f"test.{form}", documents, form), bio_nlp, spans_key="bc5cdr")

    def seen(doc):
        return (doc.user_data["pmid"], [t.text for t in doc], [s.start for s in doc.sents],
                [(e.start, e.end, e.label_, e.kb_id_) for e in doc.spans["bc5cdr"]])

    assert [seen(doc) for doc in docs] == [seen(doc) for doc in pubtator_docs]
    assert report.entities == pubtator_report.entities
    assert Counter(issue.kind for issue in report.issues) == Counter(issue.kind for issue in pubtator_report.issues)
    assert [issue.reason for issue in report.expanded] == [issue.reason for issue in pubtator_report.expanded]


def test_bioc_annotations_of_several_locations_types_and_composite_parts(tmp_path, bio_nlp):
    text = "Renal and hepatic failure after cisplatin."
    document = bioc_document("d1", [(0, text)], [
        ("a", "Disease", [(18, 7), (0, 5)], "Renal failure", {}),
        ("b", "Disease", [(10, 15)], "hepatic failure", {"identifier": "D048550"}),
        ("c", "Chemical", [(32, 9)], "cisplatin", {"MESH": "-1"}),
        ("d", "Disease", [(0, 5)], "Renal", {"CompositeRole": "IndividualMention"}),
    ])
    path = bioc_file(tmp_path / "d.xml", [document])
    docs, report = read_bioc(path, bio_nlp)
    assert [(e.text, e.label_, e.kb_id_) for e in docs[0].ents] == [
        ("hepatic failure", "Disease", "D048550"), ("cisplatin", "Chemical", "")]
    assert [(i.kind, i.where.split(" ", 1)[1]) for i in report.issues] == [
        ("dropped", "document d1 annotation a"), ("excluded", "document d1 annotation d")]
    docs, report = read_bioc(path, bio_nlp, discontinuous="cover", entity_types=["Disease"])
    assert [e.text for e in docs[0].ents] == ["Renal and hepatic failure"]
    assert [i.kind for i in report.issues] == ["expanded", "excluded", "excluded", "dropped"]


@pytest.mark.parametrize("ids", [("", "", "", ""), ("a", "a", "a", "a")], ids=["no-ids", "one-id-reused"])
@pytest.mark.parametrize("form", ["xml", "json"])
def test_bioc_annotations_without_ids_of_their_own_each_count_towards_the_loss(tmp_path, ids, form, bio_nlp):
    """Annotations without an id, or with one id given again, are each a mention of their own in
    the report (and towards --max-loss): the loss counted them once between them."""
    text = "Aspirinx and ibuprofenx cause rash."
    document = bioc_document("d1", [(0, text)], [
        (ids[0], "Chemical", [(0, 7)], "Aspirin", {}), (ids[1], "Chemical", [(13, 9)], "ibuprofen", {}),
        (ids[2], "Disease", [(30, 4)], "rash", {}), (ids[3], "Other", [(24, 5)], "cause", {}),
    ])
    docs, report = read_bioc(bioc_file(tmp_path / f"d.{form}", [document], form), bio_nlp)
    assert [e.text for e in docs[0].ents] == ["Aspirinx", "ibuprofenx", "cause", "rash"]
    expanded = report.expanded
    assert len(expanded) == 2 and expanded[0].where != expanded[1].where
    assert report.loss_fraction == pytest.approx(2 / 4)


@pytest.mark.parametrize(
    "data,message",
    [
        (b"<collection><document><id>1</id><passage><offset>0</offset><text>ab", r"x.bioc:1: not XML"),
        (b'{"documents": [{"id": "1"}]}', 'x.bioc: {"id": "1"} is no BioC collection or document'),
        (b"1|t|Title", "neither BioC XML nor BioC JSON"),
        (b"<collection></collection>", "x.bioc: no BioC document"),
        (b'<?xml version="1.0"?>\n<PubmedArticleSet><PubmedArticle/></PubmedArticleSet>',
         "x.bioc:2: the root element is <PubmedArticleSet>, not BioC's <collection>"),
        (b"<collection><document><passage><offset>0</offset><text>a</text></passage></document></collection>",
         "x.bioc:1: a document without an <id>"),
        (b"<collection>\n<document><id>1</id><passage><offset>0</offset><text>ab</text>\n<annotation id='a'>"
         b"<infon key='type'>X</infon><location offset='0'/></annotation></passage></document></collection>",
         "x.bioc:3: a location's length is no integer \\(None\\)"),
        (b'{"documents": [{"id": "1", "passages": [{"offset": "x", "text": "a"}]}]}',
         "x.bioc document 1: a passage's offset is no integer \\('x'\\)"),
        (b'{"id": 1, "passages": [{"offset": 0, "text": "a"}]}\n{"id": ', "x.bioc:2: not JSON"),
        (b'{"documents": [\n{"id": "1", "passages": [{"offset": 0, "text": "Aspirin\xe9"}]}]}',
         r"x.bioc:2: not UTF-8 text \(byte 0xe9"),
    ],
)
def test_bioc_bad_files_are_errors_naming_them(tmp_path, data, message, bio_nlp):
    with pytest.raises(ConversionError, match=message):
        read_bioc(write(tmp_path, "x.bioc", data), bio_nlp)


def test_bioc_as_nlm_chem_and_pubtator3_write_it(tmp_path, bio_nlp):
    """NLM-Chem: a passage made of sentences, an annotation of the whole document (no location), one of
    zero length; PubTator3's JSON answer, JSON Lines and a list of collections; a BOM; an id given twice."""
    xml = ("\ufeff<?xml version='1.0' encoding='UTF-8'?><!DOCTYPE collection SYSTEM 'BioC.dtd'>"
           "<collection><source>x</source><document><id>1</id>"
           "<passage><offset>0</offset><text>Cisplatin</text>"
           "<annotation id='m'><infon key='type'>MeSH_Indexing_Chemical</infon><text/></annotation></passage>"
           "<passage><offset>10</offset><sentence><offset>10</offset><text>It hurts kidneys</text>"
           "<annotation id='a'><infon key='type'>Chemical</infon><location offset='10' length='2'/><text>It</text>"
           "</annotation></sentence><sentence><offset>27</offset><text>Cisplatin again.</text>"
           "<annotation id='z'><infon key='type'>Chemical</infon><location offset='27' length='0'/><text/>"
           "</annotation></sentence></passage></document></collection>")
    docs, report = read_bioc(write(tmp_path, "n.xml", xml.encode()), bio_nlp)
    assert docs[0].text == "Cisplatin It hurts kidneys Cisplatin again."
    assert [s.text for s in docs[0].sents] == ["Cisplatin", "It hurts kidneys", "Cisplatin again."]
    assert [e.text for e in docs[0].ents] == ["It"]
    assert [(i.kind, i.where.rsplit(" ", 1)[1]) for i in report.issues] == [("excluded", "m"), ("dropped", "z")]
    document = {"id": 7, "passages": [{"offset": 0, "text": "Aspirin.", "annotations": [
        {"id": "1", "infons": {"type": "Chemical", "identifier": "MESH:D001241"},
         "locations": [{"offset": 0, "length": 7}], "text": "Aspirin"}]}]}
    for name, data in [("pt3.json", {"PubTator3": [document]}), ("list.json", [{"documents": [document]}]),
                       ("lines.json", "\n".join(json.dumps(document) for _ in range(2)))]:
        path = write(tmp_path, name, (data if isinstance(data, str) else json.dumps(data)).encode())
        with pytest.warns(UserWarning, match="document with the id of an earlier one") if "lines" in name \
                else nullcontext():
            docs, _ = read_bioc(path, bio_nlp)
        assert [(d.user_data["pmid"], [(e.text, e.kb_id_) for e in d.ents]) for d in docs][0] == (
            "7", [("Aspirin", "MESH:D001241")])


def test_bioc_passage_with_text_and_sentences_and_one_beginning_with_a_line_break(tmp_path, bio_nlp):
    """NegBio's sentence split keeps a passage's text beside its sentences: the text is read once, each
    sentence starts one; a passage beginning with a line break starts its sentence at its first word."""
    xml = ("<collection><document><id>r1</id><passage><offset>0</offset><text>No effusion. Clear lungs.</text>"
           "<sentence><offset>0</offset><text>No effusion.</text></sentence>"
           "<sentence><offset>13</offset><text>Clear lungs.</text><annotation id='a'><infon key='type'>Finding"
           "</infon><location offset='19' length='5'/><text>lungs</text></annotation></sentence></passage>"
           "<passage><offset>26</offset><text>\nAsthma</text></passage></document></collection>")
    docs, report = read_bioc(write(tmp_path, "negbio.xml", xml.encode()), bio_nlp)
    assert docs[0].text == "No effusion. Clear lungs. \nAsthma" and [e.text for e in docs[0].ents] == ["lungs"]
    assert [s.text for s in docs[0].sents] == ["No effusion.", "Clear lungs. \n", "Asthma"] and not report.issues


def test_blanks_at_a_mentions_edges_are_no_part_of_it_and_no_second_mention(tmp_path, bio_nlp):
    """An invisible character an annotator selected at a mention's edge is left out, as whitespace is;
    the mention given with and without it is one mention, a duplicate."""
    ann = brat(tmp_path, "z", "asthma\u200b attacks", "T1\tDisease 0 7\tasthma\u200b", "T2\tDisease 0 6\tasthma",
               "T3\tDisease 6 15\t\u200b attacks", "T4\tDisease 8 15\tattacks")
    docs, report = read_brat(ann, bio_nlp)
    assert [e.text for e in docs[0].ents] == ["asthma", "attacks"]
    assert [(i.kind, i.where.rsplit(" ", 1)[1]) for i in report.issues] == [("duplicate", "T2"), ("duplicate", "T4")]
    assert report.loss_fraction == 0


def test_a_units_hint_only_where_the_other_units_read_the_offsets_otherwise(tmp_path, bio_nlp):
    """Fragments out of order are read in order; offsets that fail the same way in both units get no hint."""
    ann = brat(tmp_path, "o", "Renal and hepatic failure.", "T1\tDisease 18 25;0 5\tfailure Renal")
    docs, report = read_brat(ann, bio_nlp, discontinuous="cover")
    assert [e.text for e in docs[0].ents] == ["Renal and hepatic failure"]
    ann.write_text("T1\tDisease 0 5\tRenal\nT2\tDisease 18 25\tfailurx\n")
    with pytest.raises(ConversionError) as error:
        read_brat(ann, bio_nlp)
    assert str(error.value).endswith("(read as characters, as Python counts them (a CRLF is two))")


@pytest.mark.parametrize(
    "passages,annotation,message",
    [
        ([(0, "abc"), (2, "de")], None, "document 1: a passage or sentence at offset 2 overlaps the text before it"),
        ([(0, "abc")], ("a", "X", [(1, 5)], "bcde", {}), "annotation a: offsets 1-6 are no span of the text's 3 characters"),
        ([(0, "abc")], ("a", "X", [(0, 2)], "bc", {}), "annotation a: the annotation's text 'bc' is not the text's"),
        ([(0, "abc")], ("a", " ", [(0, 2)], "ab", {}), "annotation a: no type"),
    ],
)
def test_bioc_documents_that_do_not_hold_together_are_errors_naming_them(tmp_path, passages, annotation, message,
                                                                        bio_nlp):
    document = bioc_document("1", passages, [annotation] if annotation else [])
    with pytest.raises(ConversionError, match=message):
        read_bioc(bioc_file(tmp_path / "x.xml", [document]), bio_nlp)


@pytest.mark.parametrize("compress", [gzip.compress, lzma.compress], ids=["gzip", "xz"])
def test_compression_detected_by_magic_bytes(tmp_path, compress, bio_nlp):
    path = write(tmp_path, "plain-name.txt", compress(b"a\tB-X\n"))
    docs, _ = read_iob(path, bio_nlp.vocab)
    assert ents(docs[0]) == [(0, 1, "X")]


def test_a_compression_or_an_encoding_not_read_is_named(tmp_path, bio_nlp):
    """bzip2, zstd, a zip archive (BC5CDR's own download) and UTF-16 were "not UTF-8 text (byte 0x90
    at offset 10)": they are named, with what to do; a plain text beginning like bzip2's magic is text."""
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("train.tsv", "a\tB-X\n")
    cases = {
        "bz2": (bz2.compress(b"a\tB-X\n"), "bzip2-compressed, which is not read: decompress it (bunzip2)"),
        "empty.bz2": (bz2.compress(b""), "bzip2-compressed"),
        "zst": (b"\x28\xb5\x2f\xfd" + bytes(16), "zstd-compressed, which is not read"),
        "zip": (archive.getvalue(), "a zip archive, which is not read: unpack it"),
        "utf16": ("a\tB-X\n".encode("utf-16"), "not UTF-8 text (byte 0xff at offset 0): UTF-16 (its byte order mark)"),
        "latin1": ("caf\xe9\tB-X\n".encode("latin-1"), "not UTF-8 text (byte 0xe9 at offset 3): save it as UTF-8"),
    }
    for name, (data, said) in cases.items():
        with pytest.raises(ConversionError, match=re.escape(said)):
            read_iob(write(tmp_path, name, data), bio_nlp.vocab)
    docs, _ = read_iob(write(tmp_path, "plain", b"BZh91AY\tB-X\n"), bio_nlp.vocab)
    assert ents(docs[0]) == [(0, 1, "X")]


def pipe_inputs(tmp_path: Path, fmt: str) -> Tuple[bytes, object]:
    """A few documents of `fmt`, and the reader that reads them."""
    if fmt == "pubtator":
        data = lzma.decompress(PUBTATOR["test"].read_bytes())
        return data[: data.index(b"\n\n", 5000) + 2], lambda path, nlp: read_pubtator(path, nlp)
    if fmt == "iob":
        data = lzma.decompress(JNLPBA_TEST.read_bytes())
        return data[: data.index(b"\n\n", 20000) + 2], lambda path, nlp: read_iob(path, nlp.vocab)
    documents = [bioc_document(str(n), [(0, "Aspirin and ulcers.")], [("T1", "Chemical", [(0, 7)], "Aspirin", {})])
                 for n in (1, 2)]
    data = bioc_file(tmp_path / "bioc", documents, form=fmt.split("-")[1]).read_bytes()
    if fmt.endswith("-spaced"):  # its form told past the first bytes, which a pipe gives back
        data = b"\xef\xbb\xbf" + b"\n" * 9 + data
    return data, lambda path, nlp: read_bioc(path, nlp)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes")
@pytest.mark.parametrize("compress", [lambda data: data, gzip.compress, lzma.compress], ids=["plain", "gzip", "xz"])
@pytest.mark.parametrize("fmt", ["pubtator", "iob", "bioc-xml", "bioc-json", "bioc-json-spaced"])
def test_a_pipe_is_read_whole(tmp_path, fmt, compress, bio_nlp):
    """A pipe (`<(zcat file.gz)`, /dev/stdin) converts as the file does: its first bytes, read to
    tell its compression or its form, are not lost (they were: a PubTator pipe was "empty" or began
    inside a line, a BioC one had no XML)."""
    data, read = pipe_inputs(tmp_path, fmt)
    expected, _ = read(write(tmp_path, "file", data), bio_nlp)
    with piped(tmp_path, compress(data)) as pipe:
        docs, _ = read(pipe, bio_nlp)
    assert len(docs) == len(expected) > 1
    assert [(doc.user_data.get("pmid"), doc.text, ents(doc)) for doc in docs] == [
        (doc.user_data.get("pmid"), doc.text, ents(doc)) for doc in expected]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes")
def test_an_iob_pipe_and_file_report_the_first_error_of_the_file(tmp_path, bio_nlp):
    """A file is checked as it is read, a pipe too (its lines held as they are read): the first error
    of either is the one on its earliest line, here a bad tag before a truncated end."""
    lines = b"a\tO\nb\tZZ\n" + b"".join(b"w%d\tO\n" % i for i in range(200_000))
    data = gzip.compress(lines)[:-1000]
    file = write(tmp_path, "cut.iob.gz", data)
    with pytest.raises(ConversionError, match=r"cut\.iob\.gz:2: unknown tag 'ZZ'"):
        read_iob(file, bio_nlp.vocab)
    with piped(tmp_path, data) as pipe, pytest.raises(ConversionError, match=r"pipe:2: unknown tag 'ZZ'"):
        read_iob(pipe, bio_nlp.vocab)


def test_an_iob_path_that_cannot_be_read_is_a_conversion_error(tmp_path, bio_nlp):
    """Not a traceback: Path.is_file() raises for a name too long (it says False only for some errors)."""
    with pytest.raises(ConversionError, match="cannot read file"):
        read_iob(tmp_path / ("x" * 300 + ".iob"), bio_nlp.vocab)


def test_json_lines_are_read_a_line_at_a_time_and_one_value_whole(tmp_path, monkeypatch):
    """JSON Lines (BioC's documents, Label Studio's tasks) are parsed as they are read, so that a
    conversion holds a line of them at a time; a file of one value, pretty-printed or not, whole. Each
    value says where it is, as before: its line, or the file for one value."""
    import io

    from spacy_bioner.corpora import text

    monkeypatch.setattr(text, "READ_CHUNK", 4096)
    records = [{"id": n, "text": f"IL-{n} activates NF-kappa B."} for n in range(2000)]
    data = b"\n".join(json.dumps(record).encode() for record in records) + b"\n"
    stream = io.BytesIO(data)
    values = text.iter_json_values(tmp_path / "x.jsonl", stream)
    assert next(values) == (records[0], f"{tmp_path / 'x.jsonl'}:1")
    assert stream.tell() <= 2 * 4096 < len(data) / 10
    assert [value for value, _ in values] == records[1:]
    for one in (json.dumps(records, indent=2).encode(), b"\n\n" + json.dumps(records).encode() + b"\n  \n"):
        path = write(tmp_path, "one.json", one)
        assert list(text.iter_json_values(path)) == [(records, str(path))]


@pytest.mark.parametrize("blank, where", [(" \t\r", "PATH"), ("\x0c", "PATH:1"), ("\u00a0", "PATH:1"), ("\u2028", "PATH:1")])
def test_a_json_value_before_lines_blank_to_python_but_not_to_json(tmp_path, blank, where):
    """A value then a line that str.strip() takes for blank and JSON does not (a form feed, U+00A0)
    is no longer one value, as a parse of the whole file said: JSON Lines, the value at its line."""
    from spacy_bioner.corpora import text

    path = write(tmp_path, "x.json", f'{{"a": 1}}\n{blank}\n'.encode())
    assert list(text.iter_json_values(path)) == [({"a": 1}, where.replace("PATH", str(path)))]
    path = write(tmp_path, "y.json", f'{blank}\n{{"a": 1}}\n'.encode())
    if where == "PATH":
        assert list(text.iter_json_values(path)) == [({"a": 1}, str(path))]
    else:
        with pytest.raises(ConversionError, match=r"y\.json:1: not JSON \(Expecting value\)"):
            list(text.iter_json_values(path))


@pytest.mark.parametrize("compress", [gzip.compress, lzma.compress], ids=["gzip", "xz"])
def test_a_truncated_json_lines_file_names_the_line_it_ends_in(tmp_path, compress):
    """As a file of lines does: what was decompressed before the cut is kept (read1), not dropped
    with the last block (which named a line a thousand lines too early)."""
    from spacy_bioner.corpora import text

    data = b"".join(b'{"id": %d, "text": "IL-%d activates NF-kappa B in T cells."}\n' % (n, n) for n in range(60_000))
    cut = compress(data)
    path = write(tmp_path, "cut.jsonl", cut[: len(cut) * 3 // 4])
    with pytest.raises(ConversionError) as lines_error:
        list(text.iter_lines(path))
    line = re.search(r"cut\.jsonl:(\d+): truncated", str(lines_error.value)).group(1)
    with pytest.raises(ConversionError, match=rf"cut\.jsonl:{line}: truncated .* \(ends inside line {line}\)"):
        list(text.iter_json_values(path))


@pytest.mark.parametrize("compress, padding", [(gzip.compress, b"\x00" * 4), (lzma.compress, b"")], ids=["gzip", "xz"])
def test_concatenated_members_all_read(tmp_path, compress, padding):
    """`cat a.gz b.gz` (or `cat a.xz b.xz`) is one file of both texts; gzip's NUL padding is skipped."""
    lines = [b"w%d\tO\n" % i for i in range(10)]
    data = compress(b"".join(lines[:4])) + compress(b"".join(lines[4:])) + padding
    assert read_lines(write(tmp_path, "two.txt", data)) == [line.decode().rstrip("\n") for line in lines]


PUBTATOR_DOC = "7|t|Cocaine and heart.\n7|a|It hurts.\n"

BAD_INPUTS = [
    ("notag.iob", b"a\tO\nlonely\n", "iob", ":2:", "no tag"),
    ("prefix.iob", b"a\tO\nb\tX-protein\n", "iob", ":2:", "unknown tag"),
    ("empty.iob", b"", "iob", ":1:", "empty"),
    ("blank.iob", b"\n\n  \n", "iob", ":1:", "empty"),
    ("latin1.iob", b"a\tO\n\xe9t\xe9\tO\n", "iob", ":2:", "UTF-8"),
    # CR line ends: "a\tO\rb\tO" read as one line would be the token "a" and the tag "O".
    ("cr.iob", b"a\tO\rb\tO\r", "iob", ":1:", "carriage return inside a line"),
    ("crlf-then-cr.iob", b"a\tO\r\nb\tO\rc\tO\n", "iob", ":2:", "carriage return inside a line"),
    ("cr.pubtator", PUBTATOR_DOC.replace("\n", "\r").encode(), "pubtator", ":1:", "carriage return inside a line"),
    ("range.pubtator", (PUBTATOR_DOC + "7\t0\t99\tCocaine\tChemical\t-1\n").encode(), "pubtator", ":3: PMID 7", "outside"),
    ("neg.pubtator", (PUBTATOR_DOC + "7\t-1\t7\tCocaine\tChemical\t-1\n").encode(), "pubtator", ":3: PMID 7", "outside"),
    ("text.pubtator", (PUBTATOR_DOC + "7\t0\t7\tcocaine\tChemical\t-1\n").encode(), "pubtator", ":3: PMID 7", "does not match"),
    ("pmid.pubtator", (PUBTATOR_DOC + "8\t0\t7\tCocaine\tChemical\t-1\n").encode(), "pubtator", ":3: PMID 8", "another document"),
    ("garbage.pubtator", (PUBTATOR_DOC + "hello\n").encode(), "pubtator", ":3:", "unrecognized"),
    ("empty.pubtator", b"\n", "pubtator", ":1:", "empty"),
]


@pytest.mark.parametrize("name,data,fmt,where,problem", BAD_INPUTS)
def test_bad_input_one_line_message(tmp_path, name, data, fmt, where, problem, bio_nlp):
    path = write(tmp_path, name, data)
    with pytest.raises(ConversionError) as excinfo:
        if fmt == "iob":
            read_iob(path, bio_nlp.vocab)
        else:
            read_pubtator(path, bio_nlp)
    message = str(excinfo.value)
    assert "\n" not in message
    assert f"{path}{where}" in message
    assert problem in message
    assert isinstance(excinfo.value, ValueError)


@pytest.mark.parametrize("compress,name", [(gzip.compress, "gzip"), (lzma.compress, "xz")], ids=["gzip", "xz"])
def test_truncated_or_corrupt_compressed_file(tmp_path, compress, name):
    data = compress(b"".join(b"w%d\tO\n" % i for i in range(2000)))
    path = write(tmp_path, "cut.iob", data[: len(data) // 2])
    with pytest.raises(ConversionError, match=rf"cut\.iob:\d+: truncated {name} file"):
        read_lines(path)
    corrupt = bytearray(data)
    corrupt[len(data) // 2] ^= 0xFF
    path = write(tmp_path, "bad.iob", bytes(corrupt))
    with pytest.raises(ConversionError, match=rf"bad\.iob:\d+: corrupt {name} data"):
        read_lines(path)


def test_lines_are_read_a_chunk_at_a_time_as_the_whole_file_reads(tmp_path, monkeypatch):
    """Lines and chunks cut anywhere: a BOM, CRLF, multi-byte characters split between chunks, a line
    longer than a chunk, no line end at the end; an undecodable byte is found at its line and offset."""
    from spacy_bioner.corpora import text

    data = "\ufeffα β\r\nlong line " + "γ" * 20 + "\n\n  \nlast é"
    expected = data[1:].replace("\r\n", "\n").split("\n")
    path = write(tmp_path, "lines.txt", data.encode())
    for size in (1, 2, 3, 7, 1 << 20):
        monkeypatch.setattr(text, "READ_CHUNK", size)
        assert list(text.iter_lines(path)) == expected, size
    bad = write(tmp_path, "bad.txt", "é\nok\nxx\xff\n".encode("utf-8").replace(b"\xc3\xbf", b"\xff"))
    for size in (1, 4, 1 << 20):
        monkeypatch.setattr(text, "READ_CHUNK", size)
        with pytest.raises(ConversionError, match=r"bad\.txt:3: not UTF-8 text \(byte 0xff at offset 8\)"):
            list(text.iter_lines(bad))
    # Read as given: the lines before the bad one come first, from chunks of their own.
    monkeypatch.setattr(text, "READ_CHUNK", 1)
    lines = text.iter_lines(bad)
    assert [next(lines), next(lines)] == ["é", "ok"]
    # A CRLF is one line end, however the chunks cut; a lone CR is an error at its line.
    cr = write(tmp_path, "cr.txt", b"a\r\nb\r\nc\rd\r\n")
    for size in (1, 2, 3, 1 << 20):
        monkeypatch.setattr(text, "READ_CHUNK", size)
        with pytest.raises(ConversionError, match=r"cr\.txt:3: carriage return inside a line"):
            list(text.iter_lines(cr))


def test_missing_file(tmp_path, bio_nlp):
    with pytest.raises(ConversionError, match="nope.iob"):
        read_iob(tmp_path / "nope.iob", bio_nlp.vocab)


def test_pubtator_overlaps_and_misalignment(tmp_path, bio_nlp):
    text = "Na+/K+-ATPase and heart failure."
    lines = [
        f"9|t|{text}",
        "9|a|",
        "9\t0\t2\tNa\tChemical\tD1",
        "9\t18\t31\theart failure\tDisease\tD2",
        "9\t24\t31\tfailure\tDisease\tD3",  # inside the longer mention: dropped
        "9\t20\t27\tart fai\tDisease\tD4",  # mid-token: expanded, then overlaps: dropped
        "9\tCID\tD1\tD2",
    ]
    path = write(tmp_path, "o.pubtator", ("\n".join(lines) + "\n").encode())
    docs, report = read_pubtator(path, bio_nlp)
    assert [(e.text, e.kb_id_) for e in docs[0].ents] == [("Na", "D1"), ("heart failure", "D2")]
    assert len(report.dropped) == 2 and len(report.expanded) == 1
    assert len(report.of_kind("relation")) == 1
    assert report.input_entities == 4
    # "art fai", expanded and then dropped, is one mention lost, named as the file has it.
    assert report.loss_fraction == pytest.approx(2 / 4)
    assert "o.pubtator:5 PMID 9" in report.table()
    assert "'art fai' [20:27] duplicates another mention" in [issue.reason for issue in report.dropped]


def test_pubtator_a_mention_placed_exactly_wins_over_one_expanded_beyond_it(tmp_path, bio_nlp):
    """Offsets that cut a token ("h  ": the end of "Rash" and two spaces) expand to more tokens than
    the exact mention "Rash": it was kept as the longer, "Rash   " with its whitespace. An expanded
    span loses its edge whitespace, and gives way to a mention placed as given."""
    text = "T. Rash   and  fever."
    lines = [f"1|t|{text}", "1|a|", "1\t3\t7\tRash\tDisease\tD1", "1\t7\t9\t  \tDisease\tD2",
             "1\t6\t9\th  \tDisease\tD3"]
    path = write(tmp_path, "w.pubtator", ("\n".join(lines) + "\n").encode())
    docs, report = read_pubtator(path, bio_nlp)
    assert [(e.text, e.kb_id_) for e in docs[0].ents] == [("Rash", "D1")]
    reasons = [issue.reason for issue in report.dropped]
    assert "'  ' [7:9] covers no token but whitespace" in reasons
    assert "'h  ' [6:9] duplicates another mention" in reasons  # expanded to "Rash", the edge space left out


def test_pubtator_a_mention_placed_exactly_wins_over_a_longer_one_expanded(tmp_path, bio_nlp):
    """"shes and" [5:13] expands to "Rashes and", longer than the exact "Rashes" it overlaps."""
    lines = ["1|t|T. Rashes and fever.", "1|a|", "1\t3\t9\tRashes\tDisease\tD1", "1\t5\t13\tshes and\tDisease\tD2"]
    docs, report = read_pubtator(write(tmp_path, "x.pubtator", ("\n".join(lines) + "\n").encode()), bio_nlp)
    assert [(e.text, e.kb_id_) for e in docs[0].ents] == [("Rashes", "D1")]
    assert any("'shes and' [5:13]" in issue.reason for issue in report.dropped)


def test_pubtator_sentences_start_at_the_abstract_and_never_inside_an_entity(tmp_path, bio_nlp):
    lines = ["1|t|Naloxone reverses hypertension", "1|a|The drug was given to rats. It worked.", "",
             "2|t|Effects of tumor necrosis", "2|a|factor on rats.",
             "2\t17\t32\tnecrosis factor\tChemical\t-1"]
    docs, _ = read_pubtator(write(tmp_path, "s.pubtator", ("\n".join(lines) + "\n").encode()), bio_nlp)
    assert [s.text for s in docs[0].sents][:2] == ["Naloxone reverses hypertension", "The drug was given to rats."]
    assert [e.text for e in docs[1].ents] == ["necrosis factor"]
    assert [s.text for s in docs[1].sents] == ["Effects of tumor necrosis factor on rats."]


def test_pubtator_mentions_next_to_brackets_and_comparisons_align(tmp_path, bio_nlp):
    """BC5CDR test mentions that used to end inside a token ("CCK-8)",
    "lithium=0.85", "myoglobinuria.(ABSTRACT") are kept exactly."""
    title = "Cholecystokinin-octapeptide (CCK-8), serum lithium=0.85 mEq/l."
    abstract = "Rats had myoglobinuria.(ABSTRACT TRUNCATED AT 250 WORDS)"
    text = f"{title} {abstract}"
    mentions = [("CCK-8", "Chemical"), ("lithium", "Chemical"), ("myoglobinuria", "Disease")]
    lines = [f"5|t|{title}", f"5|a|{abstract}"]
    for mention, label in mentions:
        start = text.index(mention)
        lines.append(f"5\t{start}\t{start + len(mention)}\t{mention}\t{label}\t-1")
    path = write(tmp_path, "b.pubtator", ("\n".join(lines) + "\n").encode())
    docs, report = read_pubtator(path, bio_nlp)
    assert [(e.text, e.label_) for e in docs[0].ents] == mentions
    assert not report.expanded and not report.dropped


# --- fuzzing -------------------------------------------------------------------

LABELS = ["A", "B_c", "cell-type"]
WORD = st.text(alphabet="abcxyzABC0123", min_size=1, max_size=6)


@st.composite
def tagged_sentences(draw):
    """Sentences as (words, entities) with non-overlapping (start, end, label)."""
    sentences = []
    for _ in range(draw(st.integers(1, 4))):
        n = draw(st.integers(1, 10))
        words = draw(st.lists(WORD, min_size=n, max_size=n))
        entities, i = [], 0
        while i < n:
            if draw(st.booleans()):
                length = draw(st.integers(1, n - i))
                entities.append((i, i + length, draw(st.sampled_from(LABELS))))
                i += length
            else:
                i += 1
        sentences.append((words, entities))
    return sentences


def render(words, entities, scheme):
    tags = ["O"] * len(words)
    prev_end, prev_label = -1, None
    for start, end, label in entities:
        for i in range(start, end):
            tags[i] = f"I-{label}"
        if scheme == "iob2" or (scheme == "iob1" and prev_end == start and prev_label == label):
            tags[start] = f"B-{label}"
        if scheme == "bioes":
            tags[start] = f"B-{label}" if end - start > 1 else f"S-{label}"
            if end - start > 1:
                tags[end - 1] = f"E-{label}"
        prev_end, prev_label = end, label
    return tags


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    sentences=tagged_sentences(),
    scheme=st.sampled_from(["iob1", "iob2", "bioes"]),
    corruption=st.one_of(st.none(), st.sampled_from(["notag", "badprefix", "nolabel"])),
    where=st.integers(0, 100),
)
def test_fuzz_read_iob(tmp_path, sentences, scheme, corruption, where, bio_nlp):
    lines = []
    for words, entities in sentences:
        lines += [f"{w}\t{t}" for w, t in zip(words, render(words, entities, scheme))] + [""]
    bad_line = None
    if corruption:
        bad_line = where % len(lines) + 1
        lines.insert(bad_line - 1, {"notag": "word", "badprefix": "w\tX-A", "nolabel": "w\tB-"}[corruption])
    path = write(tmp_path, "fuzz.iob", ("\n".join(lines) + "\n").encode())
    if bad_line is not None:
        with pytest.raises(ConversionError, match=f"fuzz.iob:{bad_line}:"):
            read_iob(path, bio_nlp.vocab, spans_key="k")
        return
    docs, report = read_iob(path, bio_nlp.vocab, spans_key="k")
    assert [(d.text.split(), ents(d)) for d in docs] == [(w, e) for w, e in sentences]
    assert [[(s.start, s.end, s.label_) for s in d.spans["k"]] for d in docs] == [e for _, e in sentences]
    assert not report.repaired


@st.composite
def pubtator_words(draw, alphabet: str, max_words: int):
    """Words of a PubTator document, split into a title and an abstract; the
    document's text is the two joined by a space."""
    words = draw(st.lists(st.text(alphabet=alphabet, min_size=1, max_size=6), min_size=2, max_size=max_words))
    n_title = draw(st.integers(1, len(words) - 1))
    return " ".join(words[:n_title]), " ".join(words[n_title:]), words


@st.composite
def pubtator_docs(draw):
    """A document whose mentions are runs of whole words."""
    title, abstract, words = draw(pubtator_words("abcdefgh", 15))
    text = f"{title} {abstract}"
    starts = [0]
    for w in words[:-1]:
        starts.append(starts[-1] + len(w) + 1)
    mentions = []
    for _ in range(draw(st.integers(0, 6))):
        i = draw(st.integers(0, len(words) - 1))
        j = draw(st.integers(i, min(len(words) - 1, i + 3)))
        mentions.append((starts[i], starts[j] + len(words[j]), draw(st.sampled_from(["Chemical", "Disease"]))))
    return title, abstract, text, mentions


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=pubtator_docs(), corruption=st.one_of(st.none(), st.sampled_from(["range", "text"])), which=st.integers(0, 10))
def test_fuzz_read_pubtator(tmp_path, doc, corruption, which, bio_nlp):
    title, abstract, text, mentions = doc
    lines = [f"42|t|{title}", f"42|a|{abstract}"]
    lines += [f"42\t{s}\t{e}\t{text[s:e]}\t{label}\tD{k}" for k, (s, e, label) in enumerate(mentions)]
    bad_line = None
    if corruption and mentions:
        k = which % len(mentions)
        s, e, label = mentions[k]
        fields = [str(s), str(len(text) + 1), text[s:e]] if corruption == "range" else [str(s), str(e), text[s:e] + "x"]
        lines[2 + k] = "\t".join(["42", *fields, label, "-1"])
        bad_line = 3 + k
    path = write(tmp_path, "fuzz.pubtator", ("\n".join(lines) + "\n").encode())
    if bad_line is not None:
        with pytest.raises(ConversionError, match=f"fuzz.pubtator:{bad_line}: PMID 42"):
            read_pubtator(path, bio_nlp)
        return
    docs, report = read_pubtator(path, bio_nlp)
    (parsed,) = docs
    assert parsed.text == text
    kept = [(e.start_char, e.end_char, e.label_) for e in parsed.ents]
    assert set(kept) <= set(mentions)
    # Each mention kept, dropped, or given twice and kept once.
    assert len(kept) + len(report.dropped) + len(report.of_kind("duplicate")) == len(mentions)
    assert not report.expanded  # whole words always align
    for issue in report.dropped:  # each dropped mention overlaps a kept one
        assert "overlaps" in issue.reason or "duplicates" in issue.reason
    assert [(s.start, s.end, s.label_) for s in parsed.spans["bc5cdr"]] == ents(parsed)


def assert_one_line_error(err: ConversionError, path: Path) -> None:
    message = str(err)
    assert "\n" not in message and message.startswith(f"{path}:")


# Random IOB files, built from parts so that most convert: token lines (a
# token, one or more separators, a tag), sentence breaks and document markers;
# a file may also hold one line from BAD_LINE, or one random line.
TOKEN = st.builds(
    lambda head, tail: head + tail,
    st.text(alphabet="ab-µ|0X", min_size=1, max_size=4),
    st.sampled_from(["", "", "\xa0", "\xa0b"]),  # a no-break space is part of a token, never a separator
)
SEPARATOR = st.sampled_from([" ", "  ", "\t", "\t\t", " \t"])
TAG = st.sampled_from(["O", "O", "B-X", "I-X", "B-Y", "I-Y"])


@st.composite
def token_lines(draw) -> str:
    """A valid token line, sometimes with trailing whitespace (a trailing tab
    only where tabs separate the columns: after spaces it would end the only column)."""
    sep = draw(SEPARATOR)
    end = draw(st.sampled_from(["", "", " ", "\xa0"] + (["\t"] if "\t" in sep else [])))
    return f"{draw(TOKEN)}{sep}{draw(TAG)}{end}"


TOKEN_LINE = token_lines()
BREAK_LINE = st.sampled_from(["", " ", "\xa0", "###MEDLINE:7", " ###MEDLINE:8 "])
BAD_LINE = st.one_of(
    st.builds(lambda token, sep: token + sep, TOKEN, st.sampled_from(["", " ", "\t"])),  # no tag
    st.builds(lambda sep, tag: sep + tag, SEPARATOR, TAG),  # no token
    st.builds(lambda token, sep, tag: token + sep + tag, TOKEN, SEPARATOR, st.sampled_from(["Q-X", "B-", "b-X", "o", "BX"])),
)
LINE = st.text(alphabet="ab -\tBIOESX|t0123456789\r\ufeff\xa0µ", max_size=14)


@st.composite
def iob_files(draw) -> str:
    """The text of a random IOB file (lines, BOM and line ends vary)."""
    # sampled_from weighs its elements evenly (one_of would not weigh repeated strategies).
    kinds = draw(st.lists(st.sampled_from(["token", "token", "token", "break"]), min_size=1, max_size=12))
    lines = [draw(TOKEN_LINE if kind == "token" else BREAK_LINE) for kind in kinds]
    odd = draw(st.sampled_from([None, None, None, None, BAD_LINE, LINE]))
    if odd is not None:
        lines.insert(draw(st.integers(0, len(lines))), draw(odd))
    return draw(st.sampled_from(["", "\ufeff"])) + draw(st.sampled_from(["\n", "\r\n"])).join(lines)


def iob_rows(text: str) -> List[Tuple[str, str]]:
    """(token, tag) of each token line, split as the reader documents it: on
    tabs, else on ASCII spaces; the first column is the token, the last
    non-empty one the tag."""
    rows = []
    for line in text.removeprefix("\ufeff").split("\n"):
        line = line[:-1] if line.endswith("\r") else line
        if line.strip() and not line.strip().startswith(("-DOCSTART-", "###MEDLINE:")):
            parts = line.split("\t") if "\t" in line else [p for p in line.split(" ") if p]
            parts = [p.strip() for p in parts]
            rows.append((parts[0], [p for p in parts if p][-1]))
    return rows


@pytest.mark.filterwarnings("ignore:.*were repaired")  # I- after O: repaired, as expected
@pytest.mark.filterwarnings("ignore:.*without sentences left out")  # a marker followed by another
def test_fuzz_iob_random_lines(tmp_path, bio_nlp):
    """Random lines: a clear error, or every token line becomes one token and
    every entity is a run of tokens tagged with its label. Both happen."""
    outcomes = Counter()

    @settings(max_examples=150, deadline=None)
    @given(text=iob_files())
    def check(text):
        path = write(tmp_path, "random.iob", text.encode())
        try:
            docs, _ = read_iob(path, bio_nlp.vocab, spans_key="k")
        except ConversionError as err:
            assert_one_line_error(err, path)
            outcomes["error"] += 1
            return
        outcomes["converted"] += 1
        rows = iob_rows(text)
        assert [t.text for doc in docs for t in doc] == [word for word, _ in rows]
        offset = 0
        for doc in docs:
            assert list(doc.spans["k"]) == list(doc.ents)
            tags = [tag for _, tag in rows[offset : offset + len(doc)]]
            # Tokens tagged O are outside entities; the others inside one of their label.
            assert [t.ent_type_ or "O" for t in doc] == [tag if tag == "O" else tag[2:] for tag in tags]
            offset += len(doc)

    check()
    # An assertion over the examples: random lines alone never converted, and must reach both branches.
    assert outcomes["converted"] and outcomes["error"], outcomes


@st.composite
def pubtator_random_offsets(draw):
    """A document whose mentions have random offsets, mostly a non-empty range
    of the text with the text at those offsets, sometimes any offsets or another text."""
    title, abstract, _ = draw(pubtator_words("abcαµ±-()", 8))
    text = f"{title} {abstract}"
    mentions = []
    for _ in range(draw(st.integers(0, 5))):
        # Mostly in range, so that most documents convert (and mentions are kept, expanded or dropped).
        if draw(st.sampled_from([True] * 9 + [False])):
            start = draw(st.integers(0, len(text) - 1))
            end = draw(st.integers(start + 1, min(len(text), start + 12)))
        else:
            start = draw(st.integers(-3, len(text) + 3))
            end = draw(st.integers(-3, len(text) + 3))
        real = text[max(start, 0) : max(end, 0)]
        mention = draw(st.sampled_from([real] * 8 + [real + "x", "Cocaine"]))
        mentions.append((start, end, mention.replace("\t", " "), draw(st.sampled_from(["Chemical", "Disease"]))))
    return title, abstract, text, mentions


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=pubtator_random_offsets())
def test_fuzz_pubtator_random_offsets(tmp_path, doc, bio_nlp):
    """Random offsets: a clear error naming the line and PMID, or each mention
    is kept exactly, kept expanded to token boundaries, or dropped, and each
    change is reported."""
    title, abstract, text, mentions = doc
    lines = [f"42|t|{title}", f"42|a|{abstract}"]
    lines += [f"42\t{s}\t{e}\t{m}\t{label}\tD{k}" for k, (s, e, m, label) in enumerate(mentions)]
    path = write(tmp_path, "random.pubtator", ("\r\n".join(lines) + "\r\n").encode())
    bad = [k for k, (s, e, m, _) in enumerate(mentions) if not (0 <= s < e <= len(text) and text[s:e] == m)]
    if bad:
        with pytest.raises(ConversionError) as excinfo:
            read_pubtator(path, bio_nlp)
        assert_one_line_error(excinfo.value, path)
        assert f"{path}:{3 + bad[0]}: PMID 42:" in str(excinfo.value)
        return
    (parsed,), report = read_pubtator(path, bio_nlp)
    assert parsed.text == text
    assert list(parsed.spans["bc5cdr"]) == list(parsed.ents)
    # Placed exactly: at its offsets, less the whitespace at its edges.
    exact = {(s + len(m) - len(m.lstrip()), e - len(m) + len(m.rstrip()), label) for s, e, m, label in mentions}
    kept = [(e.start_char, e.end_char, e.label_) for e in parsed.ents]
    n_exact = sum(1 for ent in kept if ent in exact)
    assert n_exact + len(report.expanded) + len(report.dropped) + len(report.of_kind("duplicate")) >= len(mentions)
    # Each mention kept, dropped, or given twice and kept once.
    assert len(kept) + len(report.dropped) + len(report.of_kind("duplicate")) == len(mentions)
    for ent in parsed.ents:
        assert text[ent.start_char : ent.end_char] == ent.text
        if (ent.start_char, ent.end_char, ent.label_) not in exact:
            # Expanded to token boundaries: covers a mention (less its spaces).
            assert any(
                ent.start_char <= s + len(m) - len(m.lstrip()) and e - len(m) + len(m.rstrip()) <= ent.end_char
                for s, e, m, _ in mentions
            )
