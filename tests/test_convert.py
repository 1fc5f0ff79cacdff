"""The `convert` command, DocBin writing and the registered spaCy readers.

What each reader accepts and rejects is tested in test_readers.py; here, what
the command does with it: one-line errors, exit codes, --max-loss, and files
written whole or not at all.
"""

import json
import lzma
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import spacy
from spacy.tokens import DocBin
from spacy.vocab import Vocab
from toy import BC5CDR_IOB, JNLPBA_TRAIN, PUBTATOR, ROOT, iob_sentences
from typer.testing import CliRunner

from spacy_bioner.cli import app
from spacy_bioner.corpora import JNLPBA_DEV_DOCS, read_iob, write_docbin
from spacy_bioner.evaluation import docs_to_iob
from spacy_bioner.visualize import DISPLACY_COLORS

runner = CliRunner()


def load(path: Path):
    # The strings travel in the DocBin: any vocab reads it back.
    return list(DocBin().from_disk(path).get_docs(Vocab()))


def invoke_convert(fmt, src, out, *args):
    result = runner.invoke(app, ["convert", fmt, str(src), str(out), *map(str, args)])
    return result, result.stderr.strip().splitlines()


def assert_failed_cleanly(result, lines, *expected):
    assert result.exit_code == 1
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    for text in expected:
        assert text in lines[0]
    assert "Traceback" not in result.output


@pytest.fixture(scope="module")
def jnlpba_converted(tmp_path_factory):
    out = tmp_path_factory.mktemp("jnlpba")
    result = runner.invoke(
        app,
        # --dev-docs left out: jnlpba's is the standard 200, the split pretraining leaves out.
        ["convert", "jnlpba", str(JNLPBA_TRAIN), str(out / "train.spacy"), "--dev-output", str(out / "dev.spacy")],
    )
    return result, out


@pytest.mark.slow
def test_convert_jnlpba_with_dev_split(jnlpba_converted):
    result, out = jnlpba_converted
    assert result.exit_code == 0, result.output
    for expected in ("train.spacy", "dev.spacy", "1,800", "16,807", "1,739"):
        assert expected in result.stdout
    train, dev = load(out / "train.spacy"), load(out / "dev.spacy")
    # The count rows of each part's table: entities per label, nothing dropped from an IOB file.
    for docs in (train, dev):
        proteins = sum(span.label_ == "protein" for doc in docs for span in doc.spans["jnlpba"])
        assert re.search(rf"^ +protein +{proteins:,}$", result.stdout, re.MULTILINE)
    assert len(re.findall(r"^ +dropped +0$", result.stdout, re.MULTILINE)) == 2
    assert (len(train), len(dev)) == (1800, 200)
    assert sorted(p.name for p in out.iterdir()) == ["dev.spacy", "train.spacy"]  # no temp files
    assert train[0].user_data["pmid"] == "95369245"
    assert all("jnlpba" in doc.spans for doc in train + dev)


@pytest.mark.slow
def test_docbin_round_trip_reproduces_jnlpba_tags(jnlpba_converted):
    _, out = jnlpba_converted
    docs = load(out / "train.spacy") + load(out / "dev.spacy")
    assert docs_to_iob(docs) == iob_sentences(JNLPBA_TRAIN)
    assert docs_to_iob(docs, spans_key="jnlpba") == iob_sentences(JNLPBA_TRAIN)
    assert docs_to_iob(docs, spans_key="other") == [
        [(token, "O") for token, _ in sent] for sent in iob_sentences(JNLPBA_TRAIN)
    ]


def test_docbin_round_trip_reproduces_bc5cdr_iob_tags(tmp_path, bio_nlp):
    docs, _ = read_iob(BC5CDR_IOB["test"], bio_nlp.vocab, n_sents=50, spans_key="bc5cdr")
    write_docbin(docs, tmp_path / "test.spacy")
    assert docs_to_iob(load(tmp_path / "test.spacy"), "bc5cdr") == iob_sentences(BC5CDR_IOB["test"])


@pytest.mark.slow
def test_convert_iob_into_the_abstracts_of_a_pubtator_file(tmp_path):
    out = tmp_path / "test.spacy"
    result, _ = invoke_convert("iob", BC5CDR_IOB["test"], out, "--spans-key", "bc5cdr", "--documents", PUBTATOR["test"])
    assert result.exit_code == 0, result.output
    docs = load(out)
    assert len(docs) == 500 and "(500 docs)" in result.stdout
    titles = [line for line in lzma.open(PUBTATOR["test"], "rt", encoding="utf8") if "|t|" in line]
    assert sorted(doc.user_data["pmid"] for doc in docs) == sorted(line.split("|")[0] for line in titles)


def test_convert_pubtator_test_split(tmp_path):
    out = tmp_path / "test.spacy"
    # What the reader converts (the published counts) is in test_readers.py;
    # here, the file holds the documents and entities the summary reports.
    result = runner.invoke(app, ["convert", "pubtator", str(PUBTATOR["test"]), str(out)])
    assert result.exit_code == 0, result.output
    assert "expanded Chemical" in result.stdout and re.search(r"^ +composite Disease at .*PMID", result.stdout, re.MULTILINE)
    summary = {
        name: int(count.replace(",", ""))
        for name, count in re.findall(r"^ +(documents|entities) +([\d,]+)$", result.stdout, re.MULTILINE)
    }
    docs = load(out)
    assert summary == {"documents": len(docs), "entities": sum(len(doc.spans["bc5cdr"]) for doc in docs)}
    assert f"({len(docs)} docs)" in result.stdout
    # The first ten composites of each label are listed, the others counted; --max-examples 0 lists them all.
    listed = re.findall(r"^ +composite \w+ at ", result.stdout, re.MULTILINE)
    composites = int(re.search(r"^ +composite, kept whole +([\d,]+)$", result.stdout, re.MULTILINE).group(1))
    assert len(listed) == 10 < composites and f"and {composites - 10} more composite" in result.stdout
    result = runner.invoke(app, ["convert", "pubtator", str(PUBTATOR["test"]), str(out), "--max-examples", "0"])
    assert len(re.findall(r"^ +composite \w+ at ", result.stdout, re.MULTILINE)) == composites
    assert "more composite" not in result.stdout


@pytest.mark.parametrize(
    "fmt,data,args,message",
    [
        # One reader error: each reader's own errors are in test_readers.py.
        ("jnlpba", b"###MEDLINE:1\n\nIL-2\tB-protein\nx\n", [], "in.txt:4: no tag"),
        # A file of sentences (Genia4ERtask1): --dev-docs would hold out sentences, not abstracts.
        ("jnlpba", b"IL-2\tB-protein\n\nx\tO\n", ["--dev-docs", "1", "--dev-output", "DEV"],
         "has no ###MEDLINE: markers"),
        ("jnlpba", b"x\tO\n\n###MEDLINE:1\nIL-2\tB-protein\n", [], "has sentences before its first ###MEDLINE:"),
        ("jnlpba", b"###MEDLINE:1\nIL-2\tB-protein\n", ["--n-sents", "2", "--scheme", "iob1"],
         "--n-sents and --scheme do not apply to jnlpba input"),
        ("iob", b"a\tO\n", ["--dev-docs", "1", "--dev-output", "DEV"], "leaves no training documents"),
        ("iob", b"a\tO\n\nb\tO\n", ["--dev-docs", "5", "--dev-output", "DEV"],
         "--dev-docs 5 leaves no training documents (2 in all): set --dev-docs to the number of documents "
         "at the end to hold out as dev, from 1 to 1"),
        ("iob", b"a\tO\n", ["--dev-docs", "1"], "--dev-docs and --dev-output"),
        ("iob", b"a\tO\n\nb\tO\n", ["--dev-output", "DEV"], "--dev-docs and --dev-output"),
        ("iob", b"a\tO\n", ["--documents", "docs.pubtator", "--n-sents", "2"], "give --documents or --n-sents, not both"),
        ("iob", b"a\tB-X\tO\n", [], "column 2 holds entity tags that differ"),
        ("iob", b"a\tB\n", [], "unknown tag 'B' (expected O or B-, I-, E-, S-, L-, U- and a label or give the label"),
        ("iob", b"a\tB-X\n", ["--text-key", "body"], "--text-key does not apply to iob input"),
        ("jsonl", b'{"text": "a"}\n', ["--label", "X", "--scheme", "iob1"], "--scheme and --label do not apply to jsonl"),
        ("jsonl", b'{"text": "a", "spans": [[0, 2, "X"]]}\n', [], "in.txt:1 entity 1: offsets 0-2 are no span"),
    ],
)
def test_convert_errors_are_one_line(tmp_path, fmt, data, args, message):
    src = tmp_path / "in.txt"
    src.write_bytes(data)
    out, dev = tmp_path / "out" / "out.spacy", tmp_path / "out" / "dev.spacy"
    args = [dev if a == "DEV" else a for a in args]
    result, lines = invoke_convert(fmt, src, out, *args)
    assert_failed_cleanly(result, lines, message)
    # Nothing written, not even a temporary file.
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["in.txt"]


def test_convert_jsonl_and_iob_options_and_what_the_head_learns_from(tmp_path):
    """JSON Lines with doccano's entity lists; a second tag column chosen; bare tags labelled; the
    key the entities went under said; an output without entities warned of."""
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"text": "Cisplatin nephrotoxicity.", "label": [[0, 9, "Chemical"]]}) + "\n")
    result, _ = invoke_convert("jsonl", src, tmp_path / "a.spacy", "--entities-key", "label", "--spans-key", "cdr")
    assert result.exit_code == 0, result.output
    assert [[(e.text, e.label_) for e in doc.spans["cdr"]] for doc in load(tmp_path / "a.spacy")] == [[("Cisplatin", "Chemical")]]
    assert "doc.spans['cdr']: the bio_ner head with spans_key 'cdr' learns from them" in result.stdout
    iob = tmp_path / "in.tsv"
    iob.write_text("IL-2\tB\tB\ngene\tI\tO\n")
    result, _ = invoke_convert("iob", iob, tmp_path / "b.spacy", "--tag-column", "2", "--label", "protein")
    assert result.exit_code == 0, result.output
    assert [[(e.text, e.label_) for e in doc.ents] for doc in load(tmp_path / "b.spacy")] == [[("IL-2 gene", "protein")]]
    iob.write_text("IL-2\tB-protein\tO\ngene\tI-protein\tO\n")
    result, lines = invoke_convert("iob", iob, tmp_path / "c.spacy", "--tag-column", "3")
    assert result.exit_code == 0 and lines == [f"Warning: {tmp_path / 'c.spacy'} holds no entity: no head learns "
                                               "anything from it."]


def test_convert_brat_with_its_options(tmp_path):
    """A folder of brat files: the types asked for, a discontinuous mention covered, what was left out
    listed, the dev split by documents in the order of their paths; brat's options refused elsewhere."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name, text, annotations in [
        ("b", "Renal and hepatic failure.", "T1\tDisease 0 5;18 25\tRenal failure\nT2\tGene 6 9\tand\n"),
        ("a", "Cisplatin nephrotoxicity.", "T1\tChemical 0 9\tCisplatin\nT2\tDisease 10 24\tnephrotoxicity\n"),
    ]:
        (corpus / f"{name}.txt").write_text(text)
        (corpus / f"{name}.ann").write_text(annotations)
    out, dev = tmp_path / "train.spacy", tmp_path / "dev.spacy"
    result, lines = invoke_convert("brat", corpus, out, "--entity-types", "Chemical, Disease", "--discontinuous",
                                   "cover", "--max-loss", "1", "--dev-docs", "1", "--dev-output", dev)
    assert result.exit_code == 0, result.output
    assert [[(e.text, e.label_) for e in doc.ents] for doc in load(out) + load(dev)] == [
        [("Cisplatin", "Chemical"), ("nephrotoxicity", "Disease")], [("Renal and hepatic failure", "Disease")]]
    assert "excluded Gene at " in result.stdout and "expanded Disease at " in result.stdout
    assert "doc.spans['ents']" in result.stdout and not lines
    result, lines = invoke_convert("brat", corpus, tmp_path / "c.spacy")
    assert_failed_cleanly(result, lines, "c.spacy: 25.000% of the entities would be lost")
    jsonl = tmp_path / "in.jsonl"
    jsonl.write_text('{"text": "a", "spans": []}\n')
    result, lines = invoke_convert("jsonl", jsonl, tmp_path / "d.spacy", "--discontinuous", "cover")
    assert_failed_cleanly(result, lines, "--discontinuous does not apply to jsonl input (it is for bioc and brat "
                                         "input): leave it out")
    # INCEpTION: the label in an attribute, offsets in UTF-16 units.
    inception = tmp_path / "inception"
    inception.mkdir()
    (inception / "e.txt").write_text("\U0001f600 asthma")
    (inception / "e.ann").write_text("T1\tNamedEntity 3 9\tasthma\nA1\tvalue T1 Disease\n")
    result, lines = invoke_convert("brat", inception, tmp_path / "e.spacy", "--label-attribute", "value",
                                   "--offset-units", "utf-16")
    assert result.exit_code == 0, result.output
    assert [[(e.text, e.label_) for e in doc.ents] for doc in load(tmp_path / "e.spacy")] == [[("asthma", "Disease")]]


def test_convert_bioc(tmp_path):
    bioc = pytest.importorskip("bioc")
    document = bioc.BioCDocument()
    document.id = "1"
    passage = bioc.BioCPassage()
    passage.offset, passage.text = 0, "Cisplatin nephrotoxicity."
    for ann_id, label, offset, text in [("a", "Chemical", 0, "Cisplatin"), ("b", "Disease", 10, "nephrotoxicity")]:
        annotation = bioc.BioCAnnotation()
        annotation.id, annotation.text, annotation.infons["type"] = ann_id, text, label
        annotation.add_location(bioc.BioCLocation(offset, len(text)))
        passage.add_annotation(annotation)
    document.add_passage(passage)
    collection = bioc.BioCCollection()
    collection.add_document(document)
    src = tmp_path / "in.xml"
    src.write_text(bioc.biocxml.dumps(collection))
    result, lines = invoke_convert("bioc", src, tmp_path / "a.spacy", "--entity-types", "Disease")
    assert result.exit_code == 0, result.output
    assert [[(e.text, e.label_) for e in doc.ents] for doc in load(tmp_path / "a.spacy")] == [[("nephrotoxicity",
                                                                                               "Disease")]]
    assert re.search(r"annotations left out +1\n", result.stdout)


@pytest.mark.parametrize("replaced", ["INPUT", "--documents"])
def test_convert_refuses_to_write_over_what_it_reads(tmp_path, replaced):
    src = tmp_path / "in.txt"
    src.write_bytes(b"a\tO\n")
    pubtator = tmp_path / "docs.pubtator"
    pubtator.write_bytes(b"1|t|a\n1|a|\n\n")
    out = src if replaced == "INPUT" else pubtator
    result, lines = invoke_convert("iob", src, out, "--documents", pubtator)
    assert_failed_cleanly(result, lines, f"OUTPUT is {replaced}: writing it would replace a file")
    assert src.read_bytes() == b"a\tO\n" and pubtator.read_bytes() == b"1|t|a\n1|a|\n\n"


def test_convert_prints_a_readers_warning_as_one_line(tmp_path):
    src = tmp_path / "in.txt"
    src.write_bytes(b"a\tO\nb\tI-X\n")
    result, lines = invoke_convert("iob", src, tmp_path / "out.spacy", "--scheme", "iob2")
    assert result.exit_code == 0, result.output
    assert lines == [f"Warning: {src}: 1 entities broke the IOB2 scheme and were repaired (first at {src}:2: "
                     "I-X after O read as the start of an entity)"]


def pubtator_with_misaligned(n_aligned: int, n_misaligned: int) -> bytes:
    """One abstract per mention: aligned ones, then ones inside a token ("expanded")."""
    lines = []
    for i in range(n_aligned + n_misaligned):
        pmid = 100 + i
        lines += [f"{pmid}|t|Cocaine and Na+/K+-ATPase.", f"{pmid}|a|It hurts."]
        if i < n_aligned:
            lines.append(f"{pmid}\t0\t7\tCocaine\tChemical\tD1")
        else:
            lines.append(f"{pmid}\t1\t7\tocaine\tChemical\tD1")  # not at a token start
        lines.append("")
    return "\n".join(lines).encode()


@pytest.mark.parametrize(
    "args,refused",
    [
        (["--scheme", "iob1"], "--scheme does"),
        (["--n-sents", "2"], "--n-sents does"),
        (["--documents", "IN"], "--documents does"),
        (["--scheme", "auto", "--n-sents", "1"], "--n-sents and --scheme do"),  # given, even as the defaults
    ],
)
def test_convert_refuses_options_that_do_not_apply_to_the_format(tmp_path, args, refused):
    """A PubTator file has its documents and entity offsets: no scheme to read nor sentences to group."""
    src = tmp_path / "in.pubtator"
    src.write_bytes(pubtator_with_misaligned(2, 0))
    out = tmp_path / "out.spacy"
    result, lines = invoke_convert("pubtator", src, out, *[src if arg == "IN" else arg for arg in args])
    assert_failed_cleanly(result, lines, f"{refused} not apply to pubtator input", "leave")
    assert not out.exists()
    assert invoke_convert("pubtator", src, out)[0].exit_code == 0


def test_convert_default_max_loss_is_half_a_percent(tmp_path):
    src = tmp_path / "in.pubtator"
    out = tmp_path / "train.spacy"
    # 1 of 200 entities moved (0.5%, not more than 0.5%): written.
    src.write_bytes(pubtator_with_misaligned(199, 1))
    result, _ = invoke_convert("pubtator", src, out)
    assert result.exit_code == 0, result.output
    assert "misaligned, expanded" in result.stdout and "'ocaine' [1:7] -> 'Cocaine'" in result.stdout
    before = out.read_bytes()
    # 1 of 150 (0.67%): refused, with the expanded entity listed, and the
    # existing output left as it was.
    src.write_bytes(pubtator_with_misaligned(149, 1))
    result, lines = invoke_convert("pubtator", src, out)
    assert_failed_cleanly(result, lines, str(out), "0.667% of the entities would be lost", "--max-loss 0.500%")
    assert "expanded Chemical at" in result.stdout
    assert out.read_bytes() == before
    # A larger --max-loss lets it through.
    result, _ = invoke_convert("pubtator", src, out, "--max-loss", "0.01")
    assert result.exit_code == 0
    assert len(load(out)) == 150


def test_a_jnlpba_dev_split_past_the_standard_one_warns_of_the_pretraining_text(tmp_path):
    """Pretraining leaves out the last JNLPBA_DEV_DOCS abstracts only: a larger dev set holds text an
    adapted encoder was trained on."""
    src = tmp_path / "in.iob2"
    src.write_text("".join(f"###MEDLINE:{i}\n\nIL-2\tB-protein\n\n" for i in range(JNLPBA_DEV_DOCS + 3)))
    for n, warned in ((JNLPBA_DEV_DOCS, False), (JNLPBA_DEV_DOCS + 1, True)):
        result, lines = invoke_convert("jnlpba", src, tmp_path / f"train-{n}.spacy", "--dev-docs", n,
                                       "--dev-output", tmp_path / f"dev-{n}.spacy")
        assert result.exit_code == 0, result.output
        assert any(f"--dev-docs {n}: the pretraining text leaves out the standard" in line for line in lines) == warned
        assert len(load(tmp_path / f"dev-{n}.spacy")) == n


def test_convert_max_loss_checks_dev_output_and_writes_neither(tmp_path):
    src = tmp_path / "in.pubtator"
    # The training part is clean; the last (dev) document loses its entity.
    src.write_bytes(pubtator_with_misaligned(300, 1))
    train, dev = tmp_path / "train.spacy", tmp_path / "dev.spacy"
    result, lines = invoke_convert("pubtator", src, train, "--dev-docs", 1, "--dev-output", dev)
    assert_failed_cleanly(result, lines, str(dev), "100.000% of the entities would be lost")
    assert not train.exists() and not dev.exists()


def test_convert_refuses_an_unwritable_output_before_converting(tmp_path):
    src = tmp_path / "in.txt"
    src.write_bytes(b"a\tO\n\nb\tO\n")
    folder, a_file = tmp_path / "folder", tmp_path / "file.spacy"
    folder.mkdir()
    a_file.write_bytes(b"")
    out, dev = ["--dev-docs", "1", "--dev-output"], tmp_path / "train.spacy"
    for args, message in (
        ([folder], f"OUTPUT {folder} is a directory"),
        ([dev, *out, folder], f"--dev-output {folder} is a directory"),
        ([dev, *out, a_file / "dev.spacy"], f"{a_file} is not a writable directory"),
        ([a_file / "sub" / "train.spacy"], f"{a_file} is not a writable directory"),
    ):
        result, lines = invoke_convert("iob", src, *args)
        assert_failed_cleanly(result, lines, message)
        assert result.stdout == ""  # refused before converting (the report comes first)
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["file.spacy", "in.txt"]


def test_convert_writes_both_outputs_or_neither(tmp_path, monkeypatch):
    """Where writing --dev-output fails (a full disk), OUTPUT is left as it was: the previous corpus."""
    src = tmp_path / "in.txt"
    src.write_bytes(b"a\tB-X\n\nb\tB-X\n")
    train, dev = tmp_path / "train.spacy", tmp_path / "dev.spacy"
    train.write_bytes(b"previous corpus")
    write_bytes = Path.write_bytes

    def full_disk_for_dev(path, data):
        if dev.name in path.name:
            raise OSError(28, "No space left on device")
        return write_bytes(path, data)

    monkeypatch.setattr(Path, "write_bytes", full_disk_for_dev)
    result, lines = invoke_convert("iob", src, train, "--dev-docs", 1, "--dev-output", dev)
    assert_failed_cleanly(result, lines, "No space left on device", "nothing written")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.txt", "train.spacy"]
    assert train.read_bytes() == b"previous corpus"


def test_write_docbin_failure_leaves_no_partial_file(tmp_path, monkeypatch, bio_nlp):
    out = tmp_path / "train.spacy"
    out.write_bytes(b"previous corpus")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        write_docbin([bio_nlp("IL-2 activates T cells")], out)
    assert [p.name for p in tmp_path.iterdir()] == ["train.spacy"]
    assert out.read_bytes() == b"previous corpus"


def test_written_corpus_has_the_usual_file_mode(tmp_path, bio_nlp):
    """Readable by whoever may read a file created here, not just its owner."""
    umask = os.umask(0o022)
    try:
        out = write_docbin([bio_nlp("IL-2 activates T cells")], tmp_path / "train.spacy")
    finally:
        os.umask(umask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o644


@pytest.mark.slow
def test_module_entry_point_help():
    result = subprocess.run(
        [sys.executable, "-m", "spacy_bioner", "convert", "--help"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    for option in ("--dev-docs", "--dev-output", "--n-sents", "--spans-key", "--max-loss", "--scheme"):
        assert option in result.stdout


@pytest.mark.slow
def test_registered_readers(jnlpba_converted, tmp_path):
    _, out = jnlpba_converted
    nlp = spacy.blank("en", config={"nlp": {"tokenizer": {"@tokenizers": "spacy_bioner.BioTokenizer.v1"}}})

    dev = spacy.registry.readers.get("spacy_bioner.JNLPBA.v1")(str(JNLPBA_TRAIN), dev_docs=200, part="dev")
    examples = list(dev(nlp))
    assert len(examples) == 200
    eg = examples[0]
    assert [t.text for t in eg.predicted] == [t.text for t in eg.reference]
    assert not eg.predicted.ents and eg.reference.spans["jnlpba"]

    pubtator = spacy.registry.readers.get("spacy_bioner.PubTator.v1")(str(PUBTATOR["dev"]))
    # What `convert` reports, the reader warns about: it was silent.
    with pytest.warns(UserWarning, match=r"0 mentions dropped and 10 widened to the pipeline's tokens, 0\.104%"):
        eg = next(iter(pubtator(nlp)))
    assert eg.predicted.text == eg.reference.text and eg.reference.spans["bc5cdr"]

    iob = spacy.registry.readers.get("spacy_bioner.IOB.v1")(str(BC5CDR_IOB["devel"]), spans_key="bc5cdr")
    assert sum(1 for _ in iob(nlp)) == 4581
    abstracts = spacy.registry.readers.get("spacy_bioner.IOB.v1")(
        str(BC5CDR_IOB["devel"]), spans_key="bc5cdr", documents=str(PUBTATOR["dev"])
    )
    examples = list(abstracts(nlp))
    assert len(examples) == 500 and examples[0].predicted.text == examples[0].reference.text
    assert [t.text for t in examples[0].predicted] == [t.text for t in examples[0].reference]

    small = tmp_path / "bc5cdr.spacy"
    docs, _ = read_iob(BC5CDR_IOB["devel"], nlp.vocab, n_sents=100, spans_key="bc5cdr")
    write_docbin(docs, small)
    multi = spacy.registry.readers.get("spacy_bioner.MultiCorpus.v1")(
        {"jnlpba": str(out / "dev.spacy"), "bc5cdr": str(small)}, limit=5
    )
    keys = [next(iter(eg.reference.spans)) for eg in multi(nlp)]
    assert keys == ["jnlpba"] * 5 + ["bc5cdr"] * 5
    # gold_tokens=False: the pipeline's tokenizer reads the text (as the configs train), and max_length
    # leaves out longer documents, per corpus.
    read_multi = spacy.registry.readers.get("spacy_bioner.MultiCorpus.v1")
    retokenized = list(read_multi({"jnlpba": str(out / "dev.spacy")}, limit=20, gold_tokens=False)(nlp))
    assert all(eg.predicted.text == eg.reference.text for eg in retokenized)
    assert any(len(eg.predicted) != len(eg.reference) for eg in retokenized)
    assert all([t.text for t in eg.predicted] == [t.text for t in nlp.make_doc(eg.reference.text)]
               for eg in retokenized)
    lengths = sorted(len(eg.reference) for eg in multi(nlp))
    cap = lengths[len(lengths) // 2]
    with pytest.warns(UserWarning, match=f"documents longer than max_length {cap} left out"):
        capped = list(read_multi({"jnlpba": str(out / "dev.spacy"), "bc5cdr": str(small)}, max_length=cap)(nlp))
    assert capped and all(len(eg.reference) <= cap for eg in capped)
    assert len(capped) < sum(1 for _ in read_multi({"jnlpba": str(out / "dev.spacy"), "bc5cdr": str(small)})(nlp))
    # With a limit too: the first documents within max_length, and the warning of those left out on the way.
    within = [eg.reference.text for eg in capped if "bc5cdr" in eg.reference.spans]
    with pytest.warns(UserWarning, match=f"documents longer than max_length {cap} left out"):
        first = list(read_multi({"bc5cdr": str(small)}, max_length=cap, limit=len(within) - 1)(nlp))
    assert [eg.reference.text for eg in first] == within[:-1]
    # Refused when read (with the advice), not when the config is resolved (`spacy debug config`).
    missing = spacy.registry.readers.get("spacy_bioner.MultiCorpus.v1")({"x": str(tmp_path / "missing.spacy")})
    with pytest.raises(ValueError, match="no such corpus file or folder: x=.*missing.spacy. Convert the corpora first"):
        next(iter(missing(nlp)))
    (tmp_path / "notes.spacy").write_text("not a DocBin")
    other = spacy.registry.readers.get("spacy_bioner.MultiCorpus.v1")({"x": str(tmp_path / "notes.spacy")})
    with pytest.raises(ValueError, match=r"notes.spacy: not a .spacy \(DocBin\) file; convert a corpus file with "
                                         "`python -m spacy_bioner convert`"):
        next(iter(other(nlp)))


@pytest.mark.parametrize("reader, args, message", [
    ("spacy_bioner.IOB.v1", {"path": "x.tsv", "scheme": "IOB2"}, r"unknown scheme 'IOB2' \(expected one of auto, iob1"),
    ("spacy_bioner.IOB.v1", {"path": "x.tsv", "n_sents": 0}, "n_sents must be at least 1"),
    ("spacy_bioner.MultiCorpus.v1", {"paths": {}}, "paths names no corpus"),
    ("spacy_bioner.MultiCorpus.v1", {"paths": {"x": "x.spacy"}, "limit": -1}, "limit must be a whole number, 0 for none, not -1"),
    ("spacy_bioner.MultiCorpus.v1", {"paths": {"x": "x.spacy"}, "max_length": -5}, "max_length must be a whole number"),
    ("spacy_bioner.MultiCorpus.v1", {"paths": {"x": ""}}, "no path given for x"),
])
def test_a_readers_options_are_refused_when_the_config_is_resolved(reader, args, message):
    """Not when read: a dev corpus is read at the first evaluation, eval_frequency steps into training
    (and MultiCorpus's limit -1 read every document, or raised islice's error)."""
    with pytest.raises(ValueError, match=message):
        spacy.registry.readers.get(reader)(**args)


def test_displacy_colors_cover_all_labels():
    labels = {"protein", "DNA", "RNA", "cell_line", "cell_type", "Chemical", "Disease"}
    assert set(DISPLACY_COLORS) == labels
    assert len(set(DISPLACY_COLORS.values())) == len(labels)
