"""The benchmark harness end to end on the CPU: every system, both corpora,
a few documents, the tiny random BERT. Runs the scripts as files, as the
benchmark project does (`python scripts/run.py`), so that their imports of
each other are tested too."""

import json
import math
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List

import pytest
import spacy
from spacy.tokens import DocBin
from abbreviation_settings import SETTINGS
from run import CORPORA, HEAD_LOSSES, head_type_overrides, markdown_table, parse_variant, spacy_config
from toy import ROOT

from spacy_bioner.corpora import gold_token_doc, load_docs
from spacy_bioner.evaluation import iob_tags, predict_references, seqeval_scores, unplaced_predictions

SCRIPTS = ROOT / "benchmarks" / "scripts"
REQUIRED_KEYS = {
    "system", "corpus", "test_p", "test_r", "test_f1", "test_macro_f1", "per_type_f1", "epochs", "train_seconds",
    "words_per_second", "peak_gpu_mb", "encoder", "device", "versions", "test_f1_strict", "test_mentions", "limit",
}
# A head flipped from the shipped CRF to softmax: both the model and its loss.
SOFTMAX = "softmax:components.HEAD.model.crf=false,components.HEAD.loss.@losses=spacy_bioner.ClassWeightedCrossentropy.v1"


def run_script(script: str, arguments: List[str], returncode: int = 0) -> str:
    command = [sys.executable, str(SCRIPTS / script), *arguments]
    result = subprocess.run(command, capture_output=True, text=True, cwd=SCRIPTS.parent, timeout=1800)
    assert result.returncode == returncode, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def run_harness(arguments: List[str], output_dir: Path, returncode: int = 0) -> List[Dict[str, Any]]:
    stdout = run_script("run.py", [*arguments, "--output-dir", str(output_dir)], returncode)
    [results] = list(output_dir.glob("*.json"))
    records = json.loads(results.read_text())
    assert markdown_table(records) in stdout
    # A spaCy system's training logs its progress (its progress bar is off without a terminal).
    if any(r["system"] != "hf_token_classification" and "error" not in r for r in records):
        assert re.search(r"^step 0 \(epoch 0\): [\d.,]+ s$", stdout, re.MULTILINE), stdout[-2000:]
    for record in records:  # how to run it again
        assert shlex.split(record["command"])[:2] == ["python", str(SCRIPTS / "run.py")]
        assert shlex.split(record["command"])[2:] == [*arguments, "--output-dir", str(output_dir)]
        assert Path(record["config"]).is_file() and Path(record["cwd"]) == SCRIPTS.parent
    return records


NO_ABBREVIATIONS = ("components.HEAD_abbreviations.spans_keys", [])


def test_variants_parse_registry_keys_and_json_values() -> None:
    assert parse_variant("no-abbr:components.HEAD_abbreviations.spans_keys=[]") == ("no-abbr", dict([NO_ABBREVIATIONS]))
    assert parse_variant(SOFTMAX) == ("softmax", head_type_overrides(False))
    assert head_type_overrides(True)["components.HEAD.loss.@losses"] == HEAD_LOSSES[True]
    assert parse_variant('feat:components.HEAD.model.features={"width": 64, "attrs": ["NORM", "SHAPE"]},x.y=8') == (
        "feat", {"components.HEAD.model.features": {"width": 64, "attrs": ["NORM", "SHAPE"]}, "x.y": 8}
    )


def test_a_variant_s_system_seed_reaches_the_training_seed(tmp_path: Path) -> None:
    """Overrides were set after the config was interpolated: `system.seed=3` changed [system] and
    not the training.seed = ${system.seed} that spaCy reads, and the variant trained on seed 0."""
    config = spacy_config("spacy_bioner", tmp_path, "bc5cdr", "encoder", 5, 130, {"system.seed": 3}, 0)
    assert config["training"]["seed"] == 3
    config = spacy_config("spacy_bioner", tmp_path, "bc5cdr", "encoder", 5, 130,
                          {"system.seed": 3, "training.seed": 4}, 0)
    assert config["training"]["seed"] == 4
    config = spacy_config("spacy_bioner", tmp_path, "bc5cdr", "encoder", 5, 130, {"training.max_epochs": 7}, 0)
    assert config["training"]["max_epochs"] == 7  # the others still win over the cut


@pytest.mark.parametrize("system", ["spacy_bioner", "spacy_transition_ner"])
def test_spacy_training_is_timed_without_dev_evaluation(system: str, tmp_path: Path) -> None:
    """spaCy scores the dev corpus at step 0 (with the frequency at the total, then never
    again): one document, as the HF recipe's clock holds no evaluation; the training data
    stays whole."""
    config = spacy_config(system, tmp_path, "bc5cdr", "encoder", 5, 130, {}, 0)
    assert config["corpora"]["dev"]["limit"] == 1 and config["corpora"]["train"]["limit"] == 0
    assert config["training"]["eval_frequency"] == 5 * 130


@pytest.mark.parametrize("head,other", [("jnlpba", "bc5cdr"), ("bc5cdr", "jnlpba")])
def test_one_head_keeps_the_components_after_the_heads(head: str, other: str, tmp_path: Path) -> None:
    """spacy_bioner is benchmarked as shipped, abbreviation consistency included;
    spaCy's `ner` alone on the transformer, as spaCy ships it."""
    bioner = spacy_config("spacy_bioner", tmp_path, head, "encoder", 5, 130, {}, 0)
    assert bioner["nlp"]["pipeline"] == ["transformer", head, f"{head}_abbreviations"]
    assert bioner["components"][f"{head}_abbreviations"]["spans_keys"] == [head]
    assert other not in bioner["components"] and f"{other}_abbreviations" not in bioner["components"]
    ner = spacy_config("spacy_transition_ner", tmp_path, head, "encoder", 5, 130, {}, 0)
    assert ner["nlp"]["pipeline"] == ["transformer", head]
    assert set(ner["components"]) == {"transformer", head}
    off = spacy_config("spacy_bioner", tmp_path, head, "encoder", 5, 130, dict([NO_ABBREVIATIONS]), 0)
    assert off["components"][f"{head}_abbreviations"]["spans_keys"] == []


def test_a_second_run_under_the_same_name_keeps_the_first_ones_records(
    corpus_root: Path, tiny_bert: Path, tmp_path: Path
) -> None:
    """The results file was rewritten whole by a run of the same --tag on the same day."""
    arguments = ["--epochs", "1", "--limit", "3", "--encoder", str(tiny_bert), "--corpus-root", str(corpus_root),
                 "--corpus", "bc5cdr", "--only-variants", "--no-measure-speed",
                 "--variant", "broken:components.HEAD.tag_scheme=BIOES", "--output-dir", str(tmp_path)]
    for run in (1, 2):
        stdout = run_script("run.py", arguments, returncode=1)
        [results] = tmp_path.glob("*.json")
        assert len(json.loads(results.read_text())) == run
    assert "the 1 records of an earlier run are kept" in stdout


@pytest.mark.slow
def test_a_variant_trained_on_its_own_tokens_is_tested_on_them(
    toy_corpus_root: Path, tiny_bert: Path, tmp_path: Path
) -> None:
    """The toy corpus's gold tokens are not the pipeline's, and scores differ between them."""
    own = "own:corpora.train.gold_tokens=false,corpora.dev.gold_tokens=false"
    arguments = ["--epochs", "30", "--encoder", str(tiny_bert), "--corpus-root", str(toy_corpus_root),
                 "--corpus", "jnlpba", "--only-variants", "--variant", own, "--no-measure-speed",
                 "--save-pipelines", str(tmp_path / "pipelines")]
    [record] = run_harness(arguments, tmp_path / "results")
    assert record["tokens"] == "pipeline"
    nlp = spacy.load(tmp_path / "pipelines" / "jnlpba-own")
    test_docs = load_docs(toy_corpus_root / "jnlpba" / "test.spacy", nlp.vocab)
    gold = iob_tags(test_docs, "jnlpba")
    own, on_gold_tokens = (list(predict_references(nlp, test_docs, gold_tokens=on_gold)) for on_gold in (False, True))
    own_f1 = seqeval_scores(gold, iob_tags(own, "jnlpba"), unplaced_predictions(own, "jnlpba"))["f1"]
    gold_tokens_f1 = seqeval_scores(gold, iob_tags(on_gold_tokens, "jnlpba"))["f1"]
    assert record["test_f1"] == own_f1 > 0
    assert own_f1 != gold_tokens_f1


@pytest.mark.slow
def test_harness_runs_every_system_on_both_corpora(corpus_root: Path, tiny_bert: Path, tmp_path: Path) -> None:
    arguments = ["--epochs", "1", "--limit", "3", "--encoder", str(tiny_bert), "--corpus-root", str(corpus_root)]
    records = run_harness([*arguments, "--variant", SOFTMAX], tmp_path)
    assert [(r["system"], r["variant"], r["corpus"]) for r in records] == [
        (system, variant, corpus)
        for corpus in ("jnlpba", "bc5cdr")
        for system, variant in (
            ("spacy_bioner", "default"),
            ("hf_token_classification", "default"),
            ("spacy_transition_ner", "default"),
            ("spacy_bioner", "softmax"),
        )
    ]
    for record in records:
        assert REQUIRED_KEYS <= set(record)
        p, r, f1 = record["test_p"], record["test_r"], record["test_f1"]
        assert f1 == pytest.approx(2 * p * r / (p + r) if p + r else 0.0)
        per_type = record["per_type_f1"].values()
        assert record["test_macro_f1"] == pytest.approx(sum(per_type) / len(per_type) if per_type else 0.0)
        assert set(record["words_per_second"]) == {"32", "128"}
        assert record["encoder"] == tiny_bert.name
        assert record["epochs"] == 1 and record["limit"] == 3
        folder, key = CORPORA[record["corpus"]]
        test_docs = load_docs(corpus_root / folder / "test.spacy", spacy.blank("en").vocab)
        assert record["test_mentions"] == sum(len(doc.spans[key]) for doc in test_docs) > 0
        if record["system"] != "hf_token_classification":  # spans make valid IOB2: both modes agree
            assert record["test_f1_strict"] == record["test_f1"]
            assert record["tokens"] == "gold"  # trained and tested on the corpus's tokens, as HF's recipe is
        assert 0 <= record["dev_f1"] <= 1  # the HF recipe's too: its rate is chosen on it (--hf-learn-rate)
        assert record.get("learn_rate", 5e-5) == 5e-5
        # The seconds at each epoch's end, the last the whole training's.
        assert len(record["epoch_seconds"]) == record["epochs"]
        assert record["epoch_seconds"][-1] <= record["train_seconds"] + 1e-3  # both rounded to the ms
        # spaCy's `ner` is scored again with the abbreviation step the corpus's head ships with.
        assert ("abbreviation_step" in record) == (record["system"] == "spacy_transition_ner")
        if "abbreviation_step" in record:
            step = record["abbreviation_step"]
            assert {"dev_f1", "test_f1", "test_macro_f1", "test_mentions"} <= set(step)
            assert step["test_mentions"] == record["test_mentions"]
            assert step["settings"]["remove_unsupported"] == (record["corpus"] == "bc5cdr")
    assert records[-1]["overrides"] == head_type_overrides(False)


@pytest.mark.slow
def test_ablations_alone_without_speed_runs(corpus_root: Path, tiny_bert: Path, tmp_path: Path) -> None:
    arguments = ["--epochs", "2", "--limit", "3", "--encoder", str(tiny_bert), "--corpus-root", str(corpus_root)]
    arguments += ["--corpus", "bc5cdr", "--only-variants", "--no-measure-speed"]
    # The GPU plan's class-weighting rows: a scheme, under the cost-augmented loss.
    cost = "cost-welt:components.HEAD.loss.@losses=spacy_bioner.CostAugmentedCRFLoss.v1,components.HEAD.loss.scheme=welt"
    arguments += ["--variant", cost, "--variant", "big:training.batcher.size=8000"]
    # A run that fails is recorded with its error, the next ones still run, and the script then exits 1.
    arguments += ["--variant", "broken:components.HEAD.tag_scheme=BIOES"]
    arguments += ["--variant", "biluo:components.HEAD.tag_scheme=BILUO", "--save-pipelines", str(tmp_path / "saved")]
    # Every system's seed; a variant's own wins, as training.seed or as system.seed (which was ignored).
    arguments += ["--seed", "3", "--variant", "seed5:training.seed=5", "--variant", "sys7:system.seed=7"]
    records = run_harness(arguments, tmp_path, returncode=1)
    assert [(r["variant"], r["overrides"]) for r in records] == [
        ("cost-welt", {"components.HEAD.loss.@losses": "spacy_bioner.CostAugmentedCRFLoss.v1",
                       "components.HEAD.loss.scheme": "welt"}),
        ("big", {"training.batcher.size": 8000}),
        ("broken", {"components.HEAD.tag_scheme": "BIOES"}),
        ("biluo", {"components.HEAD.tag_scheme": "BILUO"}),
        ("seed5", {"training.seed": 5}),
        ("sys7", {"system.seed": 7}),
    ]
    assert [r["seed"] for r in records] == [3, 3, 3, 3, 5, 7]  # the broken one's, the command line's
    broken = records.pop(2)
    assert "BIOES" in broken["error"] and "Traceback" in broken["traceback"]
    assert all(r["system"] == "spacy_bioner" and r["words_per_second"] == {} for r in records)
    # When the second epoch began (its first update), then the whole training.
    assert all(len(r["epoch_seconds"]) == 2 and 0 < r["epoch_seconds"][0] < r["epoch_seconds"][1] for r in records)
    assert sorted(path.name for path in (tmp_path / "saved").iterdir()) == [
        "bc5cdr-big", "bc5cdr-biluo", "bc5cdr-cost-welt", "bc5cdr-seed5", "bc5cdr-sys7"]
    assert spacy.load(tmp_path / "saved" / "bc5cdr-seed5").config["training"]["seed"] == 5
    assert spacy.load(tmp_path / "saved" / "bc5cdr-sys7").config["training"]["seed"] == 7
    cost_head = spacy.load(tmp_path / "saved" / "bc5cdr-cost-welt").get_pipe("bc5cdr")
    assert type(cost_head.loss).__name__ == "CostAugmentedCRFLoss" and cost_head.loss.scheme == "welt"
    saved = spacy.load(tmp_path / "saved" / "bc5cdr-biluo")
    assert saved.config["training"]["seed"] == 3
    # The harness's progress callback, registered by run.py only, is not left in the saved config.
    assert saved.config["training"]["before_update"] is None
    assert saved.get_pipe("bc5cdr").tag_scheme == "BILUO"
    assert saved.get_pipe("bc5cdr").loss.scheme == "none"


def test_step_overhead_steps_learn_as_spacy_s_loop_does(corpus_root: Path, tiny_bert: Path) -> None:
    """Its steps never called the optimizer's schedules: the warm-up's learning rate stayed 0, the
    weights never changed, and the words/s were those of a pipeline that predicts nothing."""
    from step_overhead import training_setup

    nlp, batches, step = training_setup(corpus_root / "jnlpba", tiny_bert, True, 300, 3)
    before = nlp.get_pipe("jnlpba").model.to_bytes()
    for batch in batches:
        step(batch)
    assert nlp.get_pipe("jnlpba").model.to_bytes() != before


@pytest.mark.slow
def test_step_overhead_times_both_heads(corpus_root: Path, tiny_bert: Path, tmp_path: Path) -> None:
    output = tmp_path / "overhead.json"
    run_script("step_overhead.py", [
        "--corpus-root", str(corpus_root), "--tokenizer", str(tiny_bert), "--batch-words", "300", "--steps", "1",
        "--infer-docs", "2", "--output", str(output),
    ])
    records = json.loads(output.read_text())
    assert [r["crf"] for r in records] == [True, False]
    for record in records:
        assert record["steps"] == 1
        assert 0 < record["words_per_step"] <= 300
        assert set(record["words_per_second"]) == {"32", "128"} and record["entities_predicted"] >= 0
        timings = [record[f"{kind}_per_step_{label}"] for kind in ("ms", "median_ms") for label in ("first_sight", "repeat")]
        assert all(isinstance(value, float) and math.isfinite(value) for value in timings)


# What the base tree's copies of two package files gain at their end, where
# no edit of the files moves an anchor: forward_backward, and CRFLoss.__call__
# through a method of the base class alone, note each call in a file, and run
# the copies' own code.
NOTE_CALL = """


def _note(label):
    with open({calls!r}, "a") as calls:
        calls.write(label + "\\n")
"""
BASE_ADDITIONS = {
    Path("layers") / "crf.py": """
_unnoted_forward_backward = forward_backward


def forward_backward(*args, **kwargs):
    _note("forward_backward")
    return _unnoted_forward_backward(*args, **kwargs)
""",
    Path("losses.py"): """
_unnoted_call = CRFLoss.__call__


def _note_call(self):
    _note("CRFLoss")


def _noting_call(self, scores, truths):
    self._note_call()
    return _unnoted_call(self, scores, truths)


CRFLoss._note_call = _note_call
CRFLoss.__call__ = _noting_call
""",
}


@pytest.mark.slow
def test_step_ab_alternates_the_base_trees_versions_with_the_working_ones(
    corpus_root: Path, tiny_bert: Path, tmp_path: Path
) -> None:
    """The base tree is the working one with the CRF's forward_backward and
    the CRF loss's __call__ each noting their calls in a file: on the base
    side both are called, the function also from the base class's method."""
    base_tree, calls = tmp_path / "base", tmp_path / "base-calls"
    for module, addition in BASE_ADDITIONS.items():
        source = (ROOT / "spacy_bioner" / module).read_text() + NOTE_CALL.format(calls=str(calls)) + addition
        (base_tree / "spacy_bioner" / module).parent.mkdir(parents=True, exist_ok=True)
        (base_tree / "spacy_bioner" / module).write_text(source)
    output = tmp_path / "ab.json"
    run_script("step_ab.py", [
        str(base_tree), "--swap", "spacy_bioner.layers.crf:forward_backward", "--swap", "spacy_bioner.losses:CRFLoss",
        "--corpus-root", str(corpus_root), "--tokenizer", str(tiny_bert), "--batch-words", "300", "--batches", "2",
        "--rounds", "2", "--output", str(output),
    ])
    record = json.loads(output.read_text())
    assert (record["batches"], record["rounds"]) == (2, 2)
    # Each batch is timed once a side: two base steps, each one loss and one forward-backward.
    assert sorted(calls.read_text().split()) == ["CRFLoss"] * 2 + ["forward_backward"] * 2
    assert set(record["ms_inside"]["spacy_bioner.layers.crf:forward_backward"]["forward_backward"]) == {"base", "working"}
    assert "CRFLoss.__call__" in record["ms_inside"]["spacy_bioner.losses:CRFLoss"]
    assert set(record["paired_difference_ms"]) == {"mean", "standard_error", "median"}


@pytest.mark.slow
def test_abbreviation_settings_on_a_saved_pipeline(tiny_pipeline: Path, toy_corpus_root: Path, tmp_path: Path) -> None:
    """Every setting on every split; "none" scores the head alone (on the toy corpus it learnt, where it
    scores above 0)."""
    arguments = [str(tiny_pipeline), "--corpus", "bc5cdr", "--corpus-root", str(toy_corpus_root)]
    run_script("abbreviation_settings.py", [*arguments, "--split", "dev", "--split", "test", "--output-dir", str(tmp_path)])
    [results] = list(tmp_path.glob("*-abbreviations.json"))
    records = json.loads(results.read_text())
    assert [(r["split"], r["setting"]) for r in records] == [(s, name) for s in ("dev", "test") for name in SETTINGS]
    nlp = spacy.load(tiny_pipeline)
    docs = list(DocBin().from_disk(toy_corpus_root / "bc5cdr-iob" / "test.spacy").get_docs(nlp.vocab))
    predicted = nlp.pipe(gold_token_doc(nlp.vocab, doc) for doc in docs)
    gold, pred = iob_tags(docs, "bc5cdr"), iob_tags(predicted, "bc5cdr")
    alone = next(r for r in records if (r["split"], r["setting"]) == ("test", "none"))
    expected = seqeval_scores(gold, pred)["f1"]
    assert expected > 0 and alone["f1"] == pytest.approx(expected)


@pytest.mark.slow
def test_abbreviation_settings_on_doc_ents_of_a_pipeline_without_the_head(corpus_root: Path, tmp_path: Path) -> None:
    """A pipeline whose entities come from another component (a real entity ruler, as a
    stand-in for spaCy's `ner`) is scored on doc.ents, which each setting corrects."""
    nlp = spacy.blank("en")
    docs = list(DocBin().from_disk(corpus_root / "bc5cdr-iob" / "test.spacy").get_docs(nlp.vocab))
    ruler = nlp.add_pipe("entity_ruler", config={"phrase_matcher_attr": "ORTH"})
    ruler.add_patterns([{"label": span.label_, "pattern": span.text} for doc in docs[:1] for span in doc.spans["bc5cdr"]])
    nlp.to_disk(tmp_path / "ruler")
    arguments = [str(tmp_path / "ruler"), "--corpus", "bc5cdr", "--corpus-root", str(corpus_root), "--split", "test"]
    run_script("abbreviation_settings.py", [*arguments, "--output-dir", str(tmp_path)])
    [results] = list(tmp_path.glob("*-abbreviations.json"))
    records = {r["setting"]: r for r in json.loads(results.read_text())}
    assert list(records) == list(SETTINGS) and {r["scored"] for r in records.values()} == {"doc.ents"}
    predicted = list(nlp.pipe(gold_token_doc(nlp.vocab, doc) for doc in docs))
    gold = iob_tags(docs, "bc5cdr")
    assert records["none"]["f1"] > 0
    assert records["none"]["f1"] == pytest.approx(seqeval_scores(gold, iob_tags(predicted, None))["f1"])
    component = nlp.add_pipe("bio_ner_abbreviations", config={"spans_keys": [], "correct_ents": True})
    corrected = [component(doc) for doc in predicted]
    assert records["all"]["f1"] == pytest.approx(seqeval_scores(gold, iob_tags(corrected, None))["f1"])


@pytest.mark.slow
def test_span_scores_record_each_setting_with_the_same_entities(tiny_pipeline: Path, corpus_root: Path, tmp_path: Path) -> None:
    run_script("span_scores.py", [str(tiny_pipeline), "--corpus-root", str(corpus_root), "--output-dir", str(tmp_path)])
    [results] = list(tmp_path.glob("*-span-scores.json"))
    records = json.loads(results.read_text())
    assert [(r["corpus"], r["span_scores"]) for r in records] == [
        (corpus, setting) for corpus in ("jnlpba", "bc5cdr") for setting in ("segment", "token_mean")
    ]
    for segment, token_mean in zip(records[::2], records[1::2]):
        assert segment["entities"] == token_mean["entities"] > 0
        assert segment["precision"] == token_mean["precision"] and segment["head_f1"] == token_mean["head_f1"]
        # An entity's probability is at most any of its tokens'.
        assert segment["mean_score"] <= token_mean["mean_score"] + 1e-6


@pytest.mark.slow
def test_sentence_rules_record_each_source(tmp_path: Path) -> None:
    stdout = run_script("sentence_rules.py", ["--limit", "4", "--show", "2", "--output-dir", str(tmp_path)])
    [results] = list(tmp_path.glob("*-sentence-rules.json"))
    sources = json.loads(results.read_text())["sources"]
    assert [s["source"] for s in sources] == [
        "bc5cdr-iob train", "bc5cdr-iob devel", "bc5cdr-iob test", "jnlpba train", "jnlpba test", "pretraining text"
    ]
    for source in sources:
        assert source["documents"] == 4
        # Abstracts of several sentences each; the rules find nearly all their starts.
        assert source["reference_starts"] > 4 * source["documents"] > 4 * source["missed"]
        for kind in ("missed", "extra"):
            assert len(source["examples"][kind]) == min(2, source[kind])
            assert all(" || " in example for example in source["examples"][kind])
        assert f"{source['source']}: {source['reference_starts']:,} starts" in stdout


@pytest.mark.slow
def test_long_document_record(tiny_pipeline: Path, corpus_root: Path, tmp_path: Path) -> None:
    output = tmp_path / "long.json"
    run_script("long_document.py", [
        str(tiny_pipeline), "--chars", "3000", "--corpus-root", str(corpus_root), "--output", str(output),
    ])
    record = json.loads(output.read_text())
    assert record["chars"] == 3000
    assert record["tokens"] > 300
    assert record["peak_rss_gb"] >= record["loaded_rss_gb"] > 0


def test_records_name_the_revision_of_the_sources_they_measured(tmp_path, monkeypatch):
    """None of the harness's records named the commit it ran; on the GPU machine, a copy of the
    tree without git, the sources' stamp stands in for it."""
    import shutil

    import run

    head = subprocess.run(["git", "-C", str(run.REPO), "rev-parse", "--short=12", "HEAD"], capture_output=True,
                          text=True, timeout=60)
    if head.returncode == 0:  # a checkout (a copy of the tree without .git is the half below)
        assert re.fullmatch(re.escape(head.stdout.strip()) + r"(\+modified)?", run.versions()["spacy-bioner-source"])
    copy = tmp_path / "tree"
    shutil.copytree(run.REPO / "spacy_bioner", copy / "spacy_bioner", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("setup.py", "scripts/package_stamp.sh"):
        (copy / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(run.REPO / name, copy / name)
    monkeypatch.setattr(run, "REPO", copy)
    stamp = subprocess.run(["bash", "-c", f'source "{copy}/scripts/package_stamp.sh"; package_stamp "{copy}"'],
                           capture_output=True, text=True, check=True).stdout.strip()
    assert run.source_revision() == f"sources {stamp}" and len(stamp) == 40
