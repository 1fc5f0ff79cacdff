"""`export-tasks`: an annotate run's entities as tasks for Label Studio, Prodigy and doccano, and back.

The round trip is what a user does: annotate, export the tasks, correct them
in the tool (here: every prediction accepted, as the tool exports it), convert
the tool's export, and get the run's entities as training data."""

import json
import re
from pathlib import Path
from typing import Dict, List, Sequence, Set, Tuple

import pytest
from spacy.tokens import DocBin
from spacy.vocab import Vocab
from toy import PUBMED_BASELINE, PUBMED_UPDATE, assert_help_explains_every_option
from typer.testing import CliRunner

from spacy_bioner.annotate import Options, annotate, read_table
from spacy_bioner.annotate.tasks import TasksError, export_tasks
from spacy_bioner.annotation import is_annotated
from spacy_bioner.cli import app

runner = CliRunner()
Entity = Tuple[int, int, str]


@pytest.fixture(scope="module")
def run_dir(tiny_pipeline: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny pipeline's run over the two PubMed samples (one record of the update file is rejected)."""
    output = tmp_path_factory.mktemp("run") / "out"
    annotate(str(tiny_pipeline), [PUBMED_BASELINE, PUBMED_UPDATE], output, Options(shard_size=16, fmt="jsonl"))
    return output


def run_entities(run_dir: Path, spans_key=None) -> Dict[str, Set[Entity]]:
    """Each annotated document's entities in the run's tables: doc.ents, or one head's spans."""
    documents = {row["doc_id"]: set() for row in read_table(run_dir, "documents", "jsonl")
                 if row["status"] == "annotated"}
    for row in read_table(run_dir, "entities", "jsonl"):
        if (row["in_ents"] if spans_key is None else row["spans_key"] == spans_key):
            documents[row["doc_id"]].add((row["start_char"], row["end_char"], row["label"]))
    return documents


def converted_entities(path: Path, heads: Sequence[str] = ()) -> Dict[str, Set[Entity]]:
    """Each converted document's entities, checked to be gold for each of `heads`."""
    docs = list(DocBin().from_disk(path).get_docs(Vocab()))
    assert all(is_annotated(doc, head) for doc in docs for head in heads)
    return {doc.user_data["pmid"]: {(e.start_char, e.end_char, e.label_) for e in doc.ents} for doc in docs}


def convert(fmt: str, src: Path, out: Path, *args: str, heads: Sequence[str] = ()) -> Dict[str, Set[Entity]]:
    result = runner.invoke(app, ["convert", fmt, str(src), str(out), *args])
    assert result.exit_code == 0, result.output
    return converted_entities(out, heads)


def test_label_studio_tasks_round_trip(run_dir: Path, tmp_path: Path) -> None:
    """Tasks with the run's doc.ents as predictions; once accepted as annotations and exported by Label
    Studio (which gives each task an id), `convert label-studio --id-key doc_id --ents-only`, as the command
    says next, gives them back exactly, in doc.ents alone: gold for both heads of the pipeline."""
    tasks_path = tmp_path / "tasks.json"
    result = runner.invoke(app, ["export-tasks", str(run_dir), str(tasks_path), "--tool", "label-studio",
                                 "--config", str(tmp_path / "config.xml")])
    assert result.exit_code == 0, result.output
    expected = run_entities(run_dir)
    assert sum(map(len, expected.values())) > 20  # the tiny pipeline finds entities: the test tests something
    tasks = json.loads(tasks_path.read_text(encoding="utf8"))
    assert f"Wrote {tasks_path}: {len(tasks)} tasks with" in result.stdout
    assert "(1 rejected record left out)" in result.stdout
    assert "convert label-studio EXPORT.json OUT.spacy --id-key doc_id --ents-only" in result.stdout
    assert [task["data"]["doc_id"] for task in tasks] == list(expected)
    for task in tasks:
        (prediction,) = task["predictions"]
        scores = [region["score"] for region in prediction["result"]]
        assert prediction.get("score") == (min(scores) if scores else None)
        for region in prediction["result"]:
            value = region["value"]
            assert (region["from_name"], region["to_name"], region["type"]) == ("label", "text", "labels")
            assert task["data"]["text"][value["start"]:value["end"]] == value["text"]
    config = (tmp_path / "config.xml").read_text(encoding="utf8")
    labels = {label for entities in expected.values() for _, _, label in entities}
    assert all(f'<Label value="{label}"/>' in config for label in labels)
    # The pipeline's heads' labels (its meta.json), none of its other components'.
    meta = json.loads((Path(json.loads((run_dir / "run.json").read_text())["model"]["model"]) / "meta.json").read_text())
    heads = {label for name in ("jnlpba", "bc5cdr") for label in meta["labels"][name]}
    assert set(re.findall(r'<Label value="([^"]+)"/>', config)) == heads
    assert '<Text name="text" value="$text"/>' in config
    # Label Studio's export once every prediction is accepted as the annotation.
    exported = [{"id": 1000 + number, "data": task["data"], "predictions": [],
                 "annotations": [{"id": number, "result": task["predictions"][0]["result"], "was_cancelled": False,
                                  "ground_truth": False, "updated_at": "2026-12-07T10:00:00Z"}]}
                for number, task in enumerate(tasks)]
    (tmp_path / "export.json").write_text(json.dumps(exported), encoding="utf8")
    assert convert("label-studio", tmp_path / "export.json", tmp_path / "ls.spacy", "--id-key", "doc_id",
                   "--ents-only", heads=("jnlpba", "bc5cdr")) == expected
    # Without --id-key, the documents take Label Studio's task ids, and the command says how to keep the run's.
    result = runner.invoke(app, ["convert", "label-studio", str(tmp_path / "export.json"), str(tmp_path / "x.spacy")])
    assert f"{len(tasks)} tasks have the document id that export-tasks writes in their data, but the documents take " \
           "Label Studio's task ids: --id-key doc_id takes those" in result.stderr
    assert sorted(converted_entities(tmp_path / "x.spacy")) == sorted(str(task["id"]) for task in exported)


def test_prodigy_and_doccano_tasks_round_trip(run_dir: Path, tmp_path: Path) -> None:
    """Prodigy's db-out (the task with its answer) and doccano's export (the task with its id) of the
    tasks convert back to the run's entities, one head's with --spans-key, under its key."""
    expected = run_entities(run_dir, "jnlpba")
    assert any(expected.values()) and expected != run_entities(run_dir)
    for tool in ("prodigy", "doccano"):
        tasks = tmp_path / f"{tool}.jsonl"
        exported = export_tasks(run_dir, tasks, tool, spans_key="jnlpba")
        assert exported.tasks == len(expected) and exported.rejected == 1
        assert sum(exported.entities.values()) == sum(map(len, expected.values()))
        records = [json.loads(line) for line in tasks.read_text(encoding="utf8").splitlines()]
        if tool == "prodigy":
            records = [{**record, "answer": "accept", "_view_id": "ner_manual"} for record in records]
            args: List[str] = ["--spans-key", "jnlpba"]
        else:
            args = ["--entities-key", "label", "--spans-key", "jnlpba"]
        (tmp_path / f"{tool}-export.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf8")
        assert convert("jsonl", tmp_path / f"{tool}-export.jsonl", tmp_path / f"{tool}.spacy", *args,
                       heads=("jnlpba",)) == expected


def test_what_cannot_be_exported_is_refused(run_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(TasksError, match=r"--spans-key 'genes': the run's pipeline has no head of that key "
                                         r"\(its heads: jnlpba, bc5cdr\)"):
        export_tasks(run_dir, tmp_path / "t.json", "label-studio", spans_key="genes")
    (tmp_path / "not-a-run").mkdir()
    result = runner.invoke(app, ["export-tasks", str(tmp_path / "not-a-run"), str(tmp_path / "t.json"), "--tool",
                                 "doccano"])
    assert result.exit_code == 1 and f"{tmp_path / 'not-a-run'} holds no annotation run (no run.json)" in result.stderr
    result = runner.invoke(app, ["export-tasks", str(run_dir), str(tmp_path / "t.jsonl"), "--tool", "prodigy",
                                 "--to-name", "abstract"])
    assert result.exit_code == 1 and "--to-name: for --tool label-studio only, not prodigy" in result.stderr
    # Into the run (its tables' folders are read whole: a file there breaks them for every reader).
    for inside in (run_dir / "t.jsonl", run_dir / "entities" / "t.jsonl"):
        result = runner.invoke(app, ["export-tasks", str(run_dir), str(inside), "--tool", "doccano"])
        assert result.exit_code == 1 and "OUTPUT is in RUN_DIR, which export-tasks reads" in result.stderr
        assert not inside.exists()
    assert not (tmp_path / "t.json").exists() and not (tmp_path / "t.jsonl").exists()


def test_the_tasks_and_the_config_are_written_together_into_new_folders(run_dir: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["export-tasks", str(run_dir), str(tmp_path / "a" / "t.json"), "--tool",
                                 "label-studio", "--config", str(tmp_path / "b" / "c.xml")])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "a" / "t.json").read_text()) and "<Labels" in (tmp_path / "b" / "c.xml").read_text()
    result = runner.invoke(app, ["export-tasks", str(run_dir), str(tmp_path / "same.json"), "--tool", "label-studio",
                                 "--config", str(tmp_path / "." / "same.json")])
    assert result.exit_code == 1 and "--config must differ from OUTPUT" in result.stderr
    assert not (tmp_path / "same.json").exists()


def test_an_unfinished_run_is_exported_with_a_warning(tiny_pipeline: Path, tmp_path: Path) -> None:
    output = tmp_path / "out"
    annotate(str(tiny_pipeline), [PUBMED_BASELINE], output, Options(shard_size=8, fmt="jsonl"), stop_after_shards=2)
    result = runner.invoke(app, ["export-tasks", str(output), str(tmp_path / "t.jsonl"), "--tool", "doccano"])
    assert result.exit_code == 0, result.output
    assert "has not finished" in result.stderr and "Wrote" in result.stdout
    assert len((tmp_path / "t.jsonl").read_text().splitlines()) == 16


def test_export_tasks_help_explains_every_option() -> None:
    assert_help_explains_every_option(app, "export-tasks")
