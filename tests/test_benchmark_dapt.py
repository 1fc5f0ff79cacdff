"""The domain-adaptive pretraining benchmark's bookkeeping (benchmarks/scripts/dapt.py):
finished runs are reused, seeds are averaged, macro-F1 is the unweighted mean
over types. Training itself is the main project's `spacy train`, tested elsewhere."""

import argparse
import json
import statistics
from pathlib import Path
from typing import Dict, List

import pytest
from dapt import DEFAULT_CONFIG, DEV_SETS, TEST_SETS, main, markdown_table, named, run_identity

from spacy_bioner.evaluation import seqeval_scores

GOLD = [["B-Chemical", "O", "B-Disease", "I-Disease"], ["B-RNA", "O", "O", "B-protein"]]


def write_run(run_dir: Path, name: str, seed: int, pred: List[List[str]], encoder: str = "no/such/encoder",
              config: Path = DEFAULT_CONFIG) -> Dict[str, float]:
    """A finished run's metrics, as `spacy_bioner evaluate` writes them, and its
    identity; returns the seqeval scores."""
    metrics = run_dir / f"{name}-s{seed}" / "metrics"
    metrics.mkdir(parents=True)
    scores = seqeval_scores(GOLD, pred)
    for key in {**DEV_SETS, **TEST_SETS}:
        (metrics / f"{key}.json").write_text(json.dumps({"corpus": key, "seqeval": scores}), encoding="utf8")
    (metrics.parent / "run.json").write_text(json.dumps(run_identity(encoder, seed, config)), encoding="utf8")
    return scores


def test_finished_runs_are_reused_and_averaged(tmp_path: Path) -> None:
    run_dir, out = tmp_path / "runs", tmp_path / "dapt.json"
    perfect = write_run(run_dir, "base", 0, GOLD)
    worse = write_run(run_dir, "base", 1, [["B-Chemical", "O", "O", "O"], ["B-RNA", "O", "O", "O"]])
    ablation = write_run(run_dir, "tapt", 0, [["O", "O", "B-Disease", "I-Disease"], ["O"] * 4])
    main(["--encoder", "base=no/such/encoder", "--ablation", "tapt=no/such/encoder", "--seeds", "0", "1",
          "--run-dir", str(run_dir), "--out", str(out)])
    record = json.loads(out.read_text(encoding="utf8"))
    assert not list(run_dir.glob("*/train.log"))  # nothing was trained
    assert [(r["name"], r["seed"]) for r in record["runs"]] == [("base", 0), ("base", 1), ("tapt", 0)]
    base, tapt = record["summary"]
    assert base["seeds"] == [0, 1] and tapt["seeds"] == [0]
    assert base["f1"]["jnlpba"] == pytest.approx((perfect["f1"] + worse["f1"]) / 2, abs=1e-4)
    assert tapt["f1"]["bc5cdr-dev"] == pytest.approx(ablation["f1"], abs=1e-4)
    # Macro over types differs from micro when the types differ in support or score.
    macro = statistics.fmean(row["f1"] for row in worse["per_type"].values())
    assert record["runs"][1]["macro_f1"]["bc5cdr"] == pytest.approx(macro, abs=1e-4)
    assert macro != pytest.approx(worse["f1"], abs=1e-3)
    assert record["pretraining"] == {}
    table = markdown_table(record["runs"], record["summary"])
    assert "| tapt (`no/such/encoder`) | 0 |" in table and "| base (`no/such/encoder`) | mean of 0, 1 |" in table
    assert "tapt (`no/such/encoder`) | mean" not in table


def test_named_argument() -> None:
    assert named("a=encoder/x=y") == ("a", "encoder/x=y")
    with pytest.raises(argparse.ArgumentTypeError, match="NAME=ENCODER"):
        named("encoder/x")


def test_a_run_is_trained_again_when_its_encoder_was_pretrained_again(tmp_path: Path) -> None:
    encoder, config, run_dir = tmp_path / "adapted", tmp_path / "ner.cfg", tmp_path / "runs"
    encoder.mkdir()
    (encoder / "pretraining.json").write_text('{"steps": 300}', encoding="utf8")
    config.write_text("not a config: any training fails at once", encoding="utf8")
    write_run(run_dir, "adapted", 0, GOLD, encoder=str(encoder), config=config)
    args = ["--encoder", f"adapted={encoder}", "--seeds", "0", "--config", str(config), "--run-dir", str(run_dir)]
    main(args + ["--out", str(tmp_path / "first.json")])
    assert not (run_dir / "adapted-s0" / "train.log").exists()  # reused
    (encoder / "pretraining.json").write_text('{"steps": 600}', encoding="utf8")
    with pytest.raises(SystemExit, match="train.log"):
        main(args + ["--out", str(tmp_path / "second.json")])
    # Trained again (and failed): the old scores are gone, not reported as the new encoder's.
    assert (run_dir / "adapted-s0" / "train.log").exists()
    assert not (run_dir / "adapted-s0" / "metrics").exists() and not (run_dir / "adapted-s0" / "run.json").exists()
