"""The step profiler on the CPU: the tiny random BERT, three BC5CDR documents,
real training steps (no mocks). A record has every phase of every timed step,
its batches are the ones asked for, the split pass refuses phases from hooks
that did not fire or from timestamps out of order, and the encoder hooks are
gone after the split pass."""

import itertools
import json
import math
from pathlib import Path

import pytest
import spacy
import step_profile
import torch
import typer
from run import CORPORA, check_corpus
from spacy.util import load_config
from typer.testing import CliRunner

from spacy_bioner.corpora import load_docs

SMALL = "small:training.batcher.size=200"


@pytest.mark.slow
def test_profile_splits_steps_into_phases(corpus_root: Path, tiny_bert: Path) -> None:
    corpus_dir = check_corpus(corpus_root, "bc5cdr", ("train", "dev"))
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
        assert "CPU (" in record["device"]  # the CPU, its model first where known
        phases = record["phases"]
        assert list(phases) == list(step_profile.PHASES) == list(record["phase_ms_per_step"])
        assert all(set(p) == {"mean_ms", "median_ms", "share"} for p in phases.values())
        assert all(len(steps) == 4 for steps in record["phase_ms_per_step"].values())
        timings = [record[key] for key in ("ms_per_step", "train_words_per_second", "split_ms_per_step")]
        timings += [value for p in phases.values() for value in p.values()]
        timings += [ms for steps in record["phase_ms_per_step"].values() for ms in steps]
        assert all(isinstance(value, float) and math.isfinite(value) for value in timings)
    # The default batches hold the whole training corpus, both passes' alike;
    # the small ones one document each.
    train_words = [len(doc) for doc in load_docs(corpus_dir / "train.spacy", spacy.blank("en").vocab)]
    assert len(train_words) == 3
    assert records[0]["words_per_step"] == records[0]["split_words_per_step"] == sum(train_words)
    assert min(train_words) <= records[1]["words_per_step"] <= max(train_words)


@pytest.mark.slow
def test_hooks_are_removed_after_the_split_pass(corpus_root: Path, tiny_bert: Path) -> None:
    corpus_dir = corpus_root / CORPORA["bc5cdr"][0]
    trainer = step_profile.prepare(corpus_dir, "bc5cdr", str(tiny_bert), {"training.batcher.size": 200}, 4)
    clock = step_profile.EncoderClock(step_profile.hf_module(trainer.nlp))
    assert not clock.cuda
    record = step_profile.split_pass(trainer, 2, clock)
    # Two steps timed, both of the first epoch (three batches of one document).
    assert all(len(steps) == 2 for steps in record["phase_ms_per_step"].values())
    assert record["split_first_epoch_steps"] == 2
    # One forward and one backward of the encoder in the last split step...
    assert (len(clock.forward_starts), len(clock.forward_ends), len(clock.backward_starts)) == (1, 1, 1)
    # ...and none recorded by a step after it.
    clock.clear()
    [(_, batch)] = trainer.take(1)
    trainer.step(batch)
    assert (clock.forward_starts, clock.forward_ends, clock.backward_starts) == ([], [], [])


@pytest.mark.slow
def test_the_split_pass_refuses_phases_it_cannot_trust(
    corpus_root: Path, tiny_bert: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No phases from hooks that did not fire (a clock on another module), nor
    from timestamps out of order (a clock that runs backwards)."""
    trainer = step_profile.prepare(
        check_corpus(corpus_root, "bc5cdr", ("train", "dev")), "bc5cdr", str(tiny_bert), {"training.batcher.size": 200}, 2
    )
    with pytest.raises(RuntimeError, match="the encoder hooks did not all fire"):
        step_profile.split_pass(trainer, 1, step_profile.EncoderClock(torch.nn.Linear(2, 2)))
    backwards = itertools.count(0.0, -1.0)
    monkeypatch.setattr(step_profile, "now", lambda cuda: next(backwards))
    with pytest.raises(RuntimeError, match="the phase boundaries are out of order"):
        step_profile.split_pass(trainer, 1, step_profile.EncoderClock(step_profile.hf_module(trainer.nlp)))


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
        assert isinstance(record["trace_ms_per_step"], float) and math.isfinite(record["trace_ms_per_step"])
        assert record["gpu_kernel_ms_per_step"] is None and record["gpu_busy_share"] is None  # no GPU here
    # A usage error (rich wraps its message in a box, so the message is checked at its source).
    result = CliRunner().invoke(step_profile.app, ["--corpus-root", str(tmp_path), "--corpus", "jnlpba"])
    assert result.exit_code == 2
    with pytest.raises(typer.BadParameter, match=r"jnlpba has no train\.spacy, dev\.spacy: convert the corpora first"):
        check_corpus(tmp_path, "jnlpba", ("train", "dev"))
    with pytest.raises(typer.BadParameter, match=r"unknown corpus 'bc5'; choose from \['bc5cdr', 'jnlpba'\]"):
        check_corpus(tmp_path, "bc5", ("train",))


def test_the_crfs_log_space_fallbacks_are_counted_silently(capsys: pytest.CaptureFixture) -> None:
    """Documents redone in log space cost a float64 recursion each, and nothing showed them."""
    import numpy as np

    from spacy_bioner.layers.crf import forward_backward
    from spacy_bioner.tags import make_tags, tag_constraints

    rng = np.random.default_rng(0)
    tags = make_tags(["A", "B"], "BILUO")
    params = [m.astype("f") for m in tag_constraints(tags)]
    lengths = np.array([30, 12, 25])
    counts = []
    for scale in (1.0, 300.0):  # a trained head's range; far beyond float32's
        emissions = (rng.normal(size=(3, 30, len(tags))) * scale).astype("f")
        with step_profile.counting_log_space() as redone:
            forward_backward(emissions, lengths, *params, recursion="sequential")
        counts.append((redone.batches, redone.documents))
    assert counts[0] == (0, 0)
    assert counts[1][0] == 1 and 1 <= counts[1][1] <= 3
    assert capsys.readouterr() == ("", "")


def test_gpu_busy_time_counts_each_kernel_once():
    """torch's profiler lists a kernel on its own row and again under the operator
    that launched it: events built as its parser builds them, one 100-us kernel."""
    from torch.autograd import DeviceType
    from torch.autograd.profiler_util import EventList, FunctionEvent

    operator = FunctionEvent(id=1, name="aten::mm", thread=0, start_us=0, end_us=150, use_device="cuda", stack=[],
                             device_type=DeviceType.CPU)
    operator.append_kernel("sgemm", 0, 100)
    kernel = FunctionEvent(id=2, name="sgemm", thread=0, start_us=10, end_us=110, use_device="cuda", stack=[],
                           device_type=DeviceType.CUDA, device_index=0)
    events = EventList([operator, kernel], use_device="cuda")
    events._build_tree()
    assert step_profile.kernel_microseconds(events.key_averages()) == 100
