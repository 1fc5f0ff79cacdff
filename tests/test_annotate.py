"""`python -m spacy_bioner annotate`: readers, accounting, offsets, resume, engines, CLI.

Runs use the tiny trained pipeline of conftest.py on the real PubMed samples
(assets/pubmed) and on toy abstracts made of the words it was trained on.
"""

import gzip
import json
import os
import re
import shutil
import subprocess
import sys
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Dict, Iterator, List

import pytest
import spacy
import typer
from spacy.tokens import Span
from toy import (
    PUBMED_BASELINE,
    PUBMED_UPDATE,
    ROOT,
    assert_help_explains_every_option,
    toy_abstracts,
    toy_sentences,
    write_texts,
)
from typer.testing import CliRunner

from spacy_bioner import __version__
from spacy_bioner.annotate import AnnotateError, Options, annotate, read_table
from spacy_bioner.annotate.engine import char_batches
from spacy_bioner.annotate.output import SHARDS_DIR, TABLES, entity_rows, first_entity_rows
from spacy_bioner.annotate.ray_engine import ray_shards
from spacy_bioner.annotate.sources import (
    BAD_JSON,
    EMPTY_TEXT,
    MALFORMED_XML,
    MISSING_ID,
    MISSING_TEXT,
    TOO_LONG,
    TRUNCATED,
    UNDECODABLE,
    Deleted,
    Record,
    Reject,
    pubmed_text,
    read_items,
)
from spacy_bioner.annotation import head_group
from spacy_bioner.cli import app
from spacy_bioner.layers import encoder_shim
from spacy_bioner.loading import load_pipeline

BASELINE, UPDATE = PUBMED_BASELINE, PUBMED_UPDATE


def toy_jsonl(path: Path, n: int = 40, seed: int = 0) -> Path:
    """Toy abstracts of three or four sentences each, one JSON object per line."""
    sentences = [" ".join(words) + " ." for words, _ in toy_sentences(4 * n, seed)]
    return write_texts(path, (" ".join(sentences[4 * i: 4 * i + 3 + i % 2]) for i in range(n)))


def tables(output: Path, fmt: str = "parquet") -> Dict[str, List[dict]]:
    return {table: read_table(output, table, fmt) for table in TABLES}


def assert_same_tables(actual: Dict[str, List[dict]], expected: Dict[str, List[dict]]) -> None:
    """The same rows, but for scores within float32 rounding: processes that run torch on
    another number of threads sum in another order (the entities are the same)."""
    assert actual.keys() == expected.keys()
    for name, rows in expected.items():
        assert len(actual[name]) == len(rows), name
        for got, row in zip(actual[name], rows):
            assert {**got, "score": None} == {**row, "score": None}, name
            assert got.get("score") == pytest.approx(row.get("score"), rel=1e-5, abs=1e-6), name


# ---------------------------------------------------------------- readers


def test_pubmed_reader_on_the_real_samples() -> None:
    baseline = list(read_items(BASELINE))
    update = list(read_items(UPDATE))
    records = [item for item in baseline + update if isinstance(item, Record)]
    assert len(records) == 59
    # The one baseline record with an empty ArticleTitle (only a VernacularTitle) and no abstract.
    # Located by its place in the file and its PMID: the 30th (and last) record.
    assert [(r.record, r.kind) for r in baseline if isinstance(r, Reject)] == [
        ("record 30, PMID 41605226", EMPTY_TEXT)]
    assert update[0].record == "record 1, PMID 26228458"
    assert [d.pmid for d in update if isinstance(d, Deleted)] == [
        "41456105", "41557076", "41616784", "41618748", "41618749", "41618779"]
    first = update[0]
    assert first.doc_id == "26228458"
    title = "Obesity risk in rural, urban and rural-to-urban migrants: prospective results of the PERU MIGRANT study."
    # Structured abstract: sections joined by one space, each after its label, as PubTator writes them.
    assert first.text.startswith(title + " BACKGROUND: Although migration and urbanization")
    assert "urban subjects. METHODS: Prospective data from the PERU MIGRANT Study" in first.text
    by_id = {r.doc_id: r.text for r in records}
    assert "Introduction: " in by_id["41583336"] and "Introdução" not in by_id["41583336"]  # no other language
    # Without an Abstract, the English OtherAbstract (a plain-language summary) follows the title.
    assert "This secret shopper study assesses current capacity to provide abortion care" in by_id["41411010"]
    # A summary beside an Abstract is left out.
    assert "Temperatures are increasing globally" not in by_id["41588158"]
    # Inline markup reduced to its text.
    marked = [r for r in records if "In Vitro" in r.text]
    assert marked and not any(re.search(r"</?(i|b|sup|sub)>", r.text) for r in records)
    assert "External Biotransformation Systems in In Vitro" in marked[0].text


def test_pubmed_text_labels_sections_and_reads_an_english_other_abstract() -> None:
    from lxml import etree

    def text(abstract: str = "", other_abstracts: str = "") -> str:
        """The text of a record; its OtherAbstracts sit in MedlineCitation, after the Article."""
        return pubmed_text(etree.fromstring(
            "<PubmedArticle><MedlineCitation><PMID>1</PMID><Article><ArticleTitle>Title.</ArticleTitle>"
            f"{abstract}</Article>{other_abstracts}</MedlineCitation></PubmedArticle>"))

    def other(body: str, language: str = "") -> str:
        attribute = f' Language="{language}"' if language else ""  # the DTD's default is "eng"
        return f'<OtherAbstract Type="Publisher"{attribute}><AbstractText>{body}</AbstractText></OtherAbstract>'

    structured = ('<Abstract><AbstractText Label="UNLABELLED">Unlabelled part.</AbstractText>'
                  '<AbstractText Label="Methods">We <i>did</i> it.</AbstractText>'
                  '<AbstractText Label="RESULTS"> </AbstractText><AbstractText>Plain.</AbstractText></Abstract>')
    assert text(structured, other("Summary.")) == "Title. Unlabelled part. Methods: We did it. Plain."
    assert text(other_abstracts=other("Resumo.", "por")) == "Title."
    assert text(other_abstracts=other("Resumo.", "por") + other("Summary.")) == "Title. Summary."
    assert text(other_abstracts=other("Summary.", "eng") + other("Second.", "eng")) == "Title. Summary."


def test_pubmed_reader_recovers_from_a_malformed_record(tmp_path: Path) -> None:
    xml = gzip.decompress(BASELINE.read_bytes())
    broken = xml.replace(b"</ArticleTitle>", b"</Title>", 1)  # the first record only
    path = tmp_path / "broken.xml"
    path.write_bytes(broken)
    items = list(read_items(path))
    assert len(items) == 30
    assert isinstance(items[0], Reject) and items[0].kind == MALFORMED_XML
    assert items[0].record == f"record 1, PMID {list(read_items(BASELINE))[0].doc_id}"
    assert sum(isinstance(item, Record) for item in items) == 28


def test_a_malformed_record_is_never_named_by_a_pmid_it_cites(tmp_path: Path) -> None:
    """Bytes that do not parse are located by the record's own PMID, the first element of its
    MedlineCitation; without one, by its number alone, not by a PMID its CommentsCorrections cite."""
    cites = (b"<CommentsCorrectionsList><CommentsCorrections RefType=\"ErratumFor\">"
             b"<RefSource>x</RefSource><PMID Version=\"1\">777</PMID></CommentsCorrections>"
             b"</CommentsCorrectionsList>")
    record = (b"<PubmedArticle><MedlineCitation Status=\"MEDLINE\">%s<Article><ArticleTitle>IL-2</Title>"
              b"</Article>" + cites + b"</MedlineCitation></PubmedArticle>")
    path = tmp_path / "broken.xml"
    path.write_bytes(b"<PubmedArticleSet>" + record % b'<PMID Version="1">42</PMID>' + record % b"" +
                     b"</PubmedArticleSet>")
    own, none = list(read_items(path))
    assert isinstance(own, Reject) and own.kind == MALFORMED_XML
    assert (own.record, own.doc_id) == ("record 1, PMID 42", "42")
    assert isinstance(none, Reject) and none.kind == MALFORMED_XML
    assert (none.record, none.doc_id) == ("record 2", "")


def test_entity_rows_give_every_head_span_and_mark_those_of_doc_ents() -> None:
    nlp = spacy.blank("en")
    doc = nlp("Cisplatin induced nephrotoxicity in rats .")
    doc.spans["jnlpba"] = head_group(doc, "jnlpba", [Span(doc, 0, 1, "protein")], [0.6], head="jnlpba")
    doc.spans["bc5cdr"] = head_group(doc, "bc5cdr", [Span(doc, 0, 1, "Chemical"), Span(doc, 2, 3, "Disease")],
                                     [0.9, 0.8], head="bc5cdr")
    doc.ents = [Span(doc, 0, 1, "Chemical"), Span(doc, 2, 3, "Disease")]
    rows = entity_rows(doc, ["jnlpba", "bc5cdr"])
    assert [(r["text"], r["spans_key"], r["label"], r["score"], r["in_ents"]) for r in rows] == [
        ("Cisplatin", "jnlpba", "protein", 0.6, False),
        ("Cisplatin", "bc5cdr", "Chemical", 0.9, True),
        ("nephrotoxicity", "bc5cdr", "Disease", 0.8, True),
    ]


def test_entity_rows_mark_an_entity_two_heads_found_once() -> None:
    """Two heads of one label set (e.g. two Disease corpora) find the same span: doc.ents holds it
    once, and so do the rows marked in_ents, on the head of the higher score."""
    nlp = spacy.blank("en")
    doc = nlp("Aspirin causes headache and nausea .")
    doc.spans["bc5cdr"] = head_group(doc, "bc5cdr", [Span(doc, 2, 3, "Disease"), Span(doc, 4, 5, "Disease")],
                                     [0.7, 0.9], head="bc5cdr")
    doc.spans["ncbi"] = head_group(doc, "ncbi", [Span(doc, 2, 3, "Disease"), Span(doc, 4, 5, "Disease")], [0.8, 0.9],
                                   head="ncbi")
    doc.ents = [Span(doc, 2, 3, "Disease"), Span(doc, 4, 5, "Disease")]
    rows = entity_rows(doc, ["bc5cdr", "ncbi"])
    assert [(r["text"], r["spans_key"]) for r in rows if r["in_ents"]] == [("nausea", "bc5cdr"), ("headache", "ncbi")]


def test_entity_rows_of_a_pipeline_without_heads_are_doc_ents() -> None:
    nlp = spacy.blank("en")
    doc = nlp("Cisplatin induced nephrotoxicity in rats .")
    doc.ents = [Span(doc, 0, 1, "CHEMICAL"), Span(doc, 2, 3, "DISEASE")]
    rows = entity_rows(doc, [])
    assert [(r["start_char"], r["end_char"], r["text"], r["label"], r["spans_key"], r["score"], r["in_ents"])
            for r in rows] == [(0, 9, "Cisplatin", "CHEMICAL", None, None, True),
                               (18, 32, "nephrotoxicity", "DISEASE", None, None, True)]


def test_entity_rows_give_an_entity_of_doc_ents_that_no_head_found_a_row() -> None:
    """An entity ruler beside the heads puts its own entities in doc.ents: they had no row, so the
    rows marked in_ents were not doc.ents."""
    nlp = spacy.blank("en")
    doc = nlp("Cisplatin induced nephrotoxicity in rats .")
    doc.spans["bc5cdr"] = head_group(doc, "bc5cdr", [Span(doc, 0, 1, "Chemical"), Span(doc, 2, 3, "Disease")],
                                     [0.9, 0.8], head="bc5cdr")
    # The ruler's: the head's span relabelled, and one no head found.
    doc.ents = [Span(doc, 0, 1, "Chemical"), Span(doc, 2, 3, "Toxicity"), Span(doc, 4, 5, "Species")]
    rows = entity_rows(doc, ["bc5cdr"])
    assert [(r["text"], r["label"], r["spans_key"], r["score"], r["in_ents"]) for r in rows] == [
        ("Cisplatin", "Chemical", "bc5cdr", 0.9, True),
        ("nephrotoxicity", "Disease", "bc5cdr", 0.8, False),
        ("nephrotoxicity", "Toxicity", None, None, True),
        ("rats", "Species", None, None, True),
    ]


def test_batches_bound_characters_and_overlong_documents_are_rejected(tmp_path: Path) -> None:
    records = [Record(str(i), "x" * n, "s", str(i)) for i, n in enumerate([10, 10, 50, 200, 10])]
    batches = [[r.doc_id for r in batch] for batch in char_batches(records, batch_size=4, max_chars=60)]
    assert batches == [["0", "1"], ["2"], ["3"], ["4"]]
    path = tmp_path / "long.jsonl"
    path.write_text(json.dumps({"id": "a", "text": "IL-2 " * 10}) + "\n" + json.dumps({"id": "b", "text": "p53"}) + "\n")
    items = list(read_items(path, max_chars=20))
    assert isinstance(items[0], Reject) and items[0].kind == TOO_LONG and items[0].doc_id == "a"
    assert isinstance(items[1], Record) and items[1].text == "p53"


def pubmed_article(pmid: str, title: str, abstract: str, version: str = "1") -> str:
    return (f'<PubmedArticle><MedlineCitation Status="MEDLINE" Owner="NLM"><PMID Version="{version}">{pmid}</PMID>'
            f"<Article><ArticleTitle>{title}</ArticleTitle><Abstract><AbstractText>{abstract}</AbstractText>"
            "</Abstract></Article></MedlineCitation></PubmedArticle>\n")


def same_pmid_twice(path: Path) -> Path:
    """An update file holding two versions of citation 1001, a malformed record that names it too,
    a record without a PMID, another citation and a deletion."""
    titles = toy_abstracts(5, seed=3, sentences=1)
    abstracts = toy_abstracts(5, seed=4)
    malformed = pubmed_article("1001", titles[2], abstracts[2], "3").replace("</ArticleTitle>", "</Title>")
    no_pmid = pubmed_article("", titles[3], abstracts[3]).replace('<PMID Version="1"></PMID>', "")
    path.write_text(
        '<?xml version="1.0" encoding="utf-8"?>\n<PubmedArticleSet>\n'
        + pubmed_article("1001", titles[0], abstracts[0])
        + pubmed_article("1001", titles[1], abstracts[1], version="2")
        + malformed + no_pmid
        + pubmed_article("1002", titles[4], abstracts[4])
        + "<DeleteCitation><PMID>999</PMID></DeleteCitation>\n</PubmedArticleSet>\n", encoding="utf8")
    return path


def test_a_pubmed_record_is_located_by_its_place_in_the_file_and_its_pmid(tmp_path: Path) -> None:
    items = list(read_items(same_pmid_twice(tmp_path / "update.xml")))
    located = [(type(item).__name__, getattr(item, "record", ""), item.doc_id if not isinstance(item, Deleted)
                else item.pmid, getattr(item, "kind", "")) for item in items]
    assert located == [
        ("Record", "record 1, PMID 1001", "1001", ""),
        ("Record", "record 2, PMID 1001", "1001", ""),
        ("Reject", "record 3, PMID 1001", "1001", MALFORMED_XML),  # by the first <PMID> of its bytes
        ("Reject", "record 4", "", MISSING_ID),
        ("Record", "record 5, PMID 1002", "1002", ""),
        ("Deleted", "", "999", ""),
    ]
    # A file cut short: the partial record is located the same way, after the complete ones.
    cut = tmp_path / "cut.xml.gz"
    data = (tmp_path / "update.xml").read_bytes()
    cut.write_bytes(gzip.compress(data, mtime=0)[:-30])
    last = list(read_items(cut))[-1]
    assert isinstance(last, Reject) and last.kind == TRUNCATED and last.record == "record 5, PMID 1002"


# ---------------------------------------------------------------- a run


def bad_inputs(folder: Path) -> Dict[str, Path]:
    """One input per kind of bad record, each also holding good records."""
    folder.mkdir()
    xml = gzip.decompress(BASELINE.read_bytes())
    first_close = xml.index(b"</PubmedArticle>")
    malformed = folder / "malformed.xml"
    malformed.write_bytes(xml[:first_close].replace(b"</ArticleTitle>", b"</Title>", 1) + xml[first_close:])
    truncated = folder / "truncated.xml.gz"
    truncated.write_bytes(BASELINE.read_bytes()[: len(BASELINE.read_bytes()) // 2])
    good = toy_jsonl(folder / "good.jsonl", n=6).read_text(encoding="utf8")
    jsonl = folder / "bad.jsonl"
    jsonl.write_bytes(
        good.encode("utf8")
        + b'{"id": "broken", "text": \n'
        + b'{"id": "latin1", "text": "caf\xe9 IL-2"}\n'
        + b'{"id": "blank", "text": "   "}\n'
        + b'{"id": "no-text"}\n'
    )
    return {"malformed": malformed, "truncated": truncated, "jsonl": jsonl}


@pytest.mark.slow
def test_every_record_is_annotated_or_rejected(tiny_pipeline: Path, tmp_path: Path) -> None:
    inputs = bad_inputs(tmp_path / "in")
    expected_records = {  # counted independently of the readers
        str(inputs["malformed"]): 30,
        str(inputs["jsonl"]): 10,
    }
    output = tmp_path / "out"
    summary = annotate(str(tiny_pipeline), list(inputs.values()), output, Options(shard_size=8))
    kinds = {(Path(r["source"]).name, r["kind"]) for r in summary["rejects"]}
    assert ("malformed.xml", MALFORMED_XML) in kinds
    assert ("truncated.xml.gz", TRUNCATED) in kinds
    assert {("bad.jsonl", BAD_JSON), ("bad.jsonl", UNDECODABLE), ("bad.jsonl", EMPTY_TEXT),
            ("bad.jsonl", MISSING_TEXT)} <= kinds
    by_record = {(Path(r["source"]).name, r["record"]): r["kind"] for r in summary["rejects"]}
    assert by_record[("bad.jsonl", "line 7")] == BAD_JSON
    assert by_record[("bad.jsonl", "line 8")] == UNDECODABLE
    assert by_record[("malformed.xml", f"record 1, PMID {next(read_items(BASELINE)).doc_id}")] == MALFORMED_XML
    # The counts add up: per input, and over the run, and the tables agree.
    per_input = {entry["path"]: entry for entry in summary["inputs"]}
    for path, n in expected_records.items():
        assert per_input[str(Path(path).resolve())]["records"] == n
    assert all(e["records"] == e["documents"] + e["rejected"] for e in summary["inputs"])
    assert summary["records"] == summary["documents"] + summary["rejected"] == sum(
        e["records"] for e in summary["inputs"])
    out = tables(output)
    assert len(out["documents"]) == summary["records"]
    assert sum(row["status"] == "rejected" for row in out["documents"]) == len(out["rejects"]) == summary["rejected"]
    assert summary["rejects_by_kind"][EMPTY_TEXT] == 2  # the blank JSON text and the title-less PubMed record
    assert json.loads((output / "summary.json").read_text(encoding="utf8"))["records"] == summary["records"]


@pytest.mark.slow
def test_offsets_index_the_document_text(tiny_pipeline: Path, tmp_path: Path) -> None:
    output = tmp_path / "out"
    summary = annotate(str(tiny_pipeline), [toy_jsonl(tmp_path / "toy.jsonl"), UPDATE], output, Options())
    out = tables(output)
    # (source, record) is a document's key: an id may repeat (a PMID revised in a later update file).
    texts = {(row["source"], row["record"]): (row["doc_id"], row["text"]) for row in out["documents"]}
    assert len(texts) == len(out["documents"])
    assert out["entities"], "the tiny pipeline finds entities in toy abstracts"
    assert {row["spans_key"] for row in out["entities"]} == {"jnlpba", "bc5cdr"}
    for row in out["entities"]:
        doc_id, text = texts[(row["source"], row["record"])]
        assert row["doc_id"] == doc_id
        assert text[row["start_char"]:row["end_char"]] == row["text"]
        assert 0.0 <= row["score"] <= 1.0
    assert summary["entities"] == len(out["entities"]) == sum(summary["entities_per_label"].values())
    assert summary["deleted"] == 6
    # Each deleted PMID under its file: an update file may delete what another adds back.
    assert [(Path(i["path"]).name, len(i["deleted"])) for i in summary["inputs"]] == [
        ("toy.jsonl", 0), (UPDATE.name, 6)]
    # The summary names what produced the tables: the pipeline, and the libraries' versions.
    assert summary["run"]["model"]["heads"] == ["jnlpba", "bc5cdr"]
    assert summary["versions"]["spacy-bioner"] == __version__ and {"spacy", "torch"} <= set(summary["versions"])


@pytest.mark.slow
def test_the_same_pmid_twice_in_one_file_keeps_its_documents_apart(tiny_pipeline: Path, tmp_path: Path) -> None:
    path = same_pmid_twice(tmp_path / "update.xml")
    output = tmp_path / "out"
    summary = annotate(str(tiny_pipeline), [path], output, Options())
    out = tables(output)
    keys = [(row["source"], row["record"]) for row in out["documents"]]
    assert len(set(keys)) == len(keys) == summary["records"] == 5
    assert [row["doc_id"] for row in out["documents"]] == ["1001", "1001", "1001", "", "1002"]
    assert [(row["record"], row["kind"]) for row in out["rejects"]] == [
        ("record 3, PMID 1001", MALFORMED_XML), ("record 4", MISSING_ID)]
    # Every entity's offsets index its own document's text, not the other version's.
    texts = {(row["source"], row["record"]): row["text"] for row in out["documents"]}
    assert {row["record"] for row in out["entities"]} >= {"record 1, PMID 1001", "record 2, PMID 1001"}
    for row in out["entities"]:
        assert texts[(row["source"], row["record"])][row["start_char"]:row["end_char"]] == row["text"]
    assert summary["deleted"] == 1 and summary["inputs"][0]["deleted"] == ["999"]


@pytest.mark.slow
def test_resume_after_a_kill_gives_the_same_tables(tiny_pipeline: Path, tmp_path: Path) -> None:
    inputs = [toy_jsonl(tmp_path / "toy.jsonl"), BASELINE, UPDATE]
    options = Options(shard_size=7, batch_size=4)
    whole = tmp_path / "whole"
    annotate(str(tiny_pipeline), inputs, whole, options)
    expected = tables(whole)

    killed = tmp_path / "killed"
    summary = annotate(str(tiny_pipeline), inputs, killed, options, stop_after_shards=5)
    assert summary["status"] == "stopped" and summary["shards"] == 5
    # A kill while writing the 5th shard: its manifest never landed, a table is half written,
    # and a temporary file is left behind.
    fifth = sorted((killed / SHARDS_DIR).glob("*.json"))[-1]
    fifth.unlink()
    (killed / "entities" / f"{fifth.stem}.parquet").write_bytes(b"PAR1 truncated")
    (killed / "documents" / f".{fifth.stem}.parquet.tmp-12345").write_bytes(b"partial")
    done_before = [json.loads(path.read_text(encoding="utf8")) for path in sorted((killed / SHARDS_DIR).glob("*.json"))]
    resumed = annotate(str(tiny_pipeline), inputs, killed, options, resume=True)
    assert resumed["status"] == "complete"
    assert resumed["this_invocation"]["shards_skipped"] == 4
    assert tables(killed) == expected
    assert resumed["records"] == json.loads((whole / "summary.json").read_text(encoding="utf8"))["records"]
    # What this invocation annotated (its words/s): the documents and words of the shards it wrote.
    this_run = resumed["this_invocation"]
    annotated = [row for row in expected["documents"] if row["status"] == "annotated"]
    assert this_run["documents"] == len(annotated) - sum(m["documents"] for m in done_before) > 0
    assert this_run["words"] == sum(row["n_words"] for row in annotated) - sum(m["words"] for m in done_before) > 0

    # A rerun of a complete run writes nothing and changes nothing.
    rerun = annotate(str(tiny_pipeline), inputs, killed, options)
    assert rerun["this_invocation"]["shards_written"] == 0
    assert tables(killed) == expected


def first_records(rows: Dict[str, List[dict]], n: int) -> Dict[str, List[dict]]:
    """The rows of the first `n` documents of each source (the tables' rows are in input order)."""
    records: Dict[str, List[str]] = {}
    for row in rows["documents"]:
        records.setdefault(row["source"], []).append(row["record"])
    kept = {(source, record) for source, listed in records.items() for record in listed[:n]}
    return {name: [row for row in table if (row["source"], row["record"]) in kept] for name, table in rows.items()}


@pytest.mark.slow
def test_limit_annotates_the_first_records_of_each_input(tiny_pipeline: Path, tmp_path: Path) -> None:
    inputs = [BASELINE, toy_jsonl(tmp_path / "toy.jsonl", n=12)]
    annotate(str(tiny_pipeline), inputs, tmp_path / "whole", Options(shard_size=4))
    limited = tmp_path / "limited"
    result = CliRunner().invoke(app, ["annotate", str(tiny_pipeline), *map(str, inputs), "--output", str(limited),
                                      "--shard-size", "4", "--limit", "6", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "--limit 6: at most the first 6 records of each input were read" in result.output
    summary = json.loads((limited / "summary.json").read_text(encoding="utf8"))
    assert [entry["records"] for entry in summary["inputs"]] == [6, 6] and summary["run"]["limit"] == 6
    # The records of the whole run, the first six of each input: in the same shards, with the same entities
    # (the scores of a shard's last batch, shorter here, within float32 rounding).
    expected = first_records(tables(tmp_path / "whole"), 6)
    assert len(expected["documents"]) == 12 and expected["entities"]
    assert_same_tables(tables(limited), expected)
    assert summary["shards"] == 4  # of each input, one of four records and one of two
    # The limit is the run's: the same one is a rerun, another is refused.
    rerun = annotate(str(tiny_pipeline), inputs, limited, Options(shard_size=4, limit=6))
    assert rerun["this_invocation"]["shards_written"] == 0
    with pytest.raises(AnnotateError, match="limit"):
        annotate(str(tiny_pipeline), inputs, limited, Options(shard_size=4, limit=8))
    # ... before the pipeline loads (there is none here).
    with pytest.raises(AnnotateError, match=r"another --limit \(6 there, none here\)"):
        annotate(str(tmp_path / "no-model"), inputs, limited, Options(shard_size=4))
    with pytest.raises(AnnotateError, match=r"another --limit \(none there, 6 here\)"):
        annotate(str(tmp_path / "no-model"), inputs, tmp_path / "whole", Options(shard_size=4, limit=6))
    # A run without one records none, as runs did before the option.
    assert "limit" not in json.loads((tmp_path / "whole" / "run.json").read_text(encoding="utf8"))


@pytest.mark.parametrize("resume", [True, False])
def test_an_output_folder_no_run_can_use_is_refused_before_the_pipeline_loads(tmp_path: Path, resume: bool) -> None:
    # The model does not exist: the folder's fault is the one reported, without waiting for a load.
    inputs = [toy_jsonl(tmp_path / "toy.jsonl", n=2)]
    output = tmp_path / "out"
    if not resume:
        output.mkdir()
        (output / "notes.txt").write_text("mine")
    with pytest.raises(AnnotateError, match="no run to resume" if resume else "not empty"):
        annotate(str(tmp_path / "no-such-model"), inputs, output, Options(), resume=resume)


@pytest.mark.slow
def test_output_of_another_run_is_refused(tiny_pipeline: Path, tmp_path: Path) -> None:
    inputs = [toy_jsonl(tmp_path / "toy.jsonl", n=5)]
    output = tmp_path / "out"
    with pytest.raises(AnnotateError, match="no run to resume"):
        annotate(str(tiny_pipeline), inputs, output, Options(), resume=True)
    annotate(str(tiny_pipeline), inputs, output, Options())
    with pytest.raises(AnnotateError, match="shard_size"):
        annotate(str(tiny_pipeline), inputs, output, Options(shard_size=2))
    other_model = tmp_path / "other-model"
    shutil.copytree(tiny_pipeline, other_model)
    with pytest.raises(AnnotateError, match="model"):
        annotate(str(other_model), inputs, output, Options())
    summary = annotate(str(tiny_pipeline), inputs, output, Options(shard_size=2), overwrite=True)
    assert summary["shards"] == 3 and summary["documents"] == 5
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(AnnotateError, match="not empty"):
        annotate(str(tiny_pipeline), inputs, tmp_path / "busy", Options())


@pytest.mark.slow
def test_jsonl_format_and_other_inputs(tiny_pipeline: Path, tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = tmp_path / "texts"
    folder.mkdir()
    rows = [json.loads(line) for line in toy_jsonl(tmp_path / "toy.jsonl", n=4).read_text().splitlines()]
    for row in rows:
        (folder / f"{row['id']}.txt").write_text(row["text"], encoding="utf8")
    (folder / "empty.txt").write_text("")
    parquet = tmp_path / "toy.parquet"
    pq.write_table(pa.table({"pmid": [r["id"] for r in rows], "abstract": [r["text"] for r in rows]}), parquet)
    out_jsonl = tmp_path / "jsonl"
    annotate(str(tiny_pipeline), [folder], out_jsonl, Options(fmt="jsonl"))
    out_parquet = tmp_path / "parquet"
    annotate(str(tiny_pipeline), [parquet], out_parquet, Options(id_key="pmid", text_key="abstract"))
    from_txt, from_parquet = tables(out_jsonl, "jsonl"), tables(out_parquet)
    assert [r["record"] for r in from_txt["rejects"]] == ["empty.txt"]
    # The same entities of the same documents; only where each record was read from differs.
    def located_apart(rows: List[dict]) -> List[dict]:
        return [{key: value for key, value in row.items() if key not in ("source", "record")} for row in rows]

    assert located_apart(from_txt["entities"]) == located_apart(from_parquet["entities"]) and from_txt["entities"]
    assert {row["source"] for row in from_parquet["entities"]} == {str(parquet)}
    assert list((out_jsonl / "entities").glob("*.jsonl")) and not list(out_jsonl.rglob("*.parquet"))


@pytest.mark.slow
def test_two_processes_give_the_same_tables(tiny_pipeline: Path, tmp_path: Path) -> None:
    inputs = [toy_jsonl(tmp_path / "toy.jsonl"), BASELINE, UPDATE]
    annotate(str(tiny_pipeline), inputs, tmp_path / "one", Options(shard_size=16, batch_size=8))
    annotate(str(tiny_pipeline), inputs, tmp_path / "two", Options(shard_size=16, batch_size=8, n_process=2))
    one = tables(tmp_path / "one")
    assert_same_tables(tables(tmp_path / "two"), one)
    assert one["entities"]  # not for want of entities


@pytest.mark.slow
def test_a_pipeline_without_heads_annotates_its_doc_ents(tmp_path: Path) -> None:
    """Any spaCy NER pipeline (a real entity ruler stands in for spaCy's `ner` or a scispaCy model):
    its doc.ents are the entity table, in one process or two; one that finds no entities is refused."""
    nlp = spacy.blank("en")
    nlp.add_pipe("entity_ruler").add_patterns([
        {"label": "Disease", "pattern": [{"LOWER": "cancer"}]}, {"label": "Cell", "pattern": [{"LOWER": "cells"}]},
    ])
    nlp.to_disk(tmp_path / "ruler")
    inputs = [BASELINE, UPDATE]
    summary = annotate(str(tmp_path / "ruler"), inputs, tmp_path / "one", Options(shard_size=16, batch_size=8))
    one = tables(tmp_path / "one")
    texts = {(row["source"], row["record"]): row["text"] for row in one["documents"]}
    assert one["entities"], "the samples mention cancer and cells"
    for row in one["entities"]:
        assert row["text"].lower() in {"cancer", "cells"} and (row["spans_key"], row["score"], row["in_ents"]) == (
            None, None, True)
        assert texts[(row["source"], row["record"])][row["start_char"]:row["end_char"]] == row["text"]
    labels = {label: sum(row["label"] == label for row in one["entities"]) for label in ("Disease", "Cell")}
    assert summary["entities_per_label"] == {label: n for label, n in labels.items() if n}
    assert summary["run"]["model"]["heads"] == []
    annotate(str(tmp_path / "ruler"), inputs, tmp_path / "two", Options(shard_size=16, batch_size=8, n_process=2))
    assert tables(tmp_path / "two") == one
    spacy.blank("en").to_disk(tmp_path / "blank")
    result = CliRunner().invoke(app, ["annotate", str(tmp_path / "blank"), str(BASELINE), "--output",
                                      str(tmp_path / "none")])
    assert result.exit_code == 1
    assert "has no component that finds entities (a bio_ner head, or one that sets doc.ents" in result.output


@pytest.mark.slow
def test_an_entity_ruler_beside_the_heads_has_its_entities_in_the_table(tiny_pipeline: Path, tmp_path: Path) -> None:
    """The ruler's entities are in doc.ents but no head's spans: they had no row, and the summary's count of
    doc.ents spans left them out."""
    nlp = spacy.load(tiny_pipeline)
    nlp.add_pipe("entity_ruler", config={"overwrite_ents": True}).add_patterns(
        [{"label": "RULED", "pattern": [{"LOWER": "monocytes"}]}])
    nlp.to_disk(tmp_path / "ruled")
    texts = toy_abstracts(6, seed=2)
    summary = annotate(str(tmp_path / "ruled"), [write_texts(tmp_path / "toy.jsonl", texts)], tmp_path / "out",
                       Options(batch_size=8))
    rows = tables(tmp_path / "out")["entities"]
    ruled = [(row["record"], row["text"], row["spans_key"], row["score"]) for row in rows if row["label"] == "RULED"]
    assert ruled and all(found[1:] == ("monocytes", None, None) for found in ruled)
    assert len(ruled) == sum(text.split().count("monocytes") for text in texts)
    # The rows marked in_ents are each document's doc.ents, once each.
    for line, doc in enumerate(nlp.pipe(texts), 1):
        marked = sorted((row["start_char"], row["end_char"], row["label"]) for row in rows
                        if row["record"] == f"line {line}" and row["in_ents"])
        assert marked == [(ent.start_char, ent.end_char, ent.label_) for ent in doc.ents]
    assert summary["entities_in_ents"] == sum(row["in_ents"] for row in rows) and summary["entities_per_label"]["RULED"]


def test_a_span_ruler_that_sets_doc_ents_finds_entities(tmp_path: Path) -> None:
    """spaCy's span_ruler declares doc.spans only, also when `annotate_ents` has it set doc.ents: such a
    pipeline was refused as one that finds no entities. Without annotate_ents it is still refused."""
    for annotate_ents in (True, False):
        nlp = spacy.blank("en")
        nlp.add_pipe("span_ruler", config={"annotate_ents": annotate_ents}).add_patterns(
            [{"label": "Cell", "pattern": [{"LOWER": "cells"}]}])
        nlp.to_disk(tmp_path / f"ruler-{annotate_ents}")
    inputs = [write_texts(tmp_path / "toy.jsonl", ["IL-2 activates T cells .", "p53 ."])]
    summary = annotate(str(tmp_path / "ruler-True"), inputs, tmp_path / "out", Options(fmt="jsonl"))
    assert [(row["text"], row["label"], row["spans_key"], row["in_ents"])
            for row in read_table(tmp_path / "out", "entities", "jsonl")] == [("cells", "Cell", None, True)]
    assert summary["status"] == "complete" and summary["entities_in_ents"] == 1
    with pytest.raises(AnnotateError, match="has no component that finds entities"):
        annotate(str(tmp_path / "ruler-False"), inputs, tmp_path / "refused", Options(fmt="jsonl"))


@pytest.mark.slow
def test_ray_engine_gives_the_same_tables(
    tiny_pipeline: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    ray = pytest.importorskip("ray")
    inputs = [BASELINE, UPDATE, toy_jsonl(tmp_path / "toy.jsonl")]
    options = Options(shard_size=16, batch_size=8)
    annotate(str(tiny_pipeline), inputs, tmp_path / "local", options)
    # Ray's workers keep the working directory Ray started in, as a cluster's workers have their own.
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        ray_options = Options(shard_size=16, batch_size=8, engine="ray", n_process=2)
        capfd.readouterr()
        summary = annotate(str(tiny_pipeline), inputs, tmp_path / "ray", ray_options)
        # Without progress (--no-progress), Ray Data shows no bars, nor the progress lines it logs in their
        # place where stdout is no terminal (as here), nor a notice that they are off.
        said = capfd.readouterr()
        assert "Total Progress" not in said.err + said.out and "Running Dataset" not in said.err + said.out
        assert "Progress bars disabled" not in said.err + said.out
        # --limit reads the first records of each input on the actors as in the local engine.
        annotate(str(tiny_pipeline), inputs, tmp_path / "ray-limited", replace(ray_options, limit=20))
        # A GPU the cluster does not have stops the run before anything is written.
        with pytest.raises(AnnotateError, match="--gpu-id 0: the Ray cluster has no GPU"):
            annotate(str(tiny_pipeline), inputs, tmp_path / "ray-gpu", Options(engine="ray", gpu_id=0))
        assert not (tmp_path / "ray-gpu").exists()
        # Model and inputs by paths relative to the driver's working directory, not the workers'.
        monkeypatch.chdir(tmp_path)
        relative_model = os.path.relpath(tiny_pipeline, tmp_path)
        assert not (ROOT / relative_model).exists()
        relative = annotate(relative_model, [Path(os.path.relpath(p, tmp_path)) for p in inputs],
                            tmp_path / "ray-relative", ray_options)
        assert relative["status"] == "complete" and relative["rejected"] == 1
        # A task or an actor that fails is one line, what failed in it.
        kwargs = dict(id_key="id", text_key="text", max_chars=1000, shard_size=16, finished=set(), batch_size=8,
                      max_batch_chars=1000)
        with pytest.raises(AnnotateError, match=r"^[^\n]*gone.jsonl: cannot be read: [^\n]*--resume[^\n]*$"):
            list(ray_shards(str(tiny_pipeline), [tmp_path / "gone.jsonl"], **kwargs))
        with pytest.raises(AnnotateError, match=r"^a Ray task or annotator actor failed: "
                                                r"[^\n]*cannot load pipeline [^\n]*no-model[^\n]*--resume[^\n]*$"):
            list(ray_shards(str(tmp_path / "no-model"), inputs[2:], **kwargs))
        assert ray.is_initialized(), "a Ray the run did not start was shut down by it"
    finally:
        ray.shutdown()
    local, on_ray = tables(tmp_path / "local"), tables(tmp_path / "ray")
    assert_same_tables(on_ray, local)
    assert_same_tables(tables(tmp_path / "ray-relative"), local)
    assert_same_tables(tables(tmp_path / "ray-limited"), first_records(local, 20))
    assert local["entities"]
    assert summary["records"] == 59 + 1 + 40


@pytest.mark.slow
@pytest.mark.skipif(not encoder_shim._cpu_has_bfloat16(), reason="this CPU has no bfloat16 arithmetic")
def test_precision_reaches_the_ray_actors(tiny_pipeline: Path, tmp_path: Path) -> None:
    """--precision bfloat16: the actors' tables are the local engine's at bfloat16, not at float32."""
    ray = pytest.importorskip("ray")
    inputs = [toy_jsonl(tmp_path / "toy.jsonl")]
    bf16 = Options(shard_size=16, batch_size=8, precision="bfloat16")
    annotate(str(tiny_pipeline), inputs, tmp_path / "local-bf16", bf16)
    annotate(str(tiny_pipeline), inputs, tmp_path / "local-f32", replace(bf16, precision=None))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        annotate(str(tiny_pipeline), inputs, tmp_path / "ray-bf16", replace(bf16, engine="ray", n_process=2))
    finally:
        ray.shutdown()
    local_bf16 = tables(tmp_path / "local-bf16")
    assert_same_tables(tables(tmp_path / "ray-bf16"), local_bf16)
    local_f32 = tables(tmp_path / "local-f32")
    assert [row["score"] for row in local_bf16["entities"]] != [row["score"] for row in local_f32["entities"]]


@pytest.mark.slow
@contextmanager
def local_ray(num_cpus: int, fault: str, **env: str) -> Iterator[None]:
    """A local Ray whose worker processes run `ray_faults.<fault>` as they start, `env` set for them."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False, runtime_env={
        "env_vars": {"PYTHONPATH": str(Path(__file__).parent), **env},
        "worker_process_setup_hook": f"ray_faults.{fault}"})
    try:
        yield
    finally:
        ray.shutdown()


def test_ray_actors_compute_at_the_precision_the_run_records(
    tiny_pipeline: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The driver records the precision (here the pipeline's own bfloat16) and every actor loads at it: a shard
    that an actor whose CPU has no bfloat16 arithmetic computed in float32 is refused, where it was written
    under a run.json saying bfloat16; told float32, the actors give the local engine's tables."""
    pytest.importorskip("ray")
    monkeypatch.setattr(encoder_shim, "_cpu_has_bfloat16", lambda: True)  # the driver's CPU
    bf16_pipeline = tmp_path / "bf16-pipeline"
    load_pipeline(str(tiny_pipeline), precision="bfloat16").to_disk(bf16_pipeline)
    inputs = [toy_jsonl(tmp_path / "toy.jsonl", n=8)]
    options = Options(shard_size=4, batch_size=4, engine="ray")
    annotate(str(bf16_pipeline), inputs, tmp_path / "local", replace(options, engine="local", precision="float32"))
    with local_ray(2, "no_bfloat16_arithmetic"):
        with pytest.raises(AnnotateError, match=r"^an annotator actor computes in float32, not in the bfloat16 "
                                                r"this run records[^\n]*--precision float32[^\n]*$"):
            annotate(str(bf16_pipeline), inputs, tmp_path / "refused", options)
        assert not list((tmp_path / "refused").rglob("*.parquet"))
        annotate(str(bf16_pipeline), inputs, tmp_path / "ray", replace(options, precision="float32"))
    assert_same_tables(tables(tmp_path / "ray"), tables(tmp_path / "local"))


@pytest.mark.slow
def test_the_ray_actors_share_the_shards_of_one_input(tiny_pipeline: Path, tmp_path: Path) -> None:
    """A parse task's rows, every shard of its input, came as one block, which the pool took as one
    task: one actor annotated the whole input, and its shards were written at its end."""
    log = tmp_path / "pids.txt"
    with local_ray(3, "log_shard_pids", SHARD_PID_LOG=str(log)):
        annotate(str(tiny_pipeline), [BASELINE], tmp_path / "out", Options(shard_size=4, engine="ray", n_process=2))
    annotated = dict(line.split() for line in log.read_text().splitlines())
    assert len(annotated) == 8 and len(set(annotated.values())) == 2  # 30 records, two actors


@pytest.mark.slow
def test_a_shard_that_kills_its_ray_actor_ends_the_run(tiny_pipeline: Path, tmp_path: Path) -> None:
    """Ray Data restarts a dead actor and retries its shard without end by default: the run never ended."""
    tried = tmp_path / "tried.txt"
    with local_ray(2, "die_on_second_shard", DYING_SHARD_LOG=str(tried)):
        with pytest.raises(AnnotateError, match=r"^a Ray task or annotator actor failed: [^\n]*--resume[^\n]*$"):
            annotate(str(tiny_pipeline), [BASELINE], tmp_path / "out", Options(shard_size=16, engine="ray"))
    (shard,) = set(tried.read_text().split())
    assert shard.endswith("-000001") and len(tried.read_text().split()) == 3  # tried, then retried twice
    written = {path.name.split(".")[0] for path in (tmp_path / "out").rglob("*.parquet")}
    assert shard not in written


# ---------------------------------------------------------------- CLI


def test_help_explains_every_option() -> None:
    options = {param.opts[0] for param in typer.main.get_command(app).commands["annotate"].params}
    assert {"--output", "--format", "--engine", "--address", "--n-process", "--gpu-id", "--batch-size",
            "--max-batch-chars", "--max-doc-chars", "--shard-size", "--id-key", "--text-key",
            "--max-rejects", "--resume", "--overwrite", "--progress", "--show"} <= options
    assert_help_explains_every_option(app, "annotate")
    # evaluate's name for its output folder (an alias cut --help's option column short) is pointed to --output.
    result = CliRunner().invoke(app, ["annotate", "model", "in.jsonl", "--output-dir", "out"])
    assert result.exit_code == 2 and "No such option: --output-dir" in result.output and "--output)" in result.output


@pytest.mark.slow
def test_cli_fails_past_max_rejects(tiny_pipeline: Path, tmp_path: Path) -> None:
    inputs = bad_inputs(tmp_path / "in")
    runner = CliRunner()
    ok = runner.invoke(app, ["annotate", str(tiny_pipeline), str(inputs["jsonl"]), "--output",
                             str(tmp_path / "ok"), "--no-progress", "--max-rejects", "4"])
    assert ok.exit_code == 0, ok.output
    # The blank text is rejected, but it is no bad input: 3 count against --max-rejects.
    assert "4 rejected (3 bad input, counted against --max-rejects; 1 empty or too long, not counted)" in re.sub(
        r"\s+", " ", ok.output)
    shown = read_table(tmp_path / "ok", "entities", limit=1)
    assert shown
    again = runner.invoke(app, ["annotate", str(tiny_pipeline), str(inputs["jsonl"]), "--output",
                                str(tmp_path / "ok"), "--no-progress", "--max-rejects", "4", "--show", "1"])
    assert again.exit_code == 0, again.output
    assert shown[0]["text"] in again.output and "1 shard already done" in again.output
    assert "every shard was done before this run" in again.output and "words/s" not in again.output
    assert f"{tmp_path / 'ok'}/entities, the first 1 in text order" in again.output and "label" in again.output
    # --show lists a document's entities by offset, every head's together (the table holds them head by head).
    table = read_table(tmp_path / "ok", "entities")
    first_doc = [row for row in table if (row["source"], row["record"]) == (table[0]["source"], table[0]["record"])]
    assert len({row["spans_key"] for row in first_doc}) == 2, "the tiny pipeline's heads both find entities"
    in_text_order = sorted(first_doc, key=lambda row: (row["start_char"], row["end_char"]))
    assert first_entity_rows(tmp_path / "ok", "parquet", len(first_doc)) == in_text_order != first_doc
    failed = runner.invoke(app, ["annotate", str(tiny_pipeline), str(inputs["jsonl"]), "--output",
                                 str(tmp_path / "failed"), "--no-progress", "--max-rejects", "2"])
    assert failed.exit_code == 1
    assert "3 records rejected as bad input, more than --max-rejects 2" in failed.output
    summary = json.loads((tmp_path / "failed" / "summary.json").read_text(encoding="utf8"))
    assert summary["status"].startswith("failed") and summary["rejected"] == 4
    assert (summary["rejected_bad_input"], summary["rejected_not_bad_input"]) == (3, 1)


# `python -m spacy_bioner ARGS` in a fresh interpreter where pyarrow cannot be
# imported (None in sys.modules: `import pyarrow` raises ModuleNotFoundError and
# importlib.util.find_spec finds nothing), as on a machine without it.
WITHOUT_PYARROW = """
import runpy, sys
sys.modules["pyarrow"] = None
sys.argv = ["python -m spacy_bioner"] + sys.argv[1:]
runpy.run_module("spacy_bioner", run_name="__main__", alter_sys=True)
"""


def cli_without_pyarrow(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", WITHOUT_PYARROW, *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)


@pytest.mark.slow
def test_jsonl_output_needs_no_pyarrow(tiny_pipeline: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    inputs = [str(toy_jsonl(tmp_path / "toy.jsonl", n=10)), str(UPDATE)]
    options = ["--shard-size", "8", "--batch-size", "4", "--no-progress"]
    output = tmp_path / "jsonl"
    run = cli_without_pyarrow("annotate", str(tiny_pipeline), *inputs, "--output", str(output),
                              "--format", "jsonl", *options, "--show", "2")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "wrote" in run.stdout and "summary.json" in run.stdout
    assert list((output / "entities").glob("*.jsonl")) and not list(output.rglob("*.parquet"))
    # The same tables and counts as a run where pyarrow is there.
    expected_output = tmp_path / "expected"
    expected = annotate(str(tiny_pipeline), [Path(p) for p in inputs], expected_output,
                        Options(fmt="jsonl", shard_size=8, batch_size=4))
    out = tables(output, "jsonl")
    assert out == tables(expected_output, "jsonl") and out["entities"]
    summary = json.loads((output / "summary.json").read_text(encoding="utf8"))
    for key in ("records", "documents", "rejected", "entities", "entities_per_label", "deleted", "format"):
        assert summary[key] == expected[key], key
    assert summary["format"] == "jsonl" and summary["documents"] == 10 + 30

    # Resume after a kill that lost the last shard's manifest and half wrote a table.
    last = sorted((output / SHARDS_DIR).glob("*.json"))[-1]
    last.unlink()
    (output / "entities" / f"{last.stem}.jsonl").write_text('{"doc_id": "trunc', encoding="utf8")
    resumed = cli_without_pyarrow("annotate", str(tiny_pipeline), *inputs, "--output", str(output),
                                  "--format", "jsonl", *options, "--resume")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "shards already done" in resumed.stdout
    assert tables(output, "jsonl") == out
    assert json.loads((output / "summary.json").read_text(encoding="utf8"))["this_invocation"]["shards_written"] == 1

    # Parquet, which does need pyarrow, is refused with a clear message. (In this
    # process, with pyarrow made unimportable: no fresh interpreter is needed to refuse.)
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    runner = CliRunner()
    parquet = runner.invoke(app, ["annotate", str(tiny_pipeline), *inputs, "--output", str(tmp_path / "parquet"),
                                  *options])
    assert parquet.exit_code == 1 and isinstance(parquet.exception, SystemExit)
    assert "--format parquet needs pyarrow" in parquet.output and not (tmp_path / "parquet").exists()
    # So is a Parquet input, before the model is loaded.
    table = tmp_path / "in.parquet"
    table.write_bytes(b"PAR1")
    parquet_input = runner.invoke(app, ["annotate", str(tmp_path / "no-model"), str(table), "--output",
                                        str(tmp_path / "from-parquet"), "--format", "jsonl", *options])
    assert parquet_input.exit_code == 1 and isinstance(parquet_input.exception, SystemExit)
    assert "in.parquet: a Parquet input needs pyarrow" in parquet_input.output
