"""`annotate` run bookkeeping: overwrite, shard timing, rejects, changed inputs, paths, GPU, help.

Runs use the tiny trained pipeline of conftest.py on toy abstracts; each is
a few documents, so that the file stays fast.
"""

import errno
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, List, Optional

import pytest
from toy import PUBMED_BASELINE, toy_abstracts, write_jsonl, write_texts
from typer.testing import CliRunner

import spacy_bioner.annotate
from spacy_bioner.annotate import (
    AnnotateError,
    Options,
    TooManyRejects,
    annotate,
    read_table,
    sources,
)
from spacy_bioner.annotate.engine import BatchAnnotator, local_shards
from spacy_bioner.annotate.output import SHARDS_DIR, OutputDir, OutputError
from spacy_bioner.annotate.sources import EMPTY_TEXT, TOO_LONG, TRUNCATED, Record
from spacy_bioner.cli import app
from spacy_bioner.files import exclusive_folder


def done_shards(output: Path) -> List[str]:
    return sorted(p.stem for p in (output / SHARDS_DIR).glob("*.json"))


@pytest.mark.slow
def test_overwrite_deletes_nothing_where_there_is_no_run(tiny_pipeline: Path, tmp_path: Path) -> None:
    inputs = [write_texts(tmp_path / "toy.jsonl", toy_abstracts(2, seed=1))]
    busy = tmp_path / "busy"
    (busy / "documents").mkdir(parents=True)
    (busy / "documents" / "thesis.tex").write_text("years of work")
    with pytest.raises(AnnotateError, match="not empty and holds no annotation run"):
        annotate(str(tiny_pipeline), inputs, busy, Options(), overwrite=True)
    assert (busy / "documents" / "thesis.tex").read_text() == "years of work"


@pytest.mark.slow
def test_file_names_that_are_not_utf8(tiny_pipeline: Path, tmp_path: Path) -> None:
    """A .txt file whose name is not UTF-8 is a reject named with escapes, and its folder's other
    files are annotated (its name in the tables stopped the shard, at every rerun); an input whose
    path is not UTF-8 is refused before anything runs."""
    folder = tmp_path / "texts"
    folder.mkdir()
    (folder / "ok.txt").write_text("p53 binds DNA .", encoding="utf8")
    (folder / os.fsdecode(b"\xff\xfe.txt")).write_text("IL-2 .", encoding="utf8")
    output = tmp_path / "out"
    summary = annotate(str(tiny_pipeline), [folder], output, Options(fmt="jsonl"))
    assert summary["status"] == "complete" and (summary["documents"], summary["rejected"]) == (1, 1)
    [reject] = read_table(output, "rejects", "jsonl")
    assert (reject["record"], reject["kind"]) == ("\\xff\\xfe.txt", "undecodable_bytes")
    assert [row["doc_id"] for row in read_table(output, "documents", "jsonl") if row["status"] == "annotated"] == ["ok"]
    odd = tmp_path / os.fsdecode(b"caf\xe9.jsonl")
    write_texts(odd, ["p53 ."])
    with pytest.raises(AnnotateError, match=r"caf\\xe9.jsonl: the input's path is not UTF-8"):
        annotate(str(tiny_pipeline), [odd], tmp_path / "out2", Options(fmt="jsonl"))
    assert not (tmp_path / "out2").exists()


@pytest.mark.slow
def test_a_shard_is_written_before_the_next_is_annotated(
    tiny_pipeline: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    texts = toy_abstracts(6, seed=1)
    inputs = [write_texts(tmp_path / "toy.jsonl", texts)]
    options = Options(shard_size=3, batch_size=2)
    annotated: List[str] = []
    real_call = BatchAnnotator.__call__

    def crash_in_second_shard(self: BatchAnnotator, batch: List[str]) -> list:
        # The real pipeline, but a crash (say CUDA out of memory) in the second shard.
        annotated.extend(batch)
        if set(batch) & set(texts[3:]):
            raise RuntimeError("simulated crash in the second shard")
        return real_call(self, batch)

    monkeypatch.setattr(BatchAnnotator, "__call__", crash_in_second_shard)
    # Stopping after one shard annotates nothing of the next one.
    stopped = annotate(str(tiny_pipeline), inputs, tmp_path / "stopped", options, stop_after_shards=1)
    assert stopped["status"] == "stopped" and stopped["shards"] == 1
    assert set(annotated) == set(texts[:3])
    # Its summary said "stopped" after a resume that crashed: none is left to describe an earlier state.
    with pytest.raises(RuntimeError, match="simulated crash"):
        annotate(str(tiny_pipeline), inputs, tmp_path / "stopped", options, resume=True)
    assert not (tmp_path / "stopped" / "summary.json").exists()
    # A crash in shard 2 keeps shard 1, which a rerun then skips.
    crashed = tmp_path / "crashed"
    with pytest.raises(RuntimeError, match="simulated crash"):
        annotate(str(tiny_pipeline), inputs, crashed, options)
    assert len(done_shards(crashed)) == 1 and done_shards(crashed)[0].endswith("-000000")
    monkeypatch.undo()
    resumed = annotate(str(tiny_pipeline), inputs, crashed, options, resume=True)
    assert resumed["status"] == "complete" and resumed["documents"] == 6
    assert resumed["this_invocation"]["shards_skipped"] == 1


def test_out_of_memory_is_one_line_that_says_what_to_do(
    tiny_pipeline: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A GPU out of memory in `nlp.pipe` was a traceback on the local engine, without a word of
    --resume or of smaller batches (the Ray engine says it in one line)."""
    import torch

    from spacy_bioner.pipeline_component import BioNER

    texts = toy_abstracts(6, seed=1)
    inputs = [write_texts(tmp_path / "toy.jsonl", texts)]
    real_predict = BioNER.predict

    def out_of_memory_in_second_shard(self: BioNER, docs: Any) -> Any:
        docs = list(docs)
        if {doc.text for doc in docs} & set(texts[3:]):
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_predict(self, docs)

    monkeypatch.setattr(BioNER, "predict", out_of_memory_in_second_shard)
    output = tmp_path / "out"
    args = ["annotate", str(tiny_pipeline), str(inputs[0]), "--output", str(output), "--shard-size", "3",
            "--batch-size", "2", "--no-progress"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert ("Error: out of memory annotating a batch of 2 documents" in result.output
            and "OutOfMemoryError: CUDA out of memory" in result.output
            and "rerun with --resume and a smaller --max-batch-chars" in result.output)
    assert len(done_shards(output)) == 1
    monkeypatch.undo()
    resumed = CliRunner().invoke(app, args + ["--resume"])
    assert resumed.exit_code == 0, resumed.output
    assert json.loads((output / "summary.json").read_text(encoding="utf8"))["documents"] == 6


def test_out_of_memory_in_a_worker_completes_no_shard_after_it(
    tiny_pipeline: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With --n-process 2 the error came back through the handler of an unreadable input, which
    annotated on: the failed batch's document was written as annotated, without words or entities,
    in a shard --resume then skipped. The pool runs in threads here, so that the fault reaches it."""
    from concurrent.futures import ThreadPoolExecutor

    import torch

    from spacy_bioner.annotate import engine
    from spacy_bioner.pipeline_component import BioNER

    class ThreadPool(ThreadPoolExecutor):
        def __init__(self, workers: int, mp_context: Any = None, initializer: Any = None, initargs: Any = ()):
            super().__init__(1, initializer=initializer, initargs=initargs)

    texts = toy_abstracts(12, seed=1)
    inputs = [write_texts(tmp_path / "toy.jsonl", texts)]
    real_predict = BioNER.predict

    def out_of_memory_on_text_3(self: BioNER, docs: Any) -> Any:
        docs = list(docs)
        if texts[3] in {doc.text for doc in docs}:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_predict(self, docs)

    monkeypatch.setattr(engine, "ProcessPoolExecutor", ThreadPool)
    monkeypatch.setattr(BioNER, "predict", out_of_memory_on_text_3)
    output = tmp_path / "out"
    options = Options(fmt="jsonl", shard_size=3, batch_size=1, n_process=2)
    with pytest.raises(AnnotateError, match="^out of memory annotating a batch of 1 documents"):
        annotate(str(tiny_pipeline), inputs, output, options)
    assert [shard[-1] for shard in done_shards(output)] == ["0"]  # the shard before it, not its own
    monkeypatch.setattr(BioNER, "predict", real_predict)
    resumed = annotate(str(tiny_pipeline), inputs, output, options, resume=True)
    documents = read_table(output, "documents", "jsonl")
    assert resumed["documents"] == 12 and all(row["n_words"] > 0 for row in documents)


@pytest.mark.slow
def test_resume_may_change_the_batches_and_each_shard_records_its_own(tiny_pipeline: Path, tmp_path: Path) -> None:
    """Smaller batches after running out of memory: the same entities, so --resume takes them."""
    inputs = [write_texts(tmp_path / "toy.jsonl", toy_abstracts(4, seed=1))]
    output = tmp_path / "out"
    first = Options(shard_size=2, batch_size=2)
    annotate(str(tiny_pipeline), inputs, output, first, stop_after_shards=1)
    smaller = Options(shard_size=2, batch_size=1, max_batch_chars=500)
    with pytest.raises(AnnotateError, match=r"another batch_size \(2 there, 1 here\).*--resume to go on with these"):
        annotate(str(tiny_pipeline), inputs, output, smaller)
    with pytest.raises(AnnotateError, match=r"another shard_size.*use --overwrite to replace it or"):
        annotate(str(tiny_pipeline), inputs, output, Options(shard_size=3, batch_size=1), resume=True)
    summary = annotate(str(tiny_pipeline), inputs, output, smaller, resume=True)
    assert summary["status"] == "complete" and summary["documents"] == 4
    manifests = [json.loads(path.read_text(encoding="utf8")) for path in sorted((output / SHARDS_DIR).glob("*.json"))]
    assert [m["batching"] for m in manifests] == [{"batch_size": 2, "max_batch_chars": 100_000},
                                                  {"batch_size": 1, "max_batch_chars": 500}]
    assert json.loads((output / "run.json").read_text(encoding="utf8"))["batch_size"] == 1
    annotate(str(tiny_pipeline), inputs, output, smaller)  # a plain rerun with the new batches is the same run
    whole = tmp_path / "whole"
    annotate(str(tiny_pipeline), inputs, whole, first)

    def spans(out: Path) -> List[Any]:
        return [(r["record"], r["start_char"], r["end_char"], r["label"], r["spans_key"], r["in_ents"])
                for r in read_table(out, "entities")]

    assert spans(output) == spans(whole) and spans(whole)


@pytest.mark.slow
def test_an_output_written_with_other_tables_is_another_run(tiny_pipeline: Path, tmp_path: Path) -> None:
    """An output of an earlier version (no in_ents column, no tables_version) is not finished with new shards."""
    inputs = [write_texts(tmp_path / "toy.jsonl", toy_abstracts(4, seed=1))]
    output = tmp_path / "out"
    options = Options(shard_size=2)
    annotate(str(tiny_pipeline), inputs, output, options, stop_after_shards=1)
    run = json.loads((output / "run.json").read_text(encoding="utf8"))
    del run["tables_version"]
    (output / "run.json").write_text(json.dumps(run), encoding="utf8")
    with pytest.raises(AnnotateError, match=r"another tables_version \(not recorded there\).*--overwrite"):
        annotate(str(tiny_pipeline), inputs, output, options, resume=True)


def test_keys_are_part_of_a_run_only_where_an_input_has_keys(tiny_pipeline: Path, tmp_path: Path) -> None:
    """--text-key changes nothing a PubMed input gives, so a rerun with another is the same run;
    with a JSON Lines input it reads other text, so a rerun with another is refused."""
    pubmed = tmp_path / "pubmed"
    annotate(str(tiny_pipeline), [PUBMED_BASELINE], pubmed, Options(shard_size=10), stop_after_shards=1)
    assert json.loads((pubmed / "run.json").read_text(encoding="utf8"))["text_key"] is None
    summary = annotate(str(tiny_pipeline), [PUBMED_BASELINE], pubmed, Options(shard_size=10, text_key="abstract"),
                       resume=True)
    assert summary["status"] == "complete" and summary["records"] == 30
    jsonl = write_jsonl(tmp_path / "toy.jsonl", [{"id": "1", "text": "IL-2", "abstract": "p53"}])
    keyed = tmp_path / "keyed"
    annotate(str(tiny_pipeline), [jsonl], keyed, Options())
    with pytest.raises(AnnotateError, match=r'another text_key \("text" there, "abstract" here\)'):
        annotate(str(tiny_pipeline), [jsonl], keyed, Options(text_key="abstract"))


@pytest.mark.slow
def test_an_output_of_another_library_version_is_another_run(tiny_pipeline: Path, tmp_path: Path) -> None:
    """The code after the model (bounds, abbreviations, doc.ents) sets the entities: a resume after
    an upgrade would finish the tables with another version's, so it is refused, saying why."""
    inputs = [write_texts(tmp_path / "toy.jsonl", toy_abstracts(4, seed=1))]
    output = tmp_path / "out"
    options = Options(shard_size=2)
    annotate(str(tiny_pipeline), inputs, output, options, stop_after_shards=1)
    run = json.loads((output / "run.json").read_text(encoding="utf8"))
    assert run["spacy_bioner_version"] == spacy_bioner.__version__
    run["spacy_bioner_version"] = "0.0.1"
    (output / "run.json").write_text(json.dumps(run), encoding="utf8")
    with pytest.raises(AnnotateError, match=r'another spacy_bioner_version \("0.0.1" there, "[^"]+" here\).*--overwrite'):
        annotate(str(tiny_pipeline), inputs, output, options, resume=True)


@pytest.mark.slow
def test_max_rejects_fails_the_same_output_every_time(tiny_pipeline: Path, tmp_path: Path) -> None:
    bad = '{"id": "broken", "text": \n{"id": "number", "text": 5}\n{"id": "no-text"}\n'
    inputs = [write_texts(tmp_path / "bad.jsonl", toy_abstracts(2, seed=1), extra=bad)]
    output = tmp_path / "out"
    with pytest.raises(TooManyRejects, match="3 records rejected as bad input, more than --max-rejects 2") as first:
        annotate(str(tiny_pipeline), inputs, output, Options(max_rejects=2))
    # The limit was passed on the only shard: nothing was left undone, so nothing "stopped".
    assert "stopped" not in str(first.value) and "shards written: 1" in str(first.value)
    # A rerun writes nothing (every shard is done) and fails as the first run did.
    with pytest.raises(TooManyRejects, match="more than --max-rejects 2") as rerun:
        annotate(str(tiny_pipeline), inputs, output, Options(max_rejects=2))
    assert "shards written" not in str(rerun.value)
    assert rerun.value.summary["this_invocation"]["shards_written"] == 0
    assert rerun.value.summary["status"].startswith("failed")


@pytest.mark.slow
def test_the_new_words_of_a_batch_do_not_stay_in_the_vocab(tiny_pipeline: Path) -> None:
    """A collection's one-off tokens (numbers, doses, identifiers) grew the string store of
    every annotating process without end; the rows are those of a plain `nlp.pipe`."""
    annotator = BatchAnnotator(str(tiny_pipeline))
    texts = [f"IL-2 at {i}.{i}7 mg binds rs{i}{i}9 and p53 in T cells ." for i in range(20)]
    annotator(texts[:1])  # what loading and a first batch add for good
    strings = len(annotator.nlp.vocab.strings)
    annotated = annotator(texts)
    assert len(annotator.nlp.vocab.strings) == strings
    from spacy_bioner.annotate.output import entity_rows

    plain = [(entity_rows(doc, annotator.heads), len(doc)) for doc in annotator.nlp.pipe(texts)]
    assert annotated == plain and any(rows for rows, _ in annotated)
    assert len(annotator.nlp.vocab.strings) > strings  # outside a zone, they stay


def test_a_rerun_past_max_rejects_annotates_nothing_more(tiny_pipeline: Path, tmp_path: Path) -> None:
    # Three shards of two records: two toy abstracts, two bad lines, then one more bad line.
    bad = '{"id": "broken", "text": \n{"id": "number", "text": 5}\n{"id": "no-text"}\n'
    inputs = [write_texts(tmp_path / "bad.jsonl", toy_abstracts(2, seed=1), extra=bad)]
    output = tmp_path / "out"
    options = Options(shard_size=2, max_rejects=1)
    with pytest.raises(TooManyRejects, match="2 records rejected.*shards written: 2"):
        annotate(str(tiny_pipeline), inputs, output, options)
    assert len(done_shards(output)) == 2
    with pytest.raises(TooManyRejects, match="2 records rejected as bad input, more than --max-rejects 1") as rerun:
        annotate(str(tiny_pipeline), inputs, output, options)
    assert len(done_shards(output)) == 2, "the third shard is left undone"
    assert rerun.value.summary["this_invocation"]["shards_written"] == 0
    assert str(rerun.value).endswith("to go on, rerun with --resume and a higher --max-rejects")
    # As it says: the limit is the run's (run.json), and --resume may raise it.
    summary = annotate(str(tiny_pipeline), inputs, output, Options(shard_size=2, max_rejects=3), resume=True)
    assert summary["status"] == "complete" and summary["this_invocation"]["shards_written"] == 1
    assert summary["rejected_bad_input"] == 3 and summary["run"]["max_rejects"] == 3


@pytest.mark.slow
def test_a_rerun_with_a_lower_max_rejects_leaves_a_finished_output_as_it_is(
    tiny_pipeline: Path, tmp_path: Path
) -> None:
    """A rerun with a lower limit failed an output it did not change, writing a summary.json that
    called it failed. The limit is now one of the run's settings: another one is refused, as another
    shard size is, before the summary is touched."""
    bad = '{"id": "broken", "text": \n{"id": "number", "text": 5}\n'
    inputs = [write_texts(tmp_path / "bad.jsonl", toy_abstracts(2, seed=1), extra=bad)]
    output = tmp_path / "out"
    assert annotate(str(tiny_pipeline), inputs, output, Options(max_rejects=5))["status"] == "complete"
    written = (output / "summary.json").read_text(encoding="utf8")
    refusal = r"another max_rejects \(5 there, 1 here\).*--resume to go on with these settings"
    with pytest.raises(AnnotateError, match=refusal) as refused:
        annotate(str(tiny_pipeline), inputs, output, Options(max_rejects=1))
    assert not isinstance(refused.value, TooManyRejects)
    assert (output / "summary.json").read_text(encoding="utf8") == written
    assert annotate(str(tiny_pipeline), inputs, output, Options(max_rejects=5))["status"] == "complete"


@pytest.mark.parametrize("field, value", [("shard_size", 0), ("batch_size", 0), ("max_batch_chars", 0),
                                          ("n_process", 0), ("max_doc_chars", -1), ("max_rejects", -1),
                                          ("engine", "spark"), ("fmt", "csv")])
def test_options_no_run_can_use_are_refused(field: str, value: object) -> None:
    with pytest.raises(AnnotateError, match=str(value)):
        Options(**{field: value})


def test_max_doc_chars_above_the_pipeline_max_length_is_refused(tiny_pipeline: Path, tmp_path: Path) -> None:
    inputs = [write_texts(tmp_path / "toy.jsonl", toy_abstracts(1, seed=1))]
    with pytest.raises(AnnotateError, match="--max-doc-chars 2,000,000 is more than the pipeline's nlp.max_length"):
        annotate(str(tiny_pipeline), inputs, tmp_path / "out", Options(max_doc_chars=2_000_000))
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_the_progress_bar_moves_a_batch_at_a_time(tiny_pipeline: Path) -> None:
    """A shard is 10,000 records by default: a bar that moved once a shard stood still for minutes
    on a PubMed file. Batches move it as they are annotated, in one process or several, and each
    shard written makes it whole (its rejects too)."""
    import time

    from tqdm import tqdm

    from spacy_bioner.annotate.run import _BarMoves
    from spacy_bioner.annotate.sources import Reject

    texts = toy_abstracts(7, seed=3)
    planned = [(f"toy-{i // 4:06d}", i % 4, Record(f"toy{i}", text, "toy.jsonl", f"line {i + 1}"))
               for i, text in enumerate(texts)]
    planned.append(("toy-000001", 3, Reject("toy.jsonl", "line 8", EMPTY_TEXT, "empty text", "toy7")))
    for n_process in (1, 2):
        bar = tqdm(total=len(planned), file=io.StringIO(), mininterval=0)
        moving = _BarMoves(bar, time.perf_counter())
        moved: List[Any] = []

        def on_batch(batch: List[Any]) -> None:
            moving.batch_done(batch)
            moved.append((batch[0].shard, bar.n))

        words = 0
        for shard, results in local_shards(str(tiny_pipeline), planned, batch_size=2, max_chars=100_000,
                                           n_process=n_process, on_batch=on_batch):
            assert moved[-1][0] == shard  # its batches moved the bar before it was yielded
            words += sum(result.n_words for result in results)
            moving.shard_done(len(results), words)
        assert moved == [("toy-000000", 2), ("toy-000000", 4), ("toy-000001", 6), ("toy-000001", 7)]
        assert bar.n == len(planned) and moving.words == words > 0
        bar.close()


@pytest.mark.slow
def test_a_worker_that_cannot_start_fails_the_run_instead_of_hanging(tmp_path: Path) -> None:
    # Each spawned worker loads the model itself: here it cannot, and the pool breaks.
    planned = [("shard-000000", 0, Record("toy0", "IL-2 binds .", "toy.jsonl", "line 1"))]
    with pytest.raises(AnnotateError, match="an annotation process ended abruptly.*--resume"):
        list(local_shards(str(tmp_path / "no-model"), planned, batch_size=8, max_chars=1000, n_process=2))


@pytest.mark.slow
def test_shards_read_before_an_input_that_cannot_be_read_are_still_written(tiny_pipeline: Path) -> None:
    """With processes, the shards in flight when reading failed were thrown away (work lost, not records)."""
    texts = toy_abstracts(3, seed=1)

    def planned() -> Any:
        for position, text in enumerate(texts):
            yield f"toy-{position:06d}", position, Record(f"toy{position}", text, "toy.jsonl", f"line {position + 1}")
        raise AnnotateError("toy.jsonl: cannot be read: Input/output error")

    done = []
    with pytest.raises(AnnotateError, match="cannot be read"):
        for shard, results in local_shards(str(tiny_pipeline), planned(), batch_size=8, max_chars=1000, n_process=2):
            done.append((shard, [result.n_words > 0 for result in results]))
    # The last shard is not known to be whole (its next item never came), so it is not written.
    assert done == [(f"toy-{position:06d}", [True]) for position in range(2)]


@pytest.mark.parametrize("writer,fails,said,written", [
    ("_write_table", lambda target: target.stem.endswith("-000001"),
     "shard {shard}1 cannot be written (No space left on device); the shards written so far are kept: rerun with "
     "--resume once it can be", 1),
    ("_write_json", lambda target: target.name == "summary.json",
     "summary.json cannot be written (No space left on device); the shards written are kept: rerun with --resume "
     "once it can be, which writes it", 3),
], ids=["shard", "summary"])
def test_a_write_that_fails_is_one_line_and_resume_goes_on(
    tiny_pipeline: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, writer: str, fails: Any, said: str,
    written: int,
) -> None:
    """A full disk was a traceback: while writing a shard, or summary.json once the shards were written."""
    path = write_texts(tmp_path / "toy.jsonl", toy_abstracts(3, seed=1))
    write = getattr(spacy_bioner.annotate.output, writer)

    def full_disk(target: Path, *args: Any) -> None:
        if fails(target):
            raise OSError(errno.ENOSPC, "No space left on device", str(target))
        write(target, *args)

    monkeypatch.setattr(spacy_bioner.annotate.output, writer, full_disk)
    output = tmp_path / "out"
    result = CliRunner().invoke(app, ["annotate", str(tiny_pipeline), str(path), "--output", str(output),
                                      "--shard-size", "1", "--no-progress"])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    shards = done_shards(output)
    assert result.output.strip().splitlines()[-1] == f"Error: {output}: " + said.format(shard=shards[0][:-1])
    assert len(shards) == written
    monkeypatch.setattr(spacy_bioner.annotate.output, writer, write)
    summary = annotate(str(tiny_pipeline), [path], output, Options(shard_size=1), resume=True)
    assert summary["status"] == "complete" and summary["documents"] == 3 and len(done_shards(output)) == 3
    assert json.loads((output / "summary.json").read_text())["documents"] == 3


@pytest.mark.slow
def test_a_changed_input_is_refused(tiny_pipeline: Path, tmp_path: Path) -> None:
    texts = toy_abstracts(3, seed=1)
    path = write_texts(tmp_path / "toy.jsonl", texts[:2])
    output = tmp_path / "out"
    annotate(str(tiny_pipeline), [path], output, Options())
    before = path.stat().st_size
    write_texts(path, texts)  # a record appended after the run
    with pytest.raises(AnnotateError, match=re.escape(
            f"{output} holds another run: input {path.resolve()} changed since that run: "
            f"{before} bytes then, {path.stat().st_size} now; use --overwrite")):
        annotate(str(tiny_pipeline), [path], output, Options())
    assert annotate(str(tiny_pipeline), [path], output, Options(), overwrite=True)["documents"] == 3


@pytest.mark.slow
def test_resume_with_other_spellings_of_the_same_paths(
    tiny_pipeline: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_texts(tmp_path / "toy.jsonl", toy_abstracts(4, seed=1))
    output = tmp_path / "out"
    options = Options(shard_size=2, fmt="jsonl")
    annotate(str(tiny_pipeline), [path], output, options, stop_after_shards=1)
    # The model as a directory with a trailing slash is the same model.
    annotate(str(tiny_pipeline) + "/", [path], output, options, resume=True)
    (output / SHARDS_DIR / f"{done_shards(output)[-1]}.json").unlink()
    # The input by a relative path is the same input: its earlier shards count in the summary.
    monkeypatch.chdir(tmp_path)
    summary = annotate(str(tiny_pipeline), [Path("toy.jsonl")], output, options, resume=True)
    assert summary["this_invocation"]["shards_written"] == 1
    # Every row names the input as run.json and the summary do, whichever spelling wrote it: they join.
    recorded = json.loads((output / "run.json").read_text(encoding="utf8"))["inputs"][0]["path"]
    assert recorded == str(path.resolve())
    assert summary["inputs"] == [{"path": recorded, "shards": 2, "records": 4, "documents": 4, "rejected": 0,
                                  "deleted": []}]
    for table in ("documents", "entities"):
        assert {row["source"] for row in read_table(output, table, "jsonl")} == {recorded}, table
    # By a symlink, or a folder as ".": the same input, its shards done (the shards took the name as
    # typed: every record was annotated again beside the first ones).
    (tmp_path / "current.jsonl").symlink_to(path)
    again = annotate(str(tiny_pipeline), [Path("current.jsonl")], output, options)
    assert again["this_invocation"]["shards_written"] == 0 and again["inputs"] == summary["inputs"]
    folder = tmp_path / "texts"
    folder.mkdir()
    (folder / "a.txt").write_text("IL-2 in T cells.", encoding="utf8")
    monkeypatch.chdir(folder)
    annotate(str(tiny_pipeline), [Path(".")], tmp_path / "folder-out", options)
    again = annotate(str(tiny_pipeline), [folder], tmp_path / "folder-out", options)
    assert again["this_invocation"]["shards_written"] == 0 and again["documents"] == 1


def test_an_output_whose_shards_took_the_input_s_name_as_typed_resumes(
    tiny_pipeline: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before 5a4dd2d a shard took its input's file name as typed (a symlink's): resumed after it, none of
    an earlier run's shards were found done, and every record was annotated again beside them."""
    from spacy_bioner.annotate import output as output_module

    path = write_texts(tmp_path / "toy.jsonl", toy_abstracts(6, seed=1))
    (tmp_path / "current.jsonl").symlink_to(path)
    options = Options(shard_size=2, fmt="jsonl")
    resolved_prefix = output_module.shard_prefix

    def as_typed(given: Path) -> str:
        return resolved_prefix(given).replace(given.resolve().name, given.name, 1)

    with monkeypatch.context() as patched:
        for module in (output_module, sys.modules["spacy_bioner.annotate.run"]):
            patched.setattr(module, "shard_prefix", as_typed)
        annotate(str(tiny_pipeline), [tmp_path / "current.jsonl"], tmp_path / "out", options, stop_after_shards=2)
    assert sorted(done_shards(tmp_path / "out"))[0].startswith("current.jsonl-")
    summary = annotate(str(tiny_pipeline), [tmp_path / "current.jsonl"], tmp_path / "out", options, resume=True)
    assert summary["this_invocation"]["shards_written"] == 1
    assert summary["documents"] == 6 and summary["inputs"][0]["records"] == 6
    assert len(read_table(tmp_path / "out", "documents", "jsonl")) == 6


def test_gpu_id_without_a_gpu_is_one_line(tiny_pipeline: Path, tmp_path: Path) -> None:
    from thinc.util import gpu_is_available

    if gpu_is_available():
        pytest.skip("a GPU is usable here")
    inputs = [write_texts(tmp_path / "toy.jsonl", toy_abstracts(1, seed=1))]
    with pytest.raises(AnnotateError, match="--gpu-id 0: .*use -1 for the CPU"):
        annotate(str(tiny_pipeline), inputs, tmp_path / "out", Options(gpu_id=0))
    result = CliRunner().invoke(app, ["annotate", str(tiny_pipeline), str(inputs[0]), "--output",
                                      str(tmp_path / "out"), "--gpu-id", "0", "--no-progress"])
    assert result.exit_code == 1 and "Error: --gpu-id 0:" in result.output
    assert not isinstance(result.exception, ValueError) and "Traceback" not in result.output


def test_help_names_the_ray_extra_and_format_is_checked_first(tmp_path: Path) -> None:
    # Wide enough (rich reads COLUMNS) that no help text is cut short.
    result = CliRunner().invoke(app, ["annotate", "--help"], env={"COLUMNS": "240"})
    assert result.exit_code == 0
    assert "needs spacy-bioner[ray])" in re.sub(r"\s+", " ", result.output)
    # An unknown --format is refused before the (here missing) model is loaded.
    path = write_texts(tmp_path / "toy.jsonl", toy_abstracts(1, seed=1))
    bad = CliRunner().invoke(app, ["annotate", str(tmp_path / "no-model"), str(path), "--output",
                                   str(tmp_path / "out"), "--format", "csv"])
    assert bad.exit_code == 2 and "csv" in bad.output and "cannot load" not in bad.output
    engine = CliRunner().invoke(app, ["annotate", str(tmp_path / "no-model"), str(path), "--output",
                                      str(tmp_path / "out"), "--engine", "spark"])
    assert engine.exit_code == 2 and "spark" in engine.output and "cannot load" not in engine.output


def test_several_processes_on_a_gpu_are_refused_before_the_model_loads(tmp_path: Path) -> None:
    """--n-process forks workers that run on the CPU: with --gpu-id, one error line and nothing written."""
    path = write_texts(tmp_path / "toy.jsonl", toy_abstracts(1, seed=1))
    result = CliRunner().invoke(app, ["annotate", str(tmp_path / "no-model"), str(path), "--output",
                                      str(tmp_path / "out"), "--n-process", "2", "--gpu-id", "0", "--no-progress"])
    assert result.exit_code == 1, result.output
    [line] = result.output.splitlines()
    assert line.startswith("Error: --n-process > 1 runs on the CPU only") and "--engine ray" in line
    assert not (tmp_path / "out").exists()
    # What the message offers stays allowed: one process on the GPU, or one Ray actor per GPU.
    Options(n_process=1, gpu_id=0)
    Options(n_process=2, gpu_id=0, engine="ray")


@pytest.mark.slow
def test_an_input_that_cannot_be_read_stops_the_run_and_a_rerun_reads_it(
    tiny_pipeline: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_texts(tmp_path / "toy.jsonl", toy_abstracts(6, seed=1))
    lines = path.read_bytes().splitlines(keepends=True)
    options = Options(shard_size=2)

    class Lines(io.BytesIO):
        """The file until the network share it is on goes away: a read error, not the file's fault."""

        def readline(self, size: Optional[int] = -1) -> bytes:
            line = super().readline(size)
            if not line:
                raise OSError(errno.EIO, "Input/output error")
            return line

    monkeypatch.setattr(sources, "open_bytes", lambda file: Lines(b"".join(lines[:3])))
    output = tmp_path / "out"
    with pytest.raises(AnnotateError, match="toy.jsonl: cannot be read: .*Input/output error.*--resume"):
        annotate(str(tiny_pipeline), [path], output, options)
    # The first shard (lines 1-2) is done; the second, cut short, is not, nor does it hold a reject.
    assert len(done_shards(output)) == 1
    monkeypatch.undo()
    resumed = annotate(str(tiny_pipeline), [path], output, options, resume=True)
    assert resumed["status"] == "complete" and resumed["documents"] == 6 and resumed["rejected"] == 0


@pytest.mark.slow
def test_records_without_text_are_rejected_but_not_counted_against_max_rejects(
    tiny_pipeline: Path, tmp_path: Path
) -> None:
    # The real baseline sample: 1 of its 30 records has only a VernacularTitle.
    output = tmp_path / "out"
    summary = annotate(str(tiny_pipeline), [PUBMED_BASELINE], output, Options(max_rejects=0))
    assert summary["status"] == "complete"
    assert summary["records"] == 30 and summary["documents"] == 29
    assert summary["rejected"] == summary["rejected_not_bad_input"] == summary["rejects_by_kind"][EMPTY_TEXT] == 1
    assert summary["rejected_bad_input"] == 0
    assert [row["kind"] for row in read_table(output, "rejects")] == [EMPTY_TEXT]
    # Bad input still counts, and the message tells the two apart.
    bad = '{"id": "blank", "text": " "}\n{"id": "broken", "text": \n'
    inputs = [write_texts(tmp_path / "bad.jsonl", toy_abstracts(1, seed=1), extra=bad)]
    with pytest.raises(TooManyRejects, match="1 records rejected as bad input, more than --max-rejects 0.*"
                                             "1 empty or too long, not counted") as failed:
        annotate(str(tiny_pipeline), inputs, tmp_path / "bad", Options(max_rejects=0))
    assert failed.value.summary["rejected"] == 2 and failed.value.summary["rejected_bad_input"] == 1


@pytest.mark.slow
def test_records_longer_than_max_doc_chars_are_not_counted_against_max_rejects(
    tiny_pipeline: Path, tmp_path: Path
) -> None:
    texts = toy_abstracts(3, seed=1)
    limit = max(len(text) for text in texts)
    path = write_texts(tmp_path / "toy.jsonl", texts + [texts[0] + " " + texts[1]])  # the last one is too long
    output = tmp_path / "out"
    result = CliRunner().invoke(app, ["annotate", str(tiny_pipeline), str(path), "--output", str(output),
                                      "--max-doc-chars", str(limit), "--max-rejects", "0", "--no-progress"])
    # The user's own limit is no bad input: the run completes, the long record rejected and accounted for.
    assert result.exit_code == 0, result.output
    assert "1 rejected (0 bad input, counted against --max-rejects; 1 empty or too long, not counted)" in \
        re.sub(r"\s+", " ", result.output)
    summary = json.loads((output / "summary.json").read_text(encoding="utf8"))
    assert summary["status"] == "complete" and summary["documents"] == 3
    assert summary["rejected"] == summary["rejected_not_bad_input"] == summary["rejects_by_kind"][TOO_LONG] == 1
    assert summary["rejected_bad_input"] == 0
    assert [(row["record"], row["kind"]) for row in read_table(output, "rejects")] == [("line 4", TOO_LONG)]


@pytest.mark.slow
def test_a_folder_input_holding_the_output_reruns_and_resumes(tiny_pipeline: Path, tmp_path: Path) -> None:
    folder = tmp_path / "texts"
    folder.mkdir()
    for i, text in enumerate(toy_abstracts(4, seed=1)):
        (folder / f"doc{i}.txt").write_text(text, encoding="utf8")
    output = folder / "out"  # created inside the folder: the folder's own time changes, not its .txt files
    options = Options(shard_size=2, fmt="jsonl")
    assert annotate(str(tiny_pipeline), [folder], output, options, stop_after_shards=1)["status"] == "stopped"
    resumed = annotate(str(tiny_pipeline), [folder], output, options, resume=True)
    assert resumed["status"] == "complete" and resumed["this_invocation"]["shards_written"] == 1
    (folder / "notes.md").write_text("not read", encoding="utf8")  # nor is any other file
    rerun = annotate(str(tiny_pipeline), [folder], output, options)
    assert rerun["this_invocation"]["shards_written"] == 0 and rerun["documents"] == 4
    # What is read changes: refused, naming the input and how it changed.
    changed = re.escape(f"{output} holds another run: input {folder.resolve()} changed since that run: ")
    doc = folder / "doc1.txt"
    os.utime(doc, ns=(doc.stat().st_atime_ns, doc.stat().st_mtime_ns + 10**9))
    with pytest.raises(AnnotateError, match=changed + re.escape("a .txt file in it was modified; use --overwrite")):
        annotate(str(tiny_pipeline), [folder], output, options)
    (folder / "doc4.txt").write_text("IL-2 .", encoding="utf8")
    with pytest.raises(AnnotateError, match=changed + re.escape("4 .txt files then, 5 now")):
        annotate(str(tiny_pipeline), [folder], output, options, resume=True)


def test_another_run_is_refused_before_the_pipeline_loads(tiny_pipeline: Path, tmp_path: Path) -> None:
    """A rerun with other settings was refused only once the pipeline had loaded (a minute for a
    large one): here the model named cannot even load, and the refusal is of the settings."""
    inputs = [write_texts(tmp_path / "toy.jsonl", toy_abstracts(4, seed=1))]
    output = tmp_path / "out"
    annotate(str(tiny_pipeline), inputs, output, Options(shard_size=2), stop_after_shards=1)
    with pytest.raises(AnnotateError, match=r"holds another run: another shard_size \(2 there, 3 here\)"):
        annotate(str(tmp_path / "no-such-pipeline"), inputs, output, Options(shard_size=3))
    # Only the batches differ: --resume may go on with them, so the pipeline is loaded to know the rest.
    with pytest.raises(AnnotateError, match="no-such-pipeline"):
        annotate(str(tmp_path / "no-such-pipeline"), inputs, output, Options(shard_size=2, batch_size=3), resume=True)


def test_an_output_another_run_holds_is_refused_before_the_pipeline_loads(tmp_path: Path) -> None:
    inputs = [write_texts(tmp_path / "toy.jsonl", toy_abstracts(2, seed=1))]
    output = tmp_path / "out"
    with exclusive_folder(output):
        with pytest.raises(AnnotateError, match=f"{output} is in use by another run: wait for it to end"):
            annotate(str(tmp_path / "no-such-pipeline"), inputs, output, Options())
        assert not any(output.iterdir())
    # A run that fails leaves no folder of its own making behind.
    with pytest.raises(AnnotateError, match="no-such-pipeline"):
        annotate(str(tmp_path / "no-such-pipeline"), inputs, output, Options())
    assert not output.exists()


def test_a_changed_run_says_what_changed(tmp_path: Path) -> None:
    run = {"model": {"model": "/models/a", "digest": "d1"}, "inputs": [{"path": "/in/a.jsonl", "size": 1,
                                                                          "mtime_ns": 5}], "shard_size": 10,
           "format": "jsonl"}
    OutputDir(tmp_path / "out", "jsonl", run)
    other = {"model": {"model": "/models/a", "digest": "d2"},
             "inputs": [{"path": "/in/a.jsonl", "size": 1, "mtime_ns": 6}, {"path": "/in/b.jsonl", "size": 1,
                                                                            "mtime_ns": 5}],
             "shard_size": 2, "format": "jsonl"}
    with pytest.raises(OutputError) as refused:
        OutputDir(tmp_path / "out", "jsonl", other)
    assert str(refused.value) == (
        f"{tmp_path / 'out'} holds another run: another model (digest \"d1\" there, \"d2\" here); "
        "inputs that run did not read: /in/b.jsonl; "
        "input /in/a.jsonl changed since that run: modified (its time changed, not its size); "
        "another shard_size (10 there, 2 here); use --overwrite to replace it or choose a new directory")


def test_options_that_contradict_each_other_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(AnnotateError, match="--id-key and --text-key both name 'text'"):
        Options(id_key="text", text_key="text")
    with pytest.raises(AnnotateError, match="--address ray://head:10001 .*--engine ray only"):
        Options(address="ray://head:10001")
    path = write_texts(tmp_path / "toy.jsonl", toy_abstracts(1, seed=1))
    for args in (["--id-key", "text", "--text-key", "text"], ["--address", "ray://head:10001"]):
        result = CliRunner().invoke(app, ["annotate", str(tmp_path / "no-model"), str(path), "--output",
                                          str(tmp_path / "out"), "--no-progress", *args])
        assert result.exit_code == 1 and "Error: --" in result.output, result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)


def test_a_corrupt_run_json_is_one_line_and_overwrite_replaces_it(tmp_path: Path) -> None:
    run = {"model": {"digest": "x"}, "inputs": [], "format": "jsonl", "shard_size": 10}
    output = tmp_path / "out"
    OutputDir(output, "jsonl", run)
    (output / "run.json").write_text('{"model": {"dig', encoding="utf8")  # cut short
    with pytest.raises(OutputError, match="run.json cannot be read .*--overwrite"):
        OutputDir(output, "jsonl", run)
    with pytest.raises(OutputError, match="run.json cannot be read .*--overwrite"):
        OutputDir(output, "jsonl", run, resume=True)
    OutputDir(output, "jsonl", run, overwrite=True)
    assert json.loads((output / "run.json").read_text(encoding="utf8")) == run


def test_overwrite_deletes_only_what_annotate_wrote(tmp_path: Path) -> None:
    """A run.json of another tool (or a folder of the user's beside a run) was taken for a run, and
    --overwrite deleted the four folders whole, a thesis in documents/ with them."""
    run = {"model": {"digest": "x"}, "inputs": [], "format": "jsonl", "shard_size": 10}
    theirs = tmp_path / "theirs"
    (theirs / "documents").mkdir(parents=True)
    (theirs / "documents" / "thesis.docx").write_text("years of work")
    (theirs / "run.json").write_text('{"experiment": "my own run config"}')
    for overwrite in (False, True):
        with pytest.raises(OutputError, match="run.json is no run of spacy_bioner annotate .*choose a new directory"):
            OutputDir(theirs, "jsonl", run, overwrite=overwrite)
    assert (theirs / "documents" / "thesis.docx").read_text() == "years of work"
    ours = tmp_path / "ours"
    out = OutputDir(ours, "jsonl", run)
    out.write_shard("toy.jsonl-0123abcd-000000", "toy.jsonl", [])
    (ours / "documents" / ".toy.jsonl-0123abcd-000001.jsonl.tmp-77").write_text("cut short")
    (ours / "shards" / "notes.md").write_text("mine")
    with pytest.raises(OutputError, match=r"--overwrite deletes only what annotate wrote, and .* holds other files in "
                                          r"its folders, or links: .*shards/notes.md; move them"):
        OutputDir(ours, "jsonl", run, overwrite=True)
    assert sorted(p.name for p in (ours / "documents").iterdir()) == [
        ".toy.jsonl-0123abcd-000001.jsonl.tmp-77", "toy.jsonl-0123abcd-000000.jsonl"]  # nothing deleted
    (ours / "shards" / "notes.md").unlink()
    out.write_shard("toy.jsonl-0123abcd-1000000", "toy.jsonl", [])  # a shard's number past six digits is ours too
    OutputDir(ours, "jsonl", run, overwrite=True)
    assert all(not any((ours / sub).iterdir()) for sub in ("documents", "entities", "rejects", "shards"))
    # A table folder that is a link (moved to another disk): its files there are not deleted, nor is anything.
    out = OutputDir(ours, "jsonl", run)
    out.write_shard("toy.jsonl-0123abcd-000000", "toy.jsonl", [])
    (ours / "documents").rename(tmp_path / "elsewhere")
    (ours / "documents").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(OutputError, match=r"holds other files in its folders, or links: .*documents; move them"):
        OutputDir(ours, "jsonl", run, overwrite=True)
    assert [p.name for p in (tmp_path / "elsewhere").iterdir()] == ["toy.jsonl-0123abcd-000000.jsonl"]
    assert (ours / "entities" / "toy.jsonl-0123abcd-000000.jsonl").exists()
    (tmp_path / "elsewhere").rename(tmp_path / "unmounted")  # the link leads nowhere now: still not ours
    with pytest.raises(OutputError, match=r"holds other files in its folders, or links: .*documents; move them"):
        OutputDir(ours, "jsonl", run, overwrite=True)
    assert (ours / "entities" / "toy.jsonl-0123abcd-000000.jsonl").exists()


def test_a_long_input_name_makes_shard_files_a_file_system_holds(tmp_path: Path) -> None:
    """An input named with 240 characters made shard names over 255 bytes: every run failed, saying to resume."""
    from spacy_bioner.annotate.output import shard_name, shard_prefix

    long_input = tmp_path / ("a" * 240 + ".jsonl")
    long_input.write_text("")
    out = OutputDir(tmp_path / "out", "jsonl", {"inputs": [], "format": "jsonl", "shard_size": 10})
    shard = shard_name(shard_prefix(long_input), 0, 10)
    out.write_shard(shard, str(long_input), [])
    assert out.table_path("documents", shard).is_file() and shard != shard_name(shard_prefix(tmp_path / "b.jsonl"), 0, 10)


@pytest.mark.slow
def test_the_tables_read_whole_whatever_the_inputs_are_named(tiny_pipeline: Path, tmp_path: Path) -> None:
    """A shard named after an input whose name starts with "_" or "." (or a letter written as "_") was
    skipped as hidden by pyarrow and pandas reading the table's folder: the input's rows were missing."""
    import pyarrow.parquet as pq

    inputs = [write_texts(tmp_path / name, toy_abstracts(2, seed=1)) for name in ("étude.jsonl", "_a.jsonl", ".b.jsonl")]
    summary = annotate(str(tiny_pipeline), inputs, tmp_path / "out", Options())
    assert summary["documents"] == pq.read_table(tmp_path / "out" / "documents").num_rows == 6


def test_progress_is_on_by_default_only_on_a_terminal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: List[bool] = []

    def run(model: str, inputs: List[Path], output: Path, options: Options, **kwargs: Any) -> Any:
        seen.append(options.progress)
        raise AnnotateError("stop here")

    monkeypatch.setattr(spacy_bioner.annotate, "annotate", run)
    path = write_texts(tmp_path / "toy.jsonl", toy_abstracts(1, seed=1))
    for args in ([], ["--progress"], ["--no-progress"]):
        result = CliRunner().invoke(app, ["annotate", "model", str(path), "--output", str(tmp_path / "out"), *args])
        assert "stop here" in result.output
    assert seen == [False, True, False]  # CliRunner's stderr is no terminal


def test_help_says_what_offsets_gpu_id_address_max_rejects_and_folders_mean() -> None:
    result = CliRunner().invoke(app, ["annotate", "--help"], env={"COLUMNS": "240"})
    text = re.sub(r"\s+", " ", result.output)
    for said in ("Python code-point offsets into the document text", "Only with --engine ray",
                 "the one Ray assigns it", "rejected too, but not counted", "default: on when stderr is a terminal",
                 "named *.txt in any case (links too, those to files outside it listed in the log); subfolders and other "
                 "files are skipped",
                 "records longer than --max-doc-chars (too_long) are rejected too, but not counted",
                 "as too_long: your own limit, so not bad input, not counted against --max-rejects",
                 "source is the input's resolved path (as is each input's path in summary.json)",
                 '"record N, PMID P"'):
        assert said in text, said


def test_the_ray_extra_requires_the_ray_the_engine_needs() -> None:
    # ray_engine repartitions by rows a block, tested with Ray 2.60 (the keyword is newer than 2.10's
    # override_num_blocks), and gives map_batches the retry limit as a ray_remote_arg, which Ray 2.60
    # says 2.64 removes.
    from importlib.metadata import requires

    from packaging.requirements import Requirement

    (extra,) = [Requirement(r) for r in requires("spacy-bioner") or [] if 'extra == "ray"' in r]
    assert extra.name == "ray" and "data" in extra.extras
    assert not extra.specifier.contains("2.59.0") and extra.specifier.contains("2.60.0")
    assert not extra.specifier.contains("2.64.0")
    import ray

    assert tuple(int(part) for part in ray.__version__.split(".")[:2]) < (2, 64)


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no CPU affinity on this platform")
def test_usable_cpus_follow_the_cpus_the_process_may_use() -> None:
    """A process limited to one CPU (taskset, a container) counts one, not the
    machine's: what each worker's torch threads are sized by (usable_cpus() // n_process)."""
    code = (
        "import os; os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]}); "
        "from spacy_bioner.annotate.engine import usable_cpus; print(usable_cpus())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120).stdout
    assert out.strip() == "1"


def _worker_pids(parent: int) -> List[int]:
    """The spawned worker processes (multiprocessing's spawn_main) whose parent is `parent`, from /proc."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:  # gone meanwhile
            continue
        if int(fields[1]) == parent and b"spawn_main" in cmdline:
            pids.append(int(stat.parent.name))
    return pids


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the process table in /proc")
def test_ctrl_c_while_the_workers_load_is_one_line_and_ends_them(tiny_pipeline: Path, tmp_path: Path) -> None:
    """A terminal's Ctrl-C reaches the whole process group, the workers too. One
    interrupted while it loads the pipeline printed its traceback ("Exception in
    initializer"), one per worker; now they do not see SIGINT, and the run ends them."""
    import signal
    import time

    path = write_texts(tmp_path / "toy.jsonl", toy_abstracts(6, seed=1))
    command = [sys.executable, "-m", "spacy_bioner", "annotate", str(tiny_pipeline), str(path), "--output",
               str(tmp_path / "out"), "--n-process", "2", "--shard-size", "1", "--no-progress"]

    def own_group_default_sigint() -> None:
        signal.signal(signal.SIGINT, signal.SIG_DFL)  # as a shell's foreground job has it
        os.setpgrp()

    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               preexec_fn=own_group_default_sigint)
    try:
        workers: List[int] = []
        for _ in range(6000):  # until both workers are started: they then load the pipeline for a while
            workers = _worker_pids(process.pid)
            if len(workers) == 2 or process.poll() is not None:
                break
            time.sleep(0.01)
        assert len(workers) == 2, "the two workers never started"
        os.killpg(process.pid, signal.SIGINT)
        stdout, stderr = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr.decode() and "Exception in initializer" not in stderr.decode(), stderr
    # The line --no-progress prints as the pipeline loads, then the one of the interrupt.
    lines = stderr.decode().strip().splitlines()
    assert re.fullmatch(r"\[\d\d:\d\d:\d\d\] loading the pipeline " + re.escape(str(tiny_pipeline)), lines[0]), lines
    assert lines[1:] == [
        f"Interrupted before any shard was written to {tmp_path / 'out'}; the same command starts the run."]
    assert not [pid for pid in workers if _alive(pid)], "workers left running"


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the process table in /proc")
def test_workers_end_when_the_run_is_killed(tiny_pipeline: Path, tmp_path: Path) -> None:
    """A run killed outright (SIGKILL, the OOM killer, a job's time limit) cannot end its
    pool: its workers, waiting for their next batch, lived on with their pipelines."""
    import signal
    import time

    path = write_texts(tmp_path / "toy.jsonl", toy_abstracts(400, seed=1))
    output = tmp_path / "out"
    command = [sys.executable, "-m", "spacy_bioner", "annotate", str(tiny_pipeline), str(path), "--output",
               str(output), "--n-process", "2", "--shard-size", "1", "--batch-size", "1", "--no-progress"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               preexec_fn=os.setpgrp)
    workers: List[int] = []
    try:
        for _ in range(30000):  # until the workers have annotated a shard
            if process.poll() is not None:
                break
            if len(workers) < 2:
                workers = _worker_pids(process.pid)
            if len(workers) == 2 and any((output / SHARDS_DIR).glob("*")):
                break
            time.sleep(0.01)
        assert process.poll() is None and len(workers) == 2, "the run ended before it was killed"
        process.kill()  # the run alone, not its workers
        process.wait()
        for _ in range(12000):
            if not any(_alive(pid) for pid in workers):
                break
            time.sleep(0.01)
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # whatever is left, for the next tests
    assert not [pid for pid in workers if _alive(pid)], "workers left running"


@pytest.mark.parametrize("overwrite", [False, True])
def test_interrupted_run_says_how_to_finish_it(tmp_path: Path, monkeypatch: Any, overwrite: bool) -> None:
    """After Ctrl-C the message names the command that finishes the run: with --overwrite, the same
    command would delete the shards written, so it says --resume instead. Interrupted before it wrote
    anything (loading the pipeline), it said a previous run's shards were "kept" and that a command
    finished the run which that run's other settings then refused."""
    manifest = tmp_path / "out" / SHARDS_DIR / "toy.jsonl-0-000000.json"
    writes = False

    def interrupted(*args: Any, **kwargs: Any) -> None:
        if writes:
            manifest.parent.mkdir(parents=True, exist_ok=True)
            manifest.write_text("{}", encoding="utf8")
        raise KeyboardInterrupt

    monkeypatch.setattr(spacy_bioner.annotate, "annotate", interrupted)
    path = write_jsonl(tmp_path / "toy.jsonl", [{"id": "1", "text": "Aspirin."}])
    args = ["annotate", str(tmp_path / "model"), str(path), "--output", str(tmp_path / "out"), "--no-progress"]
    args += ["--overwrite"] if overwrite else []
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 130
    assert result.stderr.strip() == (
        f"Interrupted before any shard was written to {tmp_path / 'out'}; the same command starts the run.")
    writes = True  # one shard written before the interrupt
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 130
    finish = "the same command without --overwrite" if overwrite else "the same command"
    assert result.stderr.strip() == f"Interrupted: the shards written to {tmp_path / 'out'} are kept; {finish} finishes the run."
    writes = False  # a previous run's shard, untouched
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 130
    assert result.stderr.strip() == (
        f"Interrupted before a shard was written to {tmp_path / 'out'}: the shards there are as they were; "
        "summary.json is written when a run ends.")  # it said "it is as it was", its summary.json gone


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_ray_address_where_nothing_listens_is_one_line_at_once(tiny_pipeline: Path, tmp_path: Path) -> None:
    """ray.init retried such an address for many minutes, a warning every few seconds."""
    pytest.importorskip("ray")
    path = write_texts(tmp_path / "toy.jsonl", toy_abstracts(1, seed=1))
    address = f"127.0.0.1:{_closed_port()}"
    result = CliRunner().invoke(app, ["annotate", str(tiny_pipeline), str(path), "--output", str(tmp_path / "out"),
                                      "--engine", "ray", "--address", address, "--no-progress"])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert f"Error: cannot reach the Ray cluster at --address {address} (127.0.0.1:" in result.output
    assert "Connection refused" in result.output and "leave --address out" in result.output
    assert not (tmp_path / "out").exists()


def test_a_pipeline_is_fingerprinted_where_spacy_loads_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """spaCy loads an installed package before a folder of the same name: the run names and
    hashes what was loaded, and a Ray worker loads the same."""
    import spacy

    from spacy_bioner.annotate.ray_engine import _absolute_model
    from spacy_bioner.annotate.run import model_fingerprint
    from spacy_bioner.loading import pipeline_directory

    monkeypatch.chdir(tmp_path)
    (tmp_path / "pytest").mkdir()  # a folder named as an installed package
    spacy.blank("en").to_disk(tmp_path / "model")
    assert pipeline_directory("pytest") is None and _absolute_model("pytest") == "pytest"
    assert pipeline_directory("model") == tmp_path / "model" and _absolute_model("model") == str(tmp_path / "model")
    assert pipeline_directory("missing") is None
    # The run's record: the package by its name and version, not the folder's files.
    (tmp_path / "pytest" / "weights.bin").write_bytes(b"not the package")
    nlp = spacy.blank("en")
    package = model_fingerprint("pytest", nlp)
    assert package["model"] == "pytest"
    (tmp_path / "pytest" / "weights.bin").write_bytes(b"still not the package")
    assert model_fingerprint("pytest", nlp) == package
    assert model_fingerprint("model", nlp)["model"] == str(tmp_path / "model")


def test_ray_annotator_actors_leave_a_cpu_to_read_and_wait_for_an_autoscaler() -> None:
    """At most one actor fewer than the cluster's CPUs; a cluster of no CPU yet (its autoscaler
    adds them) gets the actors asked for, not a pool of -1."""
    from spacy_bioner.annotate.ray_engine import annotator_actors

    assert [annotator_actors(2, cpus) for cpus in (2, 3, 8)] == [1, 2, 2]
    assert annotator_actors(4, 4) == 3
    assert annotator_actors(2, 0) == 2


@pytest.mark.slow
def test_a_running_ray_cluster_is_reachable_and_one_of_a_single_cpu_is_refused(
    tiny_pipeline: Path, tmp_path: Path
) -> None:
    """The check before ray.init lets a live cluster through, however its address is spelt. On one
    CPU the annotator actor took the CPU the parsing tasks wait for, and the run never ended."""
    ray = pytest.importorskip("ray")
    from spacy_bioner.annotate.ray_engine import check_reachable

    if ray.is_initialized():
        pytest.skip("a Ray session is already running in this process")
    ray.init(include_dashboard=False, num_cpus=1)
    try:
        address = ray.get_runtime_context().gcs_address
        port = address.rpartition(":")[2]
        for spelling in (address, f"127.0.0.1:{port}", f"localhost:{port}", "auto"):
            check_reachable(spelling)
        path = write_texts(tmp_path / "toy.jsonl", toy_abstracts(1, seed=1))
        with pytest.raises(AnnotateError, match="the Ray cluster has 1 CPU: .* use --engine local"):
            annotate(str(tiny_pipeline), [path], tmp_path / "out", Options(engine="ray"))
        assert not (tmp_path / "out").exists()
    finally:
        ray.shutdown()


def test_an_output_folder_under_a_file_is_one_line(tiny_pipeline: Path, tmp_path: Path) -> None:
    """It was a NotADirectoryError traceback from the first mkdir, after the pipeline was loaded."""
    path = write_texts(tmp_path / "toy.jsonl", toy_abstracts(1, seed=1))
    note = tmp_path / "note.txt"
    note.write_text("not a folder")
    result = CliRunner().invoke(app, ["annotate", str(tiny_pipeline), str(path), "--output", str(note / "out"),
                                      "--format", "jsonl", "--no-progress"])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert result.output.strip().splitlines() == [
        f"Error: --output {note / 'out'} cannot be made: {note} is a file, not a folder"]
    with pytest.raises(AnnotateError, match=f"{note / 'out'} cannot be used as the output folder: Not a directory"):
        annotate(str(tiny_pipeline), [path], note / "out", Options(fmt="jsonl"))
    assert note.read_text() == "not a folder"


@pytest.mark.slow
def test_without_the_bar_a_run_logs_its_progress_on_stderr(tiny_pipeline: Path, tmp_path: Path) -> None:
    """With stderr no terminal (a batch job, `2>&1 | tee`), the bar is off, and nothing was printed until the end."""
    path = write_texts(tmp_path / "toy.jsonl", toy_abstracts(5, seed=1))
    args = ["annotate", str(tiny_pipeline), str(path), "--shard-size", "2"]
    result = CliRunner().invoke(app, [*args, "--output", str(tmp_path / "plain")])  # CliRunner's stderr: no terminal
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    time_of_day = r"\[\d\d:\d\d:\d\d\] "
    assert re.fullmatch(time_of_day + "loading the pipeline " + re.escape(str(tiny_pipeline)), lines[0])
    shards = [line for line in lines if " written (" in line]
    assert len(shards) == 3, lines
    entities = 0
    for line, (records, done) in zip(shards, [("2 records", 2), ("2 records", 4), ("1 record", 5)]):
        # The records done of all, and of how many once they are counted (a thread counts them meanwhile).
        match = re.fullmatch(time_of_day + r"shard toy\.jsonl-\w+-00000\d written \(" + records +
                             rf", ([\d,]+) entit(?:y|ies)\): {done}(?:/5)? records done, [\d,]+ words/s", line)
        assert match, line
        entities += int(match.group(1).replace(",", ""))
    summary = json.loads((tmp_path / "plain" / "summary.json").read_text(encoding="utf8"))
    assert entities == summary["entities"] > 0
    assert "written (" not in result.stdout and "loading the pipeline" not in result.stdout
    # With the bar: the line as the pipeline loads (the bar starts after it), no line for each shard.
    result = CliRunner().invoke(app, [*args, "--output", str(tmp_path / "bar"), "--progress"])
    assert result.exit_code == 0, result.output
    assert "written (" not in result.output and result.stderr.count("loading the pipeline") == 1
    assert "annotate:" in result.stderr  # tqdm's bar


@pytest.mark.slow
def test_inputs_without_records_are_said_so_not_done_before(tiny_pipeline: Path, tmp_path: Path) -> None:
    """An empty input on a new output said "every shard was done before this run", of no shard at all."""
    empty = tmp_path / "empty.jsonl"
    empty.write_text("", encoding="utf8")
    command = ["annotate", str(tiny_pipeline), str(empty), "--output", str(tmp_path / "out"), "--no-progress"]
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 0, result.output
    assert f"Warning: 1 input without records (there was nothing to annotate): {empty}" in result.stderr
    assert "done before" not in result.output
    assert "0 records: 0 annotated, 0 rejected" in result.stdout
    # A finished run run again: its shards were done before, and it has records.
    toy = write_texts(tmp_path / "toy.jsonl", toy_abstracts(2, seed=1))
    command = ["annotate", str(tiny_pipeline), str(toy), "--output", str(tmp_path / "toy"), "--no-progress"]
    first = CliRunner().invoke(app, command)
    again = CliRunner().invoke(app, command)
    assert first.exit_code == again.exit_code == 0, (first.output, again.output)
    assert "done before" not in first.output and "words/s this run" in first.stdout
    assert "2 records: 2 annotated" in again.stdout and "every shard was done before this run" in again.stdout
    assert "Warning" not in first.output + again.output
    # An empty input among others (a download that failed) is named, not passed over.
    command = ["annotate", str(tiny_pipeline), str(toy), str(empty), "--output", str(tmp_path / "both"),
               "--no-progress"]
    both = CliRunner().invoke(app, command)
    assert both.exit_code == 0, both.output
    assert f"Warning: 1 input without records (the others were read): {empty}" in both.stderr
    assert "2 records: 2 annotated" in both.stdout


@pytest.mark.slow
def test_too_long_names_the_limit_it_was_longer_than(tiny_pipeline: Path, tmp_path: Path) -> None:
    """The reason said "(--max-doc-chars, default nlp.max_length)" whichever limit it was."""
    import spacy

    max_length = spacy.load(tiny_pipeline).max_length
    long = "p53 " * (max_length // 4 + 1)
    path = write_texts(tmp_path / "toy.jsonl", ["IL-2 binds p53 .", long])
    reasons = {}
    for name, options in (("default", Options()), ("given", Options(max_doc_chars=10))):
        summary = annotate(str(tiny_pipeline), [path], tmp_path / name, options)
        assert summary["rejects_by_kind"] == {TOO_LONG: 1 if name == "default" else 2}
        reasons[name] = [row["reason"] for row in read_table(tmp_path / name, "rejects")]
    assert reasons["default"] == [f"{len(long)} characters, longer than the limit of {max_length} characters "
                                  "(the pipeline's nlp.max_length)"]
    assert reasons["given"] == ["16 characters, longer than the limit of 10 characters (--max-doc-chars)",
                                f"{len(long)} characters, longer than the limit of 10 characters (--max-doc-chars)"]


@pytest.mark.slow
def test_a_plain_xml_cut_before_the_end_of_its_set_is_counted_as_truncated(
    tiny_pipeline: Path, tmp_path: Path
) -> None:
    """Its records after the cut were lost without a word; a cut .gz was a truncated_input reject."""
    import gzip

    xml = gzip.decompress(PUBMED_BASELINE.read_bytes())
    end = xml.index(b"</PubmedArticle>", len(xml) // 2) + len(b"</PubmedArticle>")
    path = tmp_path / "cut.xml"
    path.write_bytes(xml[:end])
    summary = annotate(str(tiny_pipeline), [path], tmp_path / "out", Options())
    records = xml[:end].count(b"<PubmedArticle>")
    assert summary["status"] == "complete"
    # The records before the cut, and one reject for what is missing after it.
    assert summary["records"] == records + 1 == summary["documents"] + summary["rejected"]
    assert summary["rejects_by_kind"][TRUNCATED] == 1 and summary["rejected_bad_input"] == 1
    (reject,) = [row for row in read_table(tmp_path / "out", "rejects") if row["kind"] == TRUNCATED]
    assert reject["record"] == f"record {records + 1}"
    assert reject["reason"].startswith("the file ends before </PubmedArticleSet>")


@pytest.mark.slow
def test_a_gz_cut_in_its_trailer_annotates_every_record(tiny_pipeline: Path, tmp_path: Path) -> None:
    """Every record of a .gz missing only its CRC and size decompresses whole: its last one was
    rejected with the cut. Now every record is annotated (or rejected as in the whole file), and the
    cut is one truncated_input reject after them."""
    whole = list(sources.read_items(PUBMED_BASELINE))
    path = tmp_path / PUBMED_BASELINE.name
    path.write_bytes(PUBMED_BASELINE.read_bytes()[:-8])
    summary = annotate(str(tiny_pipeline), [path], tmp_path / "out", Options(fmt="jsonl"))
    assert summary["status"] == "complete"
    assert summary["documents"] == sum(isinstance(item, Record) for item in whole)
    assert summary["records"] == len(whole) + 1 == summary["documents"] + summary["rejected"]
    assert summary["rejects_by_kind"] == {EMPTY_TEXT: 1, TRUNCATED: 1}  # the whole file's empty_text one
    (reject,) = [row for row in read_table(tmp_path / "out", "rejects", "jsonl") if row["kind"] == TRUNCATED]
    assert reject["record"] == f"record {len(whole) + 1}"
    assert f"after {len(whole)} complete records" in reject["reason"]
