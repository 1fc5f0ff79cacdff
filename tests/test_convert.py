"""The `convert` command, DocBin writing and the registered spaCy readers."""

import subprocess
import sys
from pathlib import Path

import pytest
import spacy
from spacy.tokens import DocBin
from typer.testing import CliRunner

from spacy_bioner.cli import app
from spacy_bioner.conversion import docs_to_iob, write_docbin
from spacy_bioner.readers import read_iob
from spacy_bioner.tokenizer import make_bio_nlp
from spacy_bioner.visualize import DISPLACY_COLORS

from test_readers import BC5CDR_IOB, JNLPBA_TRAIN, PUBTATOR, iob_sentences

ROOT = Path(__file__).parent.parent
runner = CliRunner()
NLP = make_bio_nlp()


def load(path: Path):
    return list(DocBin().from_disk(path).get_docs(NLP.vocab))


@pytest.fixture(scope="module")
def jnlpba_converted(tmp_path_factory):
    out = tmp_path_factory.mktemp("jnlpba")
    result = runner.invoke(
        app,
        ["convert", "jnlpba", str(JNLPBA_TRAIN), str(out / "train.spacy"),
         "--dev-docs", "200", "--dev-output", str(out / "dev.spacy")],
    )
    return result, out


def test_convert_jnlpba_with_dev_split(jnlpba_converted):
    result, out = jnlpba_converted
    assert result.exit_code == 0, result.output
    for expected in ("train.spacy", "dev.spacy", "1,800", "16,807", "1,739", "protein", "dropped"):
        assert expected in result.stdout
    train, dev = load(out / "train.spacy"), load(out / "dev.spacy")
    assert (len(train), len(dev)) == (1800, 200)
    assert sorted(p.name for p in out.iterdir()) == ["dev.spacy", "train.spacy"]  # no temp files
    assert train[0].user_data["pmid"] == "95369245"
    assert all("jnlpba" in doc.spans for doc in train + dev)


def test_docbin_round_trip_reproduces_jnlpba_tags(jnlpba_converted):
    _, out = jnlpba_converted
    docs = load(out / "train.spacy") + load(out / "dev.spacy")
    assert docs_to_iob(docs) == iob_sentences(JNLPBA_TRAIN)
    assert docs_to_iob(docs, spans_key="jnlpba") == iob_sentences(JNLPBA_TRAIN)
    assert docs_to_iob(docs, spans_key="other") == [
        [(token, "O") for token, _ in sent] for sent in iob_sentences(JNLPBA_TRAIN)
    ]


def test_docbin_round_trip_reproduces_bc5cdr_iob_tags(tmp_path):
    docs, _ = read_iob(BC5CDR_IOB["test"], NLP.vocab, n_sents=50, spans_key="bc5cdr")
    write_docbin(docs, tmp_path / "test.spacy")
    assert docs_to_iob(load(tmp_path / "test.spacy"), "bc5cdr") == iob_sentences(BC5CDR_IOB["test"])


def test_convert_pubtator_and_max_loss(tmp_path):
    out = tmp_path / "test.spacy"
    # The test split loses 13 of 9,809 mentions (0.13%) to token boundaries.
    result = runner.invoke(app, ["convert", "pubtator", str(PUBTATOR["test"]), str(out), "--max-loss", "0.0001"])
    assert result.exit_code == 1
    assert "--max-loss" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not out.exists()

    result = runner.invoke(app, ["convert", "pubtator", str(PUBTATOR["test"]), str(out)])
    assert result.exit_code == 0, result.output
    assert "expanded Chemical" in result.stdout and "composite" in result.stdout
    docs = load(out)
    assert len(docs) == 500
    assert sum(len(doc.spans["bc5cdr"]) for doc in docs) == 9809


@pytest.mark.parametrize(
    "fmt,data,args,message",
    [
        ("iob", b"a\tO\nb\n", [], ":2: no tag"),
        ("iob", b"a\tO\nb\tZ-X\n", [], ":2: unknown tag"),
        ("pubtator", b"1|t|Hi.\n1\t0\t5\tHi.xx\tChemical\t-1\n", [], ":2: PMID 1: offsets"),
        ("iob", b"", [], ":1: empty file"),
        ("iob", b"a\tO\n", ["--dev-docs", "1", "--dev-output", "DEV"], "leaves no training documents"),
        ("iob", b"a\tO\n", ["--dev-docs", "1"], "--dev-docs and --dev-output"),
    ],
)
def test_convert_errors_are_one_line(tmp_path, fmt, data, args, message):
    src = tmp_path / "in.txt"
    src.write_bytes(data)
    out, dev = tmp_path / "out.spacy", tmp_path / "dev.spacy"
    args = [str(dev) if a == "DEV" else a for a in args]
    result = runner.invoke(app, ["convert", fmt, str(src), str(out), *args])
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0]
    assert "Traceback" not in result.output
    assert not out.exists() and not dev.exists()


def test_module_entry_point_help():
    result = subprocess.run(
        [sys.executable, "-m", "spacy_bioner", "convert", "--help"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    for option in ("--dev-docs", "--dev-output", "--n-sents", "--spans-key", "--max-loss", "--scheme"):
        assert option in result.stdout


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
    eg = next(iter(pubtator(nlp)))
    assert eg.predicted.text == eg.reference.text and eg.reference.spans["bc5cdr"]

    iob = spacy.registry.readers.get("spacy_bioner.IOB.v1")(str(BC5CDR_IOB["devel"]), spans_key="bc5cdr")
    assert sum(1 for _ in iob(nlp)) == 4581

    small = tmp_path / "bc5cdr.spacy"
    docs, _ = read_iob(BC5CDR_IOB["devel"], nlp.vocab, n_sents=100, spans_key="bc5cdr")
    write_docbin(docs, small)
    multi = spacy.registry.readers.get("spacy_bioner.MultiCorpus.v1")(
        {"jnlpba": str(out / "dev.spacy"), "bc5cdr": str(small)}, limit=5
    )
    keys = [next(iter(eg.reference.spans)) for eg in multi(nlp)]
    assert keys == ["jnlpba"] * 5 + ["bc5cdr"] * 5
    with pytest.raises(ValueError, match="missing.spacy"):
        spacy.registry.readers.get("spacy_bioner.MultiCorpus.v1")({"x": str(tmp_path / "missing.spacy")})


def test_displacy_colors_cover_all_labels():
    labels = {"protein", "DNA", "RNA", "cell_line", "cell_type", "Chemical", "Disease"}
    assert set(DISPLACY_COLORS) == labels
    assert len(set(DISPLACY_COLORS.values())) == len(labels)
