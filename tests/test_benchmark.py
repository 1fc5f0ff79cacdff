"""The benchmark harness end to end on the CPU: every system, both corpora,
a few documents, a tiny random BERT. Keeps `python -m benchmarks.run` working."""

import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List

import pytest

from spacy_bioner.conversion import write_docbin
from spacy_bioner.readers import read_iob, read_jnlpba
from spacy_bioner.tokenizer import make_bio_nlp
from toy import make_tiny_bert

ROOT = Path(__file__).resolve().parent.parent
ASSETS = ROOT / "assets"
REQUIRED_KEYS = {
    "system", "corpus", "test_p", "test_r", "test_f1", "per_type_f1", "epochs", "train_seconds",
    "words_per_second", "peak_gpu_mb", "encoder", "device", "versions",
}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """Three documents per split of both corpora, and a tiny BERT that knows their words."""
    root = tmp_path_factory.mktemp("benchmark")
    vocab = make_bio_nlp().vocab
    jnlpba, _ = read_jnlpba(ASSETS / "jnlpba" / "Genia4EReval2.iob2.gz", vocab)
    bc5cdr, _ = read_iob(ASSETS / "bc5cdr" / "iob" / "test.tsv.gz", vocab, n_sents=10, spans_key="bc5cdr")
    for name, docs in (("jnlpba", jnlpba), ("bc5cdr-iob", bc5cdr)):
        for i, split in enumerate(("train", "dev", "test")):
            write_docbin(docs[3 * i : 3 * i + 3], root / "corpus" / name / f"{split}.spacy")
    words = sorted({t.text for doc in jnlpba[:9] + bc5cdr[:9] for t in doc})
    encoder = make_tiny_bert(root / "tiny-bert", extra_words=words)
    return ["--epochs", "1", "--limit", "3", "--encoder", str(encoder), "--corpus-root", str(root / "corpus")]


def run_harness(arguments: List[str], output_dir: Path) -> List[Dict[str, Any]]:
    command = [sys.executable, "-m", "benchmarks.run", *arguments, "--output-dir", str(output_dir)]
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    [results] = list(output_dir.glob("*.json"))
    records = json.loads(results.read_text())
    table = results.with_suffix(".md").read_text()
    assert table.count("\n") == len(records) + 2
    return records


def test_harness_runs_every_system_on_both_corpora(inputs, tmp_path):
    records = run_harness([*inputs, "--variant", "crf:components.HEAD.model.crf=true"], tmp_path)
    assert [(r["system"], r["variant"], r["corpus"]) for r in records] == [
        (system, variant, corpus)
        for corpus in ("jnlpba", "bc5cdr")
        for system, variant in (
            ("spacy_bioner", "default"),
            ("hf_token_classification", "default"),
            ("spacy_transition_ner", "default"),
            ("spacy_bioner", "crf"),
        )
    ]
    for record in records:
        assert REQUIRED_KEYS <= set(record)
        assert 0.0 <= record["test_f1"] <= 1.0
        assert set(record["words_per_second"]) == {"32", "128"}
        assert all(v > 0 for v in record["words_per_second"].values())
        assert record["encoder"] == "tiny-bert"
        assert record["epochs"] == 1 and record["train_seconds"] > 0
        if record["system"] != "hf_token_classification":
            assert 0.0 <= record["dev_f1"] <= 1.0
    assert records[-1]["overrides"] == {"components.HEAD.model.crf": True}


def test_ablations_alone_without_speed_runs(inputs, tmp_path):
    arguments = [*inputs, "--corpus", "bc5cdr", "--only-variants", "--no-measure-speed"]
    arguments += ["--variant", "welt:components.HEAD.loss.scheme=welt", "--variant", "big:training.batcher.size=8000"]
    records = run_harness(arguments, tmp_path)
    assert [(r["variant"], r["overrides"]) for r in records] == [
        ("welt", {"components.HEAD.loss.scheme": "welt"}),
        ("big", {"training.batcher.size": 8000}),
    ]
    assert all(r["system"] == "spacy_bioner" and r["words_per_second"] == {} for r in records)


def test_step_overhead_times_both_heads(inputs, tmp_path):
    corpus_root = inputs[inputs.index("--corpus-root") + 1]
    encoder = inputs[inputs.index("--encoder") + 1]
    output = tmp_path / "overhead.json"
    command = [
        sys.executable, "-m", "benchmarks.step_overhead", "--corpus-root", corpus_root, "--tokenizer", encoder,
        "--batch-words", "300", "--steps", "1", "--infer-docs", "2", "--output", str(output),
    ]
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    records = json.loads(output.read_text())
    assert [r["crf"] for r in records] == [True, False]
    for record in records:
        assert record["ms_per_step_first_sight"] > 0 and record["ms_per_step_repeat"] > 0
        assert 0 < record["words_per_step"] <= 300
        assert set(record["words_per_second"]) == {"32", "128"}
