"""Corpora larger than memory: readers that give their documents one at a time, `convert
--shard-size` writing a folder of .spacy files as it converts, and that folder read back as one
corpus by spaCy's Corpus, the registered readers and `evaluate`."""

import json
import os
import re
import struct
import subprocess
import sys
from pathlib import Path

import pytest
import spacy
from spacy.training import Corpus
from spacy.vocab import Vocab
from toy import PUBTATOR
from typer.testing import CliRunner

from spacy_bioner.cli import app
from spacy_bioner.corpora import docbin
from spacy_bioner.corpora import (
    ConversionError,
    ConversionReport,
    DocBinWriter,
    commit_docbins,
    docbin_files,
    iter_pubtator,
    load_docs,
    read_jnlpba,
)

runner = CliRunner()


def convert(*args):
    result = runner.invoke(app, ["convert", *map(str, args)])
    return result, result.stderr.strip().splitlines()


def annotation(doc):
    """What a converted document holds: text, spacing, sentences, entities of both kinds, id."""
    return (doc.text, [t.whitespace_ for t in doc], [t.is_sent_start for t in doc],
            [(s.start, s.end, s.label_, s.kb_id_) for s in doc.ents],
            {key: [(s.start, s.end, s.label_) for s in group] for key, group in doc.spans.items()}, doc.user_data)


def pubtator(n_docs: int, last_line: str = "") -> bytes:
    """`n_docs` abstracts of one entity each, then `last_line` (a broken one, say)."""
    lines = []
    for i in range(n_docs):
        lines += [f"{100 + i}|t|Cocaine and fever {i}.", f"{100 + i}|a|It hurts.", f"{100 + i}\t0\t7\tCocaine\tChemical\tD1", ""]
    return "\n".join(lines + [last_line]).encode()


def files_under(folder: Path):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.fixture(scope="module")
def bc5cdr_test(tmp_path_factory):
    """BC5CDR's test split converted to one file and to a folder of files of 120 abstracts."""
    out = tmp_path_factory.mktemp("bc5cdr")
    for target, args in ((out / "test.spacy", []), (out / "test", ["--shard-size", 120])):
        result, _ = convert("pubtator", PUBTATOR["test"], target, *args)
        assert result.exit_code == 0, result.output
    return out


def test_a_folder_of_files_holds_the_documents_of_the_file_in_order(bc5cdr_test):
    whole = load_docs(bc5cdr_test / "test.spacy", Vocab())
    assert len(whole) == 500
    assert [p.name for p in docbin_files(bc5cdr_test / "test")] == [f"{i:06d}.spacy" for i in range(5)]
    assert [annotation(d) for d in load_docs(bc5cdr_test / "test", Vocab())] == [annotation(d) for d in whole]
    assert [d.text for d in load_docs(bc5cdr_test / "test", Vocab(), limit=130)] == [d.text for d in whole[:130]]


def test_the_folder_reads_as_one_corpus_in_spacy_and_the_registered_reader(bc5cdr_test):
    nlp = spacy.blank("en")
    texts = [doc.text for doc in load_docs(bc5cdr_test / "test.spacy", nlp.vocab)]
    assert [eg.reference.text for eg in Corpus(bc5cdr_test / "test")(nlp)] == texts
    read_multi = spacy.registry.readers.get("spacy_bioner.MultiCorpus.v1")
    assert [eg.reference.text for eg in read_multi({"bc5cdr": str(bc5cdr_test / "test")})(nlp)] == texts
    assert [eg.reference.text for eg in read_multi({"bc5cdr": str(bc5cdr_test / "test")}, limit=3)(nlp)] == texts[:3]


def test_the_report_of_a_folder_is_that_of_the_file(bc5cdr_test, tmp_path):
    one, _ = convert("pubtator", PUBTATOR["test"], tmp_path / "a.spacy")
    many, _ = convert("pubtator", PUBTATOR["test"], tmp_path / "a", "--shard-size", 120)
    table = lambda result: result.stdout.split("\n\n")[0].split("\n")[1:]  # noqa: E731 (the title names the path)
    assert table(one) == table(many) and "documents" in table(one)[0]
    assert f"{tmp_path / 'a'} (500 docs in 5 files)" in many.stdout


def test_a_dev_split_into_folders_is_that_into_files(tmp_path):
    src = tmp_path / "in.pubtator"
    src.write_bytes(pubtator(7))
    result, _ = convert("pubtator", src, tmp_path / "train.spacy", "--dev-docs", 3, "--dev-output", tmp_path / "dev.spacy")
    assert result.exit_code == 0, result.output
    result, _ = convert("pubtator", src, tmp_path / "train", "--dev-docs", 3, "--dev-output", tmp_path / "dev",
                        "--shard-size", 2)
    assert result.exit_code == 0, result.output
    for part, n_docs, n_files in (("train", 4, 2), ("dev", 3, 2)):
        docs = load_docs(tmp_path / part, Vocab())
        assert [annotation(d) for d in docs] == [annotation(d) for d in load_docs(tmp_path / f"{part}.spacy", Vocab())]
        assert len(docs) == n_docs and len(docbin_files(tmp_path / part)) == n_files
    assert [d.user_data["pmid"] for d in load_docs(tmp_path / "dev", Vocab())] == ["104", "105", "106"]


def test_nothing_is_written_where_the_conversion_fails_after_files_were_written(tmp_path):
    src = tmp_path / "in.pubtator"
    src.write_bytes(pubtator(5, last_line="999\tnot a PubTator line"))
    out = tmp_path / "out"
    out.mkdir()
    (out / "000000.spacy").write_bytes(b"an earlier conversion")
    result, lines = convert("pubtator", src, out, "--shard-size", 1)
    assert result.exit_code == 1 and lines[-1].startswith("Error: ") and "in.pubtator:21" in lines[-1], result.output
    # The earlier folder as it was; no staging folder left beside it.
    assert files_under(tmp_path) == ["in.pubtator", "out", "out/000000.spacy"]
    assert (out / "000000.spacy").read_bytes() == b"an earlier conversion"


def test_past_max_loss_nothing_is_written_and_an_earlier_folder_is_replaced_whole(tmp_path):
    src = tmp_path / "in.pubtator"
    src.write_bytes(pubtator(5))
    out = tmp_path / "out"
    result, _ = convert("pubtator", src, out, "--shard-size", 1)
    assert result.exit_code == 0 and files_under(out) == [f"{i:06d}.spacy" for i in range(5)]
    # Another conversion into the folder leaves none of the earlier files.
    result, _ = convert("pubtator", src, out, "--shard-size", 4)
    assert result.exit_code == 0 and files_under(out) == ["000000.spacy", "000001.spacy"]
    assert len(load_docs(out, Vocab())) == 5
    broken = tmp_path / "broken.pubtator"
    broken.write_bytes(pubtator(5).replace(b"\t0\t7\tCocaine", b"\t1\t7\tocaine"))  # inside a token: expanded
    result, lines = convert("pubtator", broken, out, "--shard-size", 1)
    assert result.exit_code == 1 and "would be lost" in lines[-1] and "nothing written" in lines[-1]
    assert files_under(tmp_path) == ["broken.pubtator", "in.pubtator", "out", "out/000000.spacy", "out/000001.spacy"]


@pytest.mark.parametrize("held", ["notes/README.md", "train.spacy", "000000.spacy/x"])
def test_a_folder_of_other_files_is_refused_before_converting(tmp_path, held):
    """The folder is replaced whole: one that holds anything but a conversion's files (another
    corpus's .spacy file, a folder of corpora) is refused."""
    src = tmp_path / "in.pubtator"
    src.write_bytes(pubtator(2))
    out = tmp_path / "corpus"
    (out / held).parent.mkdir(parents=True)
    (out / held).write_text("mine")
    result, lines = convert("pubtator", src, out, "--shard-size", 1)
    assert result.exit_code == 1 and result.stdout == ""
    assert lines == [f"Error: OUTPUT {out} holds {held.split('/')[0]}, which no conversion writes, and the conversion "
                     "replaces the folder whole: give a new folder, or one that `convert --shard-size` wrote"]
    assert (out / held).read_text() == "mine"


def test_outputs_that_a_folder_cannot_replace_are_refused(tmp_path):
    src = tmp_path / "in.pubtator"
    src.write_bytes(pubtator(4))
    a_file, target, link = tmp_path / "train.spacy", tmp_path / "big" / "train", tmp_path / "train"
    a_file.write_bytes(b"")
    target.mkdir(parents=True)
    link.symlink_to(target)
    folder = tmp_path / "corpus"
    dev = ["--dev-docs", 1, "--dev-output"]
    for args, refused in (
        ([a_file], "is a file, not a folder"),
        ([link], f"OUTPUT {link} is a link (to {target}), which the conversion would replace with a folder"),
        ([folder / "train", *dev, folder], f"OUTPUT {folder / 'train'} is inside --dev-output {folder}"),
        ([folder, *dev, folder / "dev"], f"--dev-output {folder / 'dev'} is inside OUTPUT {folder}"),
        (["."], "OUTPUT . names no folder of its own"),
    ):
        result, lines = convert("pubtator", src, *args, "--shard-size", 1)
        assert result.exit_code == 1 and refused in lines[-1] and result.stdout == "", (args, result.output)
    assert files_under(tmp_path) == ["big", "big/train", "in.pubtator", "train", "train.spacy"]
    result, lines = convert("pubtator", src, target)  # no --shard-size: a file
    assert result.exit_code == 1 and f"OUTPUT {target} is a directory; give a file name, or --shard-size" in lines[-1]


def test_a_file_or_folder_goes_where_its_folders_are_missing(tmp_path):
    src = tmp_path / "in.pubtator"
    src.write_bytes(pubtator(3))
    for out, args in ((tmp_path / "a" / "b" / "train.spacy", []), (tmp_path / "c" / "d" / "train", ["--shard-size", 2])):
        result, _ = convert("pubtator", src, out, *args)
        assert result.exit_code == 0, result.output
        assert len(load_docs(out, Vocab())) == 3


def test_a_write_that_fails_while_converting_is_one_line(tmp_path, monkeypatch):
    src = tmp_path / "in.pubtator"
    src.write_bytes(pubtator(3))

    def too_large(path, data):
        raise OSError(27, "File too large")

    monkeypatch.setattr(docbin, "write_synced", too_large)
    result, lines = convert("pubtator", src, tmp_path / "out", "--shard-size", 1)
    assert result.exit_code == 1 and lines == ["Error: cannot write output: [Errno 27] File too large; nothing written"]
    assert files_under(tmp_path) == ["in.pubtator"]


def test_what_a_killed_conversion_left_is_removed_by_the_next(tmp_path):
    """A conversion killed (SIGKILL) leaves its staged folder; the next one beside it removes it,
    where the process that staged it no longer runs."""
    src = tmp_path / "in.pubtator"
    src.write_bytes(pubtator(2))
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    left = {pid: tmp_path / f".out.tmp-{pid}" for pid in (int(ended.stdout), os.getppid())}
    for folder in left.values():
        folder.mkdir()
        (folder / "000000.spacy").write_bytes(b"staged")
    result, _ = convert("pubtator", src, tmp_path / "out", "--shard-size", 1)
    assert result.exit_code == 0, result.output
    assert not left[int(ended.stdout)].exists() and left[os.getppid()].exists()  # a running process's is kept


def test_a_reader_gives_documents_before_it_reads_to_the_end(tmp_path):
    src = tmp_path / "in.pubtator"
    src.write_bytes(pubtator(3, last_line="999\tnot a PubTator line"))
    report = ConversionReport(source=str(src))
    docs = iter_pubtator(src, spacy.blank("en"), report=report)
    assert next(docs).text == "Cocaine and fever 0. It hurts."
    with pytest.raises(ConversionError, match=r"in.pubtator:13: unrecognized line"):
        list(docs)


def test_a_jnlpba_file_with_a_docstart_between_its_abstracts_is_refused(tmp_path):
    src = tmp_path / "in.iob2"
    src.write_text("###MEDLINE:1\n\nIL-2\tB-protein\n.\tO\n\n-DOCSTART-\n\np53\tB-protein\n")
    with pytest.raises(ConversionError, match="has sentences outside its ###MEDLINE: abstracts"):
        read_jnlpba(src, Vocab())


def test_writers_commit_all_or_none(tmp_path, monkeypatch):
    """A folder's files are written while converting; where the file beside it cannot be written,
    neither is put in place."""
    nlp = spacy.blank("en")
    folder, single = DocBinWriter(tmp_path / "train", shard_size=1), DocBinWriter(tmp_path / "dev.spacy")
    for text in ("a b", "c d", "e f"):
        folder.add(nlp(text))
    single.add(nlp("g h"))
    assert len([p for p in tmp_path.iterdir()]) == 1  # the staging folder, hidden, of three files
    monkeypatch.setattr(Path, "write_bytes", lambda path, data: (_ for _ in ()).throw(OSError(28, "disk full")))
    with pytest.raises(OSError, match="disk full"):
        commit_docbins([folder, single])
    assert list(tmp_path.iterdir()) == []


def test_evaluate_scores_a_folder_as_the_file(tiny_pipeline, corpus_root, tmp_path):
    docs = load_docs(corpus_root / "jnlpba" / "test.spacy", Vocab())
    writer = DocBinWriter(tmp_path / "test", shard_size=2)
    for doc in docs:
        writer.add(doc)
    commit_docbins([writer])
    scores = {}
    for name, path in (("file", corpus_root / "jnlpba" / "test.spacy"), ("folder", tmp_path / "test")):
        result = runner.invoke(app, ["evaluate", str(tiny_pipeline), "--corpus", f"{name}={path}",
                                     "--output-dir", str(tmp_path / "metrics")])
        assert result.exit_code == 0, result.output
        scores[name] = json.loads((tmp_path / "metrics" / f"{name}.json").read_text())
    assert scores["folder"]["seqeval"] == scores["file"]["seqeval"] and scores["file"]["documents"] == len(docs)
    empty = tmp_path / "empty"
    empty.mkdir()
    result = runner.invoke(app, ["evaluate", str(tiny_pipeline), "--corpus", f"x={empty}"])
    assert result.exit_code == 1 and f"--corpus x: {empty}: a folder without .spacy files" in result.output


@pytest.mark.skipif(sys.platform == "win32", reason="a pseudo-terminal")
def test_a_bar_counts_the_documents_converted_on_a_terminal_only(tmp_path):
    src = tmp_path / "in.pubtator"
    src.write_bytes(pubtator(3))
    command = [sys.executable, "-m", "spacy_bioner", "convert", "pubtator", str(src), str(tmp_path / "out.spacy")]
    piped = subprocess.run(command, capture_output=True, text=True)
    assert piped.returncode == 0 and "converting" not in piped.stderr
    import fcntl
    import pty
    import termios

    pid, fd = pty.fork()
    if pid == 0:  # stdout and stderr a terminal of 120 columns
        fcntl.ioctl(1, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        os.execv(command[0], command)
    seen = b""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # the terminal closed
            break
        if not chunk:
            break
        seen += chunk
    assert os.waitpid(pid, 0)[1] == 0
    assert re.search(r"^converting in.pubtator: \d docs \[", seen.decode().replace("\r", "\n"), re.MULTILINE)
