"""The input readers of `annotate` on awkward inputs: every record is read once,
and every record is either a Record or a Reject that says why.

Readers only (no pipeline): the real PubMed sample (assets/pubmed) and small
hand-made files.
"""

import bz2
import codecs
import errno
import gzip
import io
import json
import lzma
import os
import zlib
from dataclasses import replace
from pathlib import Path
from typing import IO, Any, List

import pytest
from toy import PUBMED_BASELINE, PUBMED_UPDATE, piped, write_jsonl

from spacy_bioner.annotate import AnnotateError, sources
from spacy_bioner.annotate.sources import (
    BAD_JSON,
    MALFORMED_XML,
    MISSING_ID,
    MISSING_TEXT,
    TOO_LONG,
    TRUNCATED,
    UNDECODABLE,
    UNREADABLE,
    Deleted,
    Record,
    Reject,
    count_records,
    expand_inputs,
    links_out_of,
    read_items,
    txt_files,
)

BASELINE = PUBMED_BASELINE


class FailingFile(io.BytesIO):
    """A file whose reads fail with an I/O error (a disk or a network share) once `good` bytes are read."""

    def __init__(self, data: bytes, good: int):
        super().__init__(data)
        self.good = good

    def read(self, size: int = -1) -> bytes:  # type: ignore[override]
        if self.tell() >= self.good:
            raise OSError(errno.EIO, "Input/output error")
        return super().read(self.good - self.tell() if size < 0 else min(size, self.good - self.tell()))

    read1 = read  # type: ignore[assignment]

    def readline(self, size: int = -1) -> bytes:  # type: ignore[override]
        if self.tell() >= self.good:
            raise OSError(errno.EIO, "Input/output error")
        return super().readline(size)

    def __iter__(self) -> "FailingFile":
        return self

    def __next__(self) -> bytes:
        line = self.readline()
        if not line:
            raise StopIteration
        return line


def test_the_same_input_twice_is_refused(tmp_path: Path) -> None:
    toy = write_jsonl(tmp_path / "toy.jsonl", [{"id": "a", "text": "IL-2"}])
    other = write_jsonl(tmp_path / "other.jsonl", [{"id": "b", "text": "p53"}])
    assert expand_inputs([toy, other]) == [toy, other]
    with pytest.raises(ValueError, match="given twice.*toy.jsonl"):
        expand_inputs([toy, other, tmp_path / "." / "toy.jsonl"])


def test_a_folder_without_text_files_is_refused_and_says_what_it_holds(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="empty"):
        expand_inputs([tmp_path / "empty"])
    (tmp_path / "pubmed").mkdir()
    (tmp_path / "pubmed" / BASELINE.name).write_bytes(BASELINE.read_bytes())
    with pytest.raises(ValueError, match=r"holds none \(it holds 1 \.xml\.gz\).*pubmed/\*\.xml\.gz"):
        expand_inputs([tmp_path / "pubmed"])
    (tmp_path / "pubmed" / "note.txt").write_text("IL-2 binds .", encoding="utf8")
    assert expand_inputs([tmp_path / "pubmed"]) == [tmp_path / "pubmed"]
    # A .txt file alone is read through its folder, one shard prefix for the lot, not one per file.
    with pytest.raises(ValueError, match=r"note.txt: a \.txt file is read as part of a folder input; give its "
                                         r"folder \(.*pubmed\)"):
        expand_inputs([tmp_path / "pubmed" / "note.txt"])


def test_a_folder_without_text_files_suggests_only_inputs_annotate_reads(tmp_path: Path) -> None:
    """The hint named the folder's commonest suffix, e.g. DIR/*.md, which is then an unknown input type."""
    notes = tmp_path / "notes"
    notes.mkdir()
    for name in ("a.md", "b.md", "c.md", "papers.JSONL", "papers.tsv"):
        (notes / name).write_text("{}", encoding="utf8")
    with pytest.raises(ValueError) as refused:
        expand_inputs([notes])
    message = str(refused.value)
    assert "it holds 3 .md, 1 .JSONL, 1 .tsv" in message
    assert message.endswith(f"give other inputs by their file names, e.g. {notes / '*.JSONL'}")
    (notes / "papers.JSONL").unlink()
    with pytest.raises(ValueError) as refused:
        expand_inputs([notes])
    message = str(refused.value)
    assert "*.md" not in message and "*.tsv" not in message
    assert message.endswith("none of its files is an input annotate reads (.xml[.gz|.xz], .jsonl or "
                            ".ndjson[.gz|.xz], .parquet or a folder of .txt files)")
    # The types named are those read: a file of each is an input of its own.
    for name in ("x.xml.xz", "x.ndjson.gz", "x.parquet"):
        sources.input_kind(tmp_path / name)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes")
def test_a_pipe_input_is_refused_with_what_to_do(tmp_path: Path) -> None:
    """A run reads an input more than once (its first records to check the keys, then all of them to
    count and to annotate them, and again to resume): a pipe gives its records once."""
    with piped(tmp_path, b'{"id": 1, "text": "IL-2"}\n', name="records.jsonl") as pipe:
        with pytest.raises(ValueError, match=r"records\.jsonl: not a file or a folder \(a pipe\?\).*write it to a file"):
            expand_inputs([pipe])


def test_plain_xml_cut_before_the_end_of_its_set_is_a_truncated_input(tmp_path: Path) -> None:
    """A plain .xml cut right after a </PubmedArticle> read as complete: the records after the cut were lost
    without a word, where a cut .gz is a truncated_input reject."""
    from spacy_bioner.annotate.output import input_shards, shard_name

    xml = gzip.decompress(BASELINE.read_bytes())
    full = list(read_items(BASELINE))
    whole = tmp_path / "whole.xml"
    whole.write_bytes(xml)
    assert [replace(item, source="") for item in read_items(whole)] == [replace(item, source="") for item in full]
    end = xml.index(b"</PubmedArticle>", len(xml) // 2) + len(b"</PubmedArticle>")
    complete = xml[:end].count(b"<PubmedArticle>")
    assert 10 < complete < len(full)
    for cut_at, kept in ((end, complete), (end + 1, complete), (end - 20, complete - 1)):
        path = tmp_path / "cut.xml"
        path.write_bytes(xml[:cut_at])
        items = list(read_items(path))
        assert items[:-1] == [replace(item, source=str(path)) for item in full[:kept]]
        last = items[-1]
        assert isinstance(last, Reject) and last.kind == TRUNCATED
        assert last.reason.startswith(f"the file ends before </PubmedArticleSet>, after {kept} complete records")
        # Cut inside a record, it is the one rejected, by its PMID; cut after one, the next is missing.
        assert last.doc_id == ("" if kept == complete else full[kept].doc_id)  # type: ignore[union-attr]
        assert last.record == f"record {kept + 1}" + (f", PMID {last.doc_id}" if last.doc_id else "")
        assert count_records(path) == len(items)
    # Cut before its first record, it was "no PubMed records found: not a PubMed XML file?".
    for cut_at in (xml.index(b"<PubmedArticle>"), xml.index(b"<PubmedArticle>") + 7):
        path.write_bytes(xml[:cut_at])
        assert expand_inputs([path]) == [path]
        items = list(read_items(path))
        assert [(type(i), i.kind, i.record) for i in items] == [(Reject, TRUNCATED, "record 1")]  # type: ignore
        assert items[0].reason.startswith("the file ends before </PubmedArticleSet>, after 0 complete records")
        assert count_records(path) == 1
    # A resume skips the records of finished shards, the last whole one too, at the same positions.
    path.write_bytes(xml[:end])
    every = list(input_shards(path, "in", 4))
    finished = {shard_name("in", position, 4) for position in range(0, len(every), 8)}
    finished.add(shard_name("in", len(every) - 2, 4))  # that of the last record
    resumed = list(input_shards(path, "in", 4, finished))
    assert resumed == [(shard, position, item) for shard, position, item in every if shard not in finished]
    # An update file whose DeleteCitation is its last record, cut before the end of the set.
    update = gzip.decompress(PUBMED_UPDATE.read_bytes())
    path.write_bytes(update[: update.rindex(b"</PubmedArticleSet>")])
    items = list(read_items(path))
    assert [type(i) for i in items[:-1]] == [type(i) for i in read_items(PUBMED_UPDATE)]
    assert isinstance(items[-1], Reject) and items[-1].kind == TRUNCATED
    assert count_records(path) == sum(not isinstance(item, Deleted) for item in items)


def test_truncated_gz_keeps_every_complete_record_before_the_cut(tmp_path: Path) -> None:
    full = list(read_items(BASELINE))
    cut = BASELINE.read_bytes()
    cut = cut[: len(cut) * 3 // 4]
    prefix = zlib.decompressobj(wbits=31).decompress(cut)
    # The last record that starts before the cut is the partial one.
    complete = prefix.count(b"<PubmedArticle>") - 1
    assert 10 < complete < len(full)
    path = tmp_path / "truncated.xml.gz"
    path.write_bytes(cut)
    items = list(read_items(path))
    assert items[:-1] == [replace(item, source=str(path)) for item in full[:complete]]
    last = items[-1]
    assert isinstance(last, Reject) and last.kind == TRUNCATED
    assert last.doc_id == full[complete].doc_id  # type: ignore[union-attr]
    assert last.record == f"record {complete + 1}, PMID {last.doc_id}"
    assert f"after {complete} complete records" in last.reason
    assert count_records(path) == len(items)  # the reject in place of the cut record counted, as read


@pytest.mark.parametrize("cut", [4, 8])
@pytest.mark.parametrize("sample", [PUBMED_BASELINE, PUBMED_UPDATE], ids=["baseline", "update"])
def test_a_gz_cut_in_its_trailer_keeps_its_last_record(tmp_path: Path, sample: Path, cut: int) -> None:
    """A .gz missing (part of) its CRC and size decompresses whole: its last record (a PubmedArticle;
    the update's, a DeleteCitation) was rejected as truncated_input. It is read, then the cut reported."""
    xml = gzip.decompress(sample.read_bytes())
    records = sum(xml.count(tag) for tag in (b"<PubmedArticle>", b"<PubmedBookArticle>", b"<DeleteCitation>"))
    full = list(read_items(sample))
    path = tmp_path / sample.name
    path.write_bytes(sample.read_bytes()[:-cut])
    items = list(read_items(path))
    assert items[:-1] == [replace(item, source=str(path)) for item in full]
    last = items[-1]
    assert isinstance(last, Reject) and last.kind == TRUNCATED
    assert (last.record, last.doc_id) == (f"record {records + 1}", "")  # no record is missing
    assert last.reason == f"the file ends or cannot be read after {records} complete records: truncated gzip file"
    assert count_records(path) == sum(not isinstance(item, Deleted) for item in items)


def test_xz_inputs_read_as_their_gzip_twins(tmp_path: Path) -> None:
    """.xml.xz and .jsonl.xz are read like .gz; a truncated .xz keeps the records before the cut."""
    xml = lzma.compress(gzip.decompress(BASELINE.read_bytes()))
    path = tmp_path / "baseline.xml.xz"
    path.write_bytes(xml)
    full = list(read_items(BASELINE))
    assert list(read_items(path)) == [replace(item, source=str(path)) for item in full]
    assert count_records(path) == count_records(BASELINE)

    cut = tmp_path / "cut.xml.xz"
    cut.write_bytes(xml[: len(xml) * 3 // 4])
    items = list(read_items(cut))
    assert 10 < len(items) - 1 < len(full)
    assert items[:-1] == [replace(item, source=str(cut)) for item in full[: len(items) - 1]]
    assert isinstance(items[-1], Reject) and items[-1].kind == TRUNCATED

    jsonl = tmp_path / "docs.jsonl.xz"
    jsonl.write_bytes(lzma.compress(b'{"id": 1, "text": "IL-2"}\n{"id": 2, "text": "p53"}\n'))
    assert [(r.doc_id, r.text) for r in read_items(jsonl)] == [("1", "IL-2"), ("2", "p53")]  # type: ignore[union-attr]


def test_a_lone_surrogate_is_rejected_as_undecodable(tmp_path: Path) -> None:
    path = tmp_path / "surrogate.jsonl"
    path.write_text('{"id": "ok", "text": "IL-2"}\n'
                    '{"id": "bad", "text": "IL-2 \\ud83d receptor"}\n'
                    '{"id": "\\udc00", "text": "p53"}\n', encoding="utf8")
    items = list(read_items(path))
    assert [type(item) for item in items] == [Record, Reject, Reject]
    for reject in items[1:]:
        assert reject.kind == UNDECODABLE and "UTF-8" in reject.reason  # type: ignore[union-attr]
        json.dumps(reject.__dict__, ensure_ascii=False).encode("utf8")  # writable as it is
    assert items[1].doc_id == "bad" and "'text'" in items[1].reason  # type: ignore[union-attr]
    assert "'id'" in items[2].reason  # type: ignore[union-attr]


@pytest.mark.parametrize("content, found", [
    (b"IL-2 binds.\n", "it does not start with an XML element"),
    (b'<?xml version="1.0"?>\n<article><front><article-meta/></front><body><p>IL-2</p></body></article>\n',
     "its root element is <article>"),
    (b"<!DOCTYPE html>\n<html><body><h1>502 Bad Gateway</h1></body></html>\n", "its root element is <html>"),
])
def test_xml_that_is_no_pubmed_file_is_refused_up_front(tmp_path: Path, content: bytes, found: str) -> None:
    """A wrong download among the inputs stops the run before it starts, naming the file; read on
    its own, it is one reject, so that what it holds is still accounted for."""
    path = tmp_path / "not-pubmed.xml"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=f"not-pubmed.xml: not a PubMed XML file \\({found}, not <PubmedArticleSet>"):
        expand_inputs([path])
    items = list(read_items(path))
    assert len(items) == 1
    assert isinstance(items[0], Reject) and items[0].kind == MALFORMED_XML
    assert "no PubMed records" in items[0].reason
    assert count_records(path) == 1  # the progress bar's total counts the reject


@pytest.mark.parametrize("name, content", [("empty.xml", b""), ("blank.xml.gz", gzip.compress(b" \n", mtime=0))],
                         ids=["empty", "blank-gz"])
def test_an_empty_xml_input_is_refused_as_empty(tmp_path: Path, name: str, content: bytes) -> None:
    """It was "not a PubMed XML file (it does not start with an XML element ...)": a failed
    download in a glob of baseline files."""
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ValueError, match=f"{name}: the file is empty \\(a download that failed\\?\\)"):
        expand_inputs([BASELINE, path])


def test_a_pubmed_file_in_another_encoding_reads_as_its_utf8_twin(tmp_path: Path) -> None:
    """Each record was parsed as UTF-8 whatever the file declared: a valid ISO-8859-1 export had
    every record with a character outside ASCII rejected as undecodable."""
    text = gzip.decompress(BASELINE.read_bytes()).decode("utf-8")
    assert 'encoding="UTF-8"' in text[:100]
    latin = text.replace('encoding="UTF-8"', 'encoding="ISO-8859-1"', 1).encode("iso-8859-1", "xmlcharrefreplace")
    assert any(byte > 127 for byte in latin)  # a character of ISO-8859-1 outside ASCII, in its own byte
    path = tmp_path / "latin.xml"
    path.write_bytes(latin)
    assert list(read_items(path)) == [replace(item, source=str(path)) for item in read_items(BASELINE)]
    # Cut after a whole record that holds such a character: that record is kept, as in UTF-8.
    end = latin.index(b"</PubmedArticle>") + len(b"</PubmedArticle>")
    assert any(byte > 127 for byte in latin[:end])
    path.write_bytes(latin[:end])
    items = list(read_items(path))
    assert [type(item) for item in items] == [Record, Reject] and items[-1].kind == TRUNCATED  # type: ignore
    assert items[0] == replace(next(iter(read_items(BASELINE))), source=str(path))
    assert count_records(path) == 2


def test_a_pubmed_file_is_recognised_after_its_prolog(tmp_path: Path) -> None:
    prolog = ('<?xml version="1.0" ?>\n<!-- <html> -->\n<!DOCTYPE PubmedArticleSet PUBLIC "-//NLM//DTD PubMedArticle, '
              '1st January 2025//EN" "https://dtd.nlm.nih.gov/ncbi/pubmed/out/pubmed_250101.dtd">\n')
    path = tmp_path / "empty-set.xml"
    path.write_text(prolog + "<PubmedArticleSet>\n</PubmedArticleSet>\n", encoding="utf8")
    assert expand_inputs([path, BASELINE]) == [path, BASELINE]


def test_count_records_counts_what_the_readers_yield_deletions_aside(tmp_path: Path) -> None:
    bad_lines = '{"id": "a", "text": "IL-2"}\n\n{"id": "broken", "text": \n{"id": "b"}\n'
    (tmp_path / "mixed.jsonl").write_text(bad_lines, encoding="utf8")
    folder = tmp_path / "texts"
    folder.mkdir()
    (folder / "a.txt").write_text("p53 in T cells", encoding="utf8")
    (folder / "empty.txt").write_text("", encoding="utf8")
    # A UTF-8 BOM alone on the first line is a blank line.
    (tmp_path / "bom.jsonl").write_bytes(codecs.BOM_UTF8 + b'\n{"id": "a", "text": "IL-2"}\n')
    update = BASELINE.with_name("pubmed26n1335.xml.gz")  # holds a DeleteCitation
    # A DeleteCitation that does not parse is a record rejected, not deletions.
    xml = gzip.decompress(update.read_bytes())
    start = xml.index(b"<DeleteCitation>")
    malformed = tmp_path / "malformed-deletion.xml"
    malformed.write_bytes(xml[:start] + xml[start:].replace(b"</PMID>", b"</PMD>", 1))
    for path in (BASELINE, update, malformed, tmp_path / "mixed.jsonl", tmp_path / "bom.jsonl", folder):
        items = list(read_items(path))
        assert count_records(path) == sum(not isinstance(item, Deleted) for item in items), path
    assert any(isinstance(item, Deleted) for item in read_items(update))
    assert any(isinstance(item, Reject) and item.kind == MALFORMED_XML for item in read_items(malformed))


def test_parquet_without_the_text_or_id_column_is_an_error(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "abstracts.parquet"
    pq.write_table(pa.table({"pmid": ["1", "2"], "abstract": ["IL-2", "p53"]}), path)
    assert expand_inputs([path], id_key="pmid", text_key="abstract") == [path]
    assert len(list(read_items(path, "pmid", "abstract"))) == 2
    with pytest.raises(ValueError, match=r"no column 'text'.*pmid, abstract.*--text-key"):
        expand_inputs([path], id_key="pmid", text_key="text")
    with pytest.raises(ValueError, match=r"no column 'id'.*pmid, abstract.*--id-key"):
        expand_inputs([path], id_key="id", text_key="abstract")
    with pytest.raises(ValueError, match=r"no column 'text'.*--text-key"):
        next(iter(read_items(path, "pmid", "text")))


def test_parquet_whose_text_column_holds_no_strings_is_an_error(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "abstracts.parquet"
    pq.write_table(pa.table({"id": [1, 2], "text": [b"IL-2", b"p53"], "year": [1.5, 2.0],
                             "label": pa.array(["IL-2", "p53"]).dictionary_encode()}), path)
    with pytest.raises(ValueError, match=r"the text column 'text' holds binary values, not strings; convert it "
                       r"\(e.g. decode binary text to UTF-8 strings\) or name another with --text-key"):
        expand_inputs([path])
    # Integer ids with one missing, as pandas writes them: the hint was the text column's.
    with pytest.raises(ValueError, match=r"the id column 'year' holds double values, not strings or integers; "
                       r"convert it \(e.g. pandas' df\[column\].astype\('Int64'\), or strings\) or name another"):
        expand_inputs([path], id_key="year", text_key="label")
    assert expand_inputs([path], text_key="label") == [path]  # integer ids, dictionary-encoded strings
    assert [item.text for item in read_items(path, text_key="label")] == ["IL-2", "p53"]  # type: ignore[union-attr]


def test_jsonl_whose_first_records_lack_the_text_or_id_key_is_an_error(tmp_path: Path) -> None:
    """The usual mistake, a file with other key names, stops the run up front
    (as for Parquet) instead of rejecting every record; a first record without
    its text (an exporter that leaves out null fields) is only a reject."""
    path = write_jsonl(tmp_path / "abstracts.jsonl", [{"pmid": "1"}, {"pmid": "2", "abstract": "IL-2"}])
    assert expand_inputs([path], id_key="pmid", text_key="abstract") == [path]
    assert [item.kind if isinstance(item, Reject) else item.doc_id
            for item in read_items(path, id_key="pmid", text_key="abstract")] == [MISSING_TEXT, "2"]
    with pytest.raises(ValueError, match=r"no key 'text' for the document text in its first 100 records "
                                         r"\(keys: pmid, abstract\).*--text-key"):
        expand_inputs([path], id_key="pmid", text_key="text")
    with pytest.raises(ValueError, match=r"no key 'id'.*pmid, abstract.*--id-key"):
        expand_inputs([path], id_key="id", text_key="abstract")
    # Both missing: both said at once, not one run after the other.
    with pytest.raises(ValueError, match=r"no key 'text' for the document text nor key 'id' for the document id "
                                         r"in its first 100 records \(keys: pmid, abstract\); name the text key "
                                         r"with --text-key and the id key with --id-key$"):
        expand_inputs([path])
    # Past the first 100 records, a key first seen is not looked for.
    late = write_jsonl(tmp_path / "late.jsonl", [{"pmid": str(i)} for i in range(100)] + [{"pmid": "x", "abstract": "p53"}])
    with pytest.raises(ValueError, match="no key 'abstract'"):
        expand_inputs([late], id_key="pmid", text_key="abstract")
    # A first line that is no JSON object is the reader's to reject, record by record.
    broken = write_jsonl(tmp_path / "broken.jsonl", [{"id": "1", "text": "p53"}])
    broken.write_text("[1, 2]\n" + broken.read_text(encoding="utf8"), encoding="utf8")
    assert expand_inputs([broken]) == [broken]


def test_concatenated_article_sets_are_read_whole(tmp_path: Path) -> None:
    xml = gzip.decompress(BASELINE.read_bytes())
    once = list(read_items(BASELINE))
    path = tmp_path / "joined.xml"
    path.write_bytes(xml + xml)
    twice = list(read_items(path))
    assert len(twice) == 2 * len(once)
    assert [(type(i), i.doc_id, getattr(i, "kind", "")) for i in twice] == \
        2 * [(type(i), i.doc_id, getattr(i, "kind", "")) for i in once]  # type: ignore[union-attr]
    assert not [i for i in twice if isinstance(i, Reject) and i.kind == MALFORMED_XML]


def test_jsonl_with_a_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + b'{"id": "a", "text": "IL-2"}\n{"id": "b", "text": "p53"}\n')
    items = list(read_items(path))
    assert [(type(i), i.doc_id) for i in items] == [(Record, "a"), (Record, "b")]  # type: ignore[union-attr]
    # A BOM anywhere but at the start of the file is still bad JSON.
    path.write_bytes(b'{"id": "a", "text": "IL-2"}\n\xef\xbb\xbf{"id": "b", "text": "p53"}\n')
    assert [getattr(i, "kind", "") for i in read_items(path)] == ["", BAD_JSON]


def test_a_bad_json_line_says_where_in_the_line(tmp_path: Path) -> None:
    """json's own position counts the record's line end as a second line ("line 2 column 1"),
    which read as the file's line 2."""
    path = tmp_path / "bad.jsonl"
    path.write_text('{"id": "a", "text": "IL-2"\n{"id": "b", "text": "p53"} x\n', encoding="utf8")
    assert [(i.record, i.reason) for i in read_items(path)] == [  # type: ignore[union-attr]
        ("line 1", "bad JSON: Expecting ',' delimiter at the end of the line"),
        ("line 2", "bad JSON: Extra data at column 28"),  # the x
    ]


def test_too_long_reason_does_not_claim_the_option_was_given(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "long.jsonl", [{"id": "a", "text": "IL-2 " * 10}])
    (reject,) = read_items(path, max_chars=20)
    assert isinstance(reject, Reject) and reject.kind == TOO_LONG
    assert "more than --max-doc-chars" not in reject.reason
    assert reject.reason == "50 characters, longer than the limit of 20 characters"
    # The reason names the limit's source as the run gives it, not "--max-doc-chars, default nlp.max_length".
    (reject,) = read_items(path, max_chars=20, limit_name="--max-doc-chars")
    assert reject.reason == "50 characters, longer than the limit of 20 characters (--max-doc-chars)"


def test_an_error_of_the_system_reading_an_input_names_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    jsonl = write_jsonl(tmp_path / "toy.jsonl", [{"id": f"a{i}", "text": "IL-2"} for i in range(4)])
    xml = tmp_path / "baseline.xml"
    xml.write_bytes(gzip.decompress(BASELINE.read_bytes()))

    def failing_open(path: Path) -> IO[bytes]:
        data = path.read_bytes()
        return FailingFile(data, len(data) // 2)

    monkeypatch.setattr(sources, "open_bytes", failing_open)
    for path in (jsonl, xml):
        items = read_items(path)
        assert isinstance(next(items), Record)  # what was read before the error
        with pytest.raises(AnnotateError, match=f"{path}: cannot be read: .*Input/output error.*--resume"):
            list(items)
    monkeypatch.undo()
    folder = tmp_path / "texts"
    folder.mkdir()
    (folder / "a.txt").write_text("IL-2", encoding="utf8")
    (folder / "b.txt").write_text("p53", encoding="utf8")
    real_read_bytes = Path.read_bytes

    def denied(self: Path) -> bytes:  # as `chmod 0` does (but not for root, who may run the tests)
        if self.name == "b.txt":
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real_read_bytes(self)

    monkeypatch.setattr(Path, "read_bytes", denied)
    with pytest.raises(AnnotateError, match="b.txt: cannot be read: .*Permission denied"):
        list(read_items(folder))
    # A missing input is refused before any reading; a corrupt gzip file is the file's fault: a reject.
    with pytest.raises(ValueError, match="no such input"):
        expand_inputs([tmp_path / "gone.jsonl"])
    corrupt = tmp_path / "corrupt.xml.gz"
    corrupt.write_bytes(b"\x1f\x8b" + xml.read_bytes()[:100])
    (reject,) = read_items(corrupt)
    assert isinstance(reject, Reject) and reject.kind == UNREADABLE and "corrupt gzip data" in reject.reason
    # A compression not read is named, not read as XML that is not XML (or JSON that is not).
    for name in ("bzipped.xml", "bzipped.jsonl"):
        (tmp_path / name).write_bytes(bz2.compress(xml.read_bytes()))
        (reject,) = read_items(tmp_path / name)
        assert reject.kind == UNREADABLE and "bzip2-compressed, which is not read: decompress it" in reject.reason


def test_a_record_without_its_own_pmid_is_not_annotated_under_one_it_cites(tmp_path: Path) -> None:
    xml = gzip.decompress(BASELINE.read_bytes())
    first = xml.index(b"<PubmedArticle>")
    own = xml.index(b"<PMID", first)
    own_end = xml.index(b"</PMID>", own) + len(b"</PMID>")
    pmid = xml[own:own_end].split(b">")[1].split(b"<")[0].decode()
    cited = b"<CommentsCorrectionsList><CommentsCorrections RefType=\"CommentOn\"><RefSource>x</RefSource>" \
            b"<PMID Version=\"1\">12345678</PMID></CommentsCorrections></CommentsCorrectionsList>"
    # The first record loses its PMID and cites another article.
    close = xml.index(b"</MedlineCitation>", first)
    path = tmp_path / "no-pmid.xml"
    path.write_bytes(xml[:own] + xml[own_end:close] + cited + xml[close:])
    items = list(read_items(path))
    assert len(items) == len(list(read_items(BASELINE)))
    first_item = items[0]
    assert isinstance(first_item, Reject) and first_item.kind == MISSING_ID
    assert first_item.doc_id == "" and first_item.record == "record 1"
    assert not [item for item in items if isinstance(item, Record) and item.doc_id in ("12345678", pmid)]


def test_a_folder_is_read_for_its_txt_files_in_any_case_and_says_what_it_skips(tmp_path: Path) -> None:
    folder = tmp_path / "texts"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "c.txt").write_text("p53", encoding="utf8")
    (folder / "a.txt").write_bytes(b"\xef\xbb\xbfIL-2 binds .")
    (folder / "b.TXT").write_text("p53 binds .", encoding="utf8")
    (folder / "notes.md").write_text("not a document", encoding="utf8")
    # Hidden, as the shell's *.txt leaves them: macOS writes "._a.txt" beside each file copied to
    # another file system (binary: a reject each, past --max-rejects in a large folder).
    (folder / "._a.txt").write_bytes(b"\x00\x05\x16\x07\xff")
    (folder / ".draft.txt").write_text("p53", encoding="utf8")
    items = list(read_items(folder))
    assert [(type(item), item.doc_id, item.text) for item in items] == [  # type: ignore[union-attr]
        (Record, "a", "IL-2 binds ."), (Record, "b", "p53 binds .")]
    files, skipped = txt_files(folder)
    assert [f.name for f in files] == ["a.txt", "b.TXT"]
    assert [f.name for f in skipped] == ["._a.txt", ".draft.txt", "notes.md", "sub"]
    assert count_records(folder) == 2


def test_links_in_a_text_folder_are_read_and_those_out_of_it_named(tmp_path: Path) -> None:
    """Links are read, as the shell's *.txt reads them (a subset of a collection, linked); a collection
    unpacked from an archive may link to any file of the user's, so those leading out are named."""
    (tmp_path / "secret.txt").write_text("a token of the user's", encoding="utf8")
    folder = tmp_path / "texts"
    folder.mkdir()
    (folder / "a.txt").write_text("IL-2 binds .", encoding="utf8")
    (folder / "b.txt").symlink_to(tmp_path / "secret.txt")
    (folder / "c.txt").symlink_to(folder / "a.txt")
    (folder / "sub").mkdir()
    (folder / "sub" / "x.txt").write_text("p53 .", encoding="utf8")
    (folder / "d.txt").symlink_to(folder / "sub" / "x.txt")  # inside the folder, if deeper
    files, skipped = txt_files(folder)
    assert [f.name for f in files] == ["a.txt", "b.txt", "c.txt", "d.txt"] and [f.name for f in skipped] == ["sub"]
    assert [f.name for f in links_out_of(folder, files)] == ["b.txt"]
    assert [item.text for item in read_items(folder)] == [  # type: ignore[union-attr]
        "IL-2 binds .", "a token of the user's", "IL-2 binds .", "p53 ."]
    assert count_records(folder) == 4


def test_ids_are_strings_or_integers(tmp_path: Path) -> None:
    rows = [{"id": "a", "text": "IL-2"}, {"id": 7, "text": "IL-2"}, {"id": 1.0, "text": "IL-2"},
            {"id": True, "text": "IL-2"}, {"id": {"x": 1}, "text": "IL-2"}, {"id": [1], "text": "IL-2"},
            {"id": "", "text": "IL-2"}]
    items = list(read_items(write_jsonl(tmp_path / "ids.jsonl", rows)))
    assert [(type(item), item.doc_id) for item in items[:2]] == [(Record, "a"), (Record, "7")]  # type: ignore
    assert [(item.kind, item.doc_id) for item in items[2:]] == 5 * [(MISSING_ID, "")]  # type: ignore
    assert [item.reason for item in items[2:6]] == [  # type: ignore[union-attr]
        f"'id' is of type {name}, not a string or an integer" for name in ("float", "bool", "dict", "list")]
    assert "no 'id'" in items[6].reason  # type: ignore[union-attr]  # an empty id names no document
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "ids.parquet"
    pq.write_table(pa.table({"id": [1.0, 2.5], "text": ["IL-2", "p53"]}), path)
    assert [(item.kind, item.reason) for item in read_items(path)] == 2 * [  # type: ignore[union-attr]
        (MISSING_ID, "'id' is of type float, not a string or an integer")]


@pytest.mark.parametrize("chunk", [7, 1 << 20])
def test_tags_inside_comments_and_cdata_are_text_not_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    """A `<PubmedArticle>` or `</PubmedArticleSet>` in a comment or a CDATA section
    frames nothing, whether or not a read chunk cuts it (7 bytes: every tag is cut)."""
    xml = gzip.decompress(BASELINE.read_bytes())
    first = xml.index(b"<PubmedArticle>")
    title = xml.index(b"</ArticleTitle>", first)
    edited = (
        xml[:first]
        + b"<!-- <PubmedArticle> an old record, kept here </PubmedArticleSet> -->\n"
        + xml[first:title]
        + b"<![CDATA[ <PubmedArticle> in a title ]]><!-- <DeleteCitation> -->"
        + xml[title:]
    )
    path = tmp_path / "commented.xml"
    path.write_bytes(edited)
    monkeypatch.setattr(sources, "READ_CHUNK", chunk)
    items = list(read_items(path))
    expected = list(read_items(BASELINE))
    assert [(type(i), i.doc_id, getattr(i, "kind", "")) for i in items] == \
        [(type(i), i.doc_id, getattr(i, "kind", "")) for i in expected]  # type: ignore[union-attr]
    assert items[1:] == [replace(item, source=str(path)) for item in expected[1:]]
    assert items[0].text.startswith(expected[0].text.split(". ")[0])  # type: ignore[union-attr]
    assert "<PubmedArticle> in a title" in items[0].text  # type: ignore[union-attr]
    assert count_records(path) == count_records(BASELINE)


@pytest.mark.parametrize("opener", [b"<!--", b"<![CDATA["])
@pytest.mark.parametrize("chunk, max_skipped", [(7, 50), (7, sources.MAX_SKIPPED), (1 << 20, sources.MAX_SKIPPED)])
def test_a_stray_comment_opener_rejects_its_record_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, opener: bytes, chunk: int, max_skipped: int
) -> None:
    """A comment or CDATA section that a malformed record opens and never ends took every
    record after it into that record's reject; it is text, ended neither by the end of the
    file nor within MAX_SKIPPED bytes."""
    xml = gzip.decompress(BASELINE.read_bytes())
    third = xml.index(b"<PubmedArticle>", xml.index(b"<PubmedArticle>", xml.index(b"<PubmedArticle>") + 1) + 1)
    title = xml.index(b"</ArticleTitle>", third)
    path = tmp_path / "stray.xml"
    path.write_bytes(xml[:title] + b" x " + opener + b" y" + xml[title:])
    monkeypatch.setattr(sources, "READ_CHUNK", chunk)
    monkeypatch.setattr(sources, "MAX_SKIPPED", max_skipped)
    items, expected = list(read_items(path)), list(read_items(BASELINE))
    assert isinstance(items[2], Reject) and items[2].kind == MALFORMED_XML
    assert items[2].record == expected[2].record and items[2].doc_id == expected[2].doc_id
    assert items[:2] + items[3:] == [replace(item, source=str(path)) for item in expected[:2] + expected[3:]]
    assert count_records(path) == count_records(BASELINE)


@pytest.mark.parametrize("chunk", [7, 1 << 20])
def test_many_stray_openers_are_read_in_linear_time_and_reject_their_record_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    """Each stray comment or CDATA opener searched for its end to the end of the bytes: a 100 KB record of
    them took 20 s to frame (a reviewer's measure), the time growing with their number squared. A
    failed search is remembered, and the next opener's goes on from where it stopped."""
    xml = gzip.decompress(BASELINE.read_bytes())
    third = xml.index(b"<PubmedArticle>", xml.index(b"<PubmedArticle>", xml.index(b"<PubmedArticle>") + 1) + 1)
    title = xml.index(b"</ArticleTitle>", third)
    path = tmp_path / "strays.xml"
    path.write_bytes(xml[:title] + b" <!-- x <![CDATA[ y" * 2000 + xml[title:])
    monkeypatch.setattr(sources, "READ_CHUNK", chunk)
    items, expected = list(read_items(path)), list(read_items(BASELINE))
    assert isinstance(items[2], Reject) and items[2].doc_id == expected[2].doc_id
    assert items[:2] + items[3:] == [replace(item, source=str(path)) for item in expected[:2] + expected[3:]]

    searched: List[int] = []

    class Bytes(bytes):
        def find(self, sub: bytes, start: int = 0, *args: Any) -> int:  # type: ignore[override]
            searched.append(len(self) - start)
            return super().find(sub, start, *args)

    data = Bytes(b"<!-- x <![CDATA[ y" * 2000)
    sections = sources._Sections()
    for at in range(0, len(data), 18):
        assert sections.end(data, at, b"<!--") == -1 and sections.end(data, at + 7, b"<![CDATA[") == -1
    assert sum(searched) < 2 * len(data) + 12 * len(searched)  # each byte searched about once per closer

    # Nor does each stray opener past MAX_SKIPPED wait for another chunk: the buffer held a chunk more
    # for each (300 of them in a 200 MB file: 13 s, and 200 MB more memory).
    class Stream(io.RawIOBase):
        def __init__(self, data: bytes) -> None:
            self.data, self.read = data, 0

        def read1(self, size: int = -1) -> bytes:  # type: ignore[override]
            self.read += 64
            return self.data[self.read - 64 : self.read]

    monkeypatch.setattr(sources, "MAX_SKIPPED", 50)
    strays = xml[:title] + b" <!-- x" * 300 + xml[title:]
    stream = Stream(strays)
    frames = sources._framed_records(stream)
    for _ in range(3):  # the record with the strays is the third
        next(frames)
    fourth = strays.index(b"<PubmedArticle>", strays.index(b" <!-- x") + 1)
    assert stream.read <= fourth + 50 + 3 * 64


@pytest.mark.parametrize("chunk", [64, 1 << 20])
def test_a_pubmed_record_too_long_to_keep_is_a_reject_read_past(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    """A record was kept whole until its end: a .xml.gz of a few MB holding a title of GBs took all the
    memory. A record past MAX_RECORD_BYTES is a too_long reject, with its PMID, and the rest follow."""
    xml = gzip.decompress(BASELINE.read_bytes())
    second = xml.index(b"<PubmedArticle>", xml.index(b"<PubmedArticle>") + 1)
    title = xml.index(b"</ArticleTitle>", second)
    path = tmp_path / "long-title.xml.gz"
    path.write_bytes(gzip.compress(xml[:title] + b" IL-2" * 20_000 + xml[title:]))
    expected = list(read_items(BASELINE))
    longest = max(len(frame) for frame in sources._framed_records(io.BytesIO(xml)))
    monkeypatch.setattr(sources, "READ_CHUNK", chunk)
    monkeypatch.setattr(sources, "MAX_RECORD_BYTES", longest + 1000)
    items = list(read_items(path))
    assert isinstance(items[1], Reject) and items[1].kind == TOO_LONG
    assert items[1].doc_id == expected[1].doc_id and items[1].record == expected[1].record
    assert items[1].reason == f"a record of more than {longest + 1000:,} bytes, not read"
    assert items[:1] + items[2:] == [replace(item, source=str(path)) for item in expected[:1] + expected[2:]]
    assert count_records(path) == len(items) == len(expected)


def test_json_the_decoder_refuses_beyond_its_syntax_is_a_reject(tmp_path: Path) -> None:
    """An integer of over 4,300 digits (ValueError) and arrays nested past the recursion limit
    (RecursionError) ended the run with a traceback, the first line's even before it started."""
    huge = '{"id": "huge", "text": "IL-2", "n": ' + "1" * 5000 + "}"
    deep = "[" * 100_000 + "]" * 100_000
    path = tmp_path / "odd.jsonl"
    path.write_text("\n".join([deep, '{"id": "a", "text": "p53"}', huge, '{"id": "b", "text": "IL-2"}']) + "\n",
                    encoding="utf8")
    assert expand_inputs([path]) == [path]
    items = list(read_items(path))
    assert [(type(i).__name__, i.record, getattr(i, "kind", "")) for i in items] == [
        ("Reject", "line 1", BAD_JSON), ("Record", "line 2", ""), ("Reject", "line 3", BAD_JSON),
        ("Record", "line 4", "")]
    assert count_records(path) == len(items)


@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz"])
def test_a_json_line_too_long_to_read_is_a_reject_read_past(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            suffix: str) -> None:
    """Each line was read whole: a .jsonl.gz of 100 KB holding one line of 100 MB took 742 MB (a
    reviewer's measure), one of GBs all the memory. A line past MAX_LINE_BYTES is a too_long reject."""
    monkeypatch.setattr(sources, "MAX_LINE_BYTES", 100)
    rows = [{"id": "a", "text": "IL-2 binds ."}, {"id": "b", "text": "p53 " * 200}, {"id": "c", "text": "TNF ."}]
    path = write_jsonl(tmp_path / f"long{suffix}", rows)
    if suffix.endswith(".gz"):
        path.write_bytes(gzip.compress(path.read_bytes()))
    items = list(read_items(path))
    assert [(type(i).__name__, i.record, getattr(i, "kind", "")) for i in items] == [
        ("Record", "line 1", ""), ("Reject", "line 2", TOO_LONG), ("Record", "line 3", "")]
    assert items[1].reason == "a line of more than 100 bytes (its end included), not read"  # type: ignore[union-attr]
    assert count_records(path) == 3 and expand_inputs([path]) == [path]


def test_a_parquet_column_named_twice_is_refused_in_a_line(tmp_path: Path) -> None:
    """Two 'text' columns: expand_inputs raised pyarrow's KeyError that the column does not exist (a
    traceback out of annotate), and read_items read the first without a word."""
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "twice.parquet"
    pq.write_table(pa.Table.from_arrays([pa.array(["1"]), pa.array(["IL-2"]), pa.array(["p53"])],
                                        names=["id", "text", "text"]), path)
    for read in (lambda: expand_inputs([path]), lambda: list(read_items(path))):
        with pytest.raises(ValueError, match="the column 'text' appears 2 times; rename all but one"):
            read()


def test_a_string_that_is_not_utf8_in_parquet_rejects_its_row_only(tmp_path: Path) -> None:
    """pyarrow does not check another writer's strings; one bad value failed its whole batch, and every
    row after it was lost in one `unreadable_file` reject."""
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "abstracts.parquet"
    texts = pa.array([b"IL-2", b"caf\xe9", b"p53", None], pa.binary()).view(pa.string())
    ids = pa.array([b"1", b"2", b"\xff", b"4"], pa.binary()).view(pa.string())
    pq.write_table(pa.table({"id": ids, "text": texts}), path)
    items = list(read_items(path))
    assert [(type(i).__name__, i.record, getattr(i, "kind", "")) for i in items] == [
        ("Record", "row 1", ""), ("Reject", "row 2", UNDECODABLE), ("Reject", "row 3", UNDECODABLE),
        ("Reject", "row 4", "missing_text")]
    assert items[1].doc_id == "2" and "'text' value is not UTF-8" in items[1].reason  # type: ignore[union-attr]
    assert items[2].doc_id == "" and "'id' value is not UTF-8" in items[2].reason  # type: ignore[union-attr]
    assert count_records(path) == len(items)


def test_book_sets_and_empty_sets_are_read_as_pubmed_files(tmp_path: Path) -> None:
    """A PubmedBookArticleSet's end tag was left in its last record, which then did not parse; a set
    without records (what a search that found nothing saves) was one malformed reject."""
    book = ("<PubmedBookArticle><BookDocument><PMID>{0}</PMID><ArticleTitle>Book {0}</ArticleTitle>"
            "</BookDocument></PubmedBookArticle>")
    books = tmp_path / "books.xml"
    books.write_text(f"<?xml version='1.0'?>\n<PubmedBookArticleSet>{book.format(5)}{book.format(6)}"
                     "</PubmedBookArticleSet>\n", encoding="utf8")
    assert expand_inputs([books]) == [books]
    items = list(read_items(books))
    assert [(type(i).__name__, i.doc_id, i.text) for i in items] == [  # type: ignore[union-attr]
        ("Record", "5", "Book 5"), ("Record", "6", "Book 6")]
    assert count_records(books) == 2
    for content in ("<PubmedArticleSet/>", "<PubmedArticleSet>\n<!-- none -->\n</PubmedArticleSet>\n"):
        empty = tmp_path / "empty.xml"
        empty.write_text(f"<?xml version='1.0'?>\n{content}", encoding="utf8")
        assert expand_inputs([empty]) == [empty]
        assert list(read_items(empty)) == [] and count_records(empty) == 0
    # A set cut short, or one holding something else, is still one reject.
    for content, kind in (("<PubmedArticleSet>\n", TRUNCATED),
                          ("<PubmedArticleSet><Article><PMID>1</PMID></Article></PubmedArticleSet>", MALFORMED_XML)):
        cut = tmp_path / "cut.xml"
        cut.write_text(f"<?xml version='1.0'?>\n{content}", encoding="utf8")
        assert [getattr(item, "kind", None) for item in read_items(cut)] == [kind]
        assert count_records(cut) == 1


@pytest.mark.parametrize("kind", ["pubmed", "jsonl", "txt"])
def test_a_resume_does_not_parse_the_records_of_finished_shards(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               kind: str) -> None:
    """Parsing is most of reading (about 0.1 ms a PubMed record): a resumed run re-parsed every record of
    its finished shards. The other shards get the same items at the same positions, DeleteCitations too."""
    from spacy_bioner.annotate.output import input_shards, shard_name

    if kind == "pubmed":
        path = BASELINE.with_name("pubmed26n1335.xml.gz")  # holds a DeleteCitation
        parser = "_pubmed_record"
    elif kind == "jsonl":
        path = write_jsonl(tmp_path / "toy.jsonl", ({"id": str(i), "text": f"IL-{i}"} for i in range(10)))
        path.write_text(path.read_text(encoding="utf8").replace("\n", "\n\n", 3), encoding="utf8")  # blank lines
        parser = "_json_record"
    else:
        path = tmp_path / "texts"
        path.mkdir()
        for i in range(10):
            (path / f"doc{i}.txt").write_text(f"p53 binds {i}", encoding="utf8")
        parser = "_checked_record"
    every = list(input_shards(path, "in", 3))
    finished = {shard_name("in", position, 3) for position in range(0, len(every), 6)}
    parsed = []
    parse = getattr(sources, parser)
    monkeypatch.setattr(sources, parser, lambda *args, **kwargs: parsed.append(1) or parse(*args, **kwargs))
    resumed = list(input_shards(path, "in", 3, finished))
    assert resumed == [(shard, position, item) for shard, position, item in every if shard not in finished]
    assert len(resumed) < len(every) and len(parsed) < len(every)
    if kind != "pubmed":  # there a DeleteCitation of a finished shard is parsed all the same
        assert len(parsed) == len(resumed)
