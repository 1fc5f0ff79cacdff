"""The step profiler on the CPU: the tiny random BERT, three BC5CDR documents,
real training steps (no mocks). The phases must account for the split step,
the plain pass's words/s must agree with its ms/step, and the encoder hooks
must be gone after the split pass."""

import json
from pathlib import Path

import pytest
import step_profile
import typer
from run import CORPORA
from spacy.util import load_config
from typer.testing import CliRunner

SMALL = "small:training.batcher.size=200"


@pytest.mark.slow
def test_profile_splits_steps_into_phases(corpus_root: Path, tiny_bert: Path) -> None:
    corpus_dir = step_profile.corpus_dir_of(corpus_root, "bc5cdr")
    records = [
        step_profile.measure(corpus_dir, "bc5cdr", str(tiny_bert), name, overrides, warmup=2, steps=4)
        for name, overrides in [("default", {}), step_profile.parse_variant(SMALL)]
    ]
    assert [(r["variant"], r["overrides"]) for r in records] == [
        ("default", {}), ("small", {"training.batcher.size": 200})
    ]
    shipped = load_config(step_profile.DEFAULT_CONFIG)["training"]["batcher"]["size"]
    assert [r["batch_words"] for r in records] == [shipped, 200]
    for record in records:
        assert record["steps"] == 4 and record["warmup"] == 2
        # One batch an epoch (default) or three: the warm-up runs on into epoch 2 either way.
        assert record["warmup_steps"] == (2 if record["variant"] == "default" else 4)
        assert record["first_epoch_steps"] == record["split_first_epoch_steps"] == 0
        assert record["corpus"] == "bc5cdr" and record["encoder"] == tiny_bert.name
        assert record["device"].startswith("CPU")
        phases = record["phases"]
        assert list(phases) == list(step_profile.PHASES)
        assert all(p["mean_ms"] >= 0 and p["median_ms"] >= 0 for p in phases.values())
        assert phases["encoder_forward"]["mean_ms"] > 0 and phases["encoder_backward"]["mean_ms"] > 0
        assert sum(p["mean_ms"] for p in phases.values()) == pytest.approx(record["split_ms_per_step"], rel=0.01)
        assert sum(p["share"] for p in phases.values()) == pytest.approx(1.0, rel=0.01)
        assert all(len(steps) == 4 for steps in record["phase_ms_per_step"].values())
        assert record["ms_per_step"] > 0 and record["words_per_step"] > 0
        assert record["words_per_step"] / (record["ms_per_step"] / 1000) == pytest.approx(
            record["train_words_per_second"], rel=0.01
        )
    # The small batches hold one document (~300 words) each, the default ones all three.
    assert records[1]["words_per_step"] < records[0]["words_per_step"]


@pytest.mark.slow
def test_hooks_are_removed_after_the_split_pass(corpus_root: Path, tiny_bert: Path) -> None:
    corpus_dir = corpus_root / CORPORA["bc5cdr"][0]
    trainer = step_profile.prepare(corpus_dir, "bc5cdr", str(tiny_bert), {"training.batcher.size": 200}, 4)
    clock = step_profile.EncoderClock(step_profile.hf_module(trainer.nlp))
    assert not clock.cuda
    record = step_profile.split_pass(trainer, 2, clock)
    assert record["split_ms_per_step"] > 0
    # One forward and one backward of the encoder in the last split step...
    assert (len(clock.forward_starts), len(clock.forward_ends), len(clock.backward_starts)) == (1, 1, 1)
    # ...and none recorded by a step after it.
    clock.clear()
    [(_, batch)] = trainer.take(1)
    trainer.step(batch)
    assert (clock.forward_starts, clock.forward_ends, clock.backward_starts) == ([], [], [])


@pytest.mark.slow
def test_cli_writes_records_and_names_a_missing_corpus(
    corpus_root: Path, tiny_bert: Path, tmp_path: Path
) -> None:
    output = tmp_path / "profile.json"
    arguments = ["--corpus-root", str(corpus_root), "--encoder", str(tiny_bert), "--warmup", "1", "--steps", "2"]
    result = CliRunner().invoke(
        step_profile.app, [*arguments, "--variant", SMALL, "--trace-steps", "1", "--output", str(output)]
    )
    assert result.exit_code == 0, result.output
    records = json.loads(output.read_text())
    assert [(r["variant"], r["steps"], r["trace_steps"]) for r in records] == [("default", 2, 1), ("small", 2, 1)]
    assert "encoder_backward" in result.output and "split step" in result.output
    for record in records:
        # The operator table of the traced step: the encoder's matrix products are in it.
        assert "aten::" in record["operators"] and "aten::" in result.output
        assert record["trace_ms_per_step"] > 0
        assert record["gpu_kernel_ms_per_step"] is None and record["gpu_busy_share"] is None  # no GPU here
    # A usage error (rich wraps its message in a box, so the message is checked at its source).
    result = CliRunner().invoke(step_profile.app, ["--corpus-root", str(tmp_path), "--corpus", "jnlpba"])
    assert result.exit_code == 2
    with pytest.raises(typer.BadParameter, match=r"jnlpba/train\.spacy is missing: `spacy project run convert-jnlpba`"):
        step_profile.corpus_dir_of(tmp_path, "jnlpba")
