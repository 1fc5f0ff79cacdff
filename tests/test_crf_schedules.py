"""The CRF schedules benchmark on the CPU: both schedules timed on each shape,
their results compared, the record written; a time is the median of the
repeats after an untimed call; bad shapes refused."""

import json
import math
from pathlib import Path
from types import SimpleNamespace

import crf_schedules
import pytest
import typer
from typer.testing import CliRunner


def test_both_schedules_are_timed_and_agree(tmp_path: Path) -> None:
    output = tmp_path / "crf.json"
    app = typer.Typer()
    app.command()(crf_schedules.main)
    result = CliRunner().invoke(app, ["--shape", "3x20", "--shape", "2x1", "--repeats", "2", "--output", str(output)])
    assert result.exit_code == 0, result.output
    record = json.loads(output.read_text())
    assert "CPU (" in record["device"] and record["repeats"] == 2
    assert [(s["documents"], s["tokens"]) for s in record["shapes"]] == [(3, 20), (2, 1)]
    for shape in record["shapes"]:
        timings = [
            shape[f"{name}_{kind}"]
            for name in ("forward_backward", "viterbi")
            for kind in [*(f"{schedule}_ms" for schedule in crf_schedules.SCHEDULES), "speedup"]
        ]
        assert all(isinstance(value, float) and math.isfinite(value) for value in timings)
        assert shape["log_z_max_relative_difference"] < 1e-4
        assert shape["marginals_max_relative_difference"] < 1e-4
        assert shape["pairwise_max_relative_difference"] < 1e-4
        assert shape["identical_paths"] == 1.0
    # Lengths run from T/2 to T, the first document's is T.
    assert 3 * 10 <= record["shapes"][0]["words"] <= 3 * 20
    assert record["shapes"][1]["words"] == 2


def test_each_shape_is_written_as_soon_as_it_is_measured(tmp_path: Path, monkeypatch) -> None:
    """A shape that fails (or a job cut off by the device's time limit) leaves the shapes before it."""
    measure = crf_schedules.measure_shape

    def measure_then_fail(ops, n_docs, *args):
        if n_docs == 4:
            raise MemoryError("out of device memory")
        return measure(ops, n_docs, *args)

    monkeypatch.setattr(crf_schedules, "measure_shape", measure_then_fail)
    output = tmp_path / "crf.json"
    app = typer.Typer()
    app.command()(crf_schedules.main)
    result = CliRunner().invoke(app, ["--shape", "2x5", "--shape", "4x5", "--repeats", "1", "--output", str(output)])
    assert isinstance(result.exception, MemoryError)
    assert [(s["documents"], s["tokens"]) for s in json.loads(output.read_text())["shapes"]] == [(2, 5)]
    assert "   2x5" in result.output


def test_on_a_device_each_schedule_is_also_compared_with_numpy(monkeypatch) -> None:
    """On the strict CuPy stand-in (tests/strict_device.py) the device results are
    checked against NumPy's sequential schedule on host copies; on the CPU there is
    nothing to compare (the first test's records carry no such keys)."""
    from strict_device import strict_device

    ops = strict_device(monkeypatch)
    monkeypatch.setattr(crf_schedules, "synchronize", lambda xp: None)  # the stand-in has no streams
    record = crf_schedules.measure_shape(ops, 3, 20, repeats=1)
    assert (record["tag_scheme"], record["tags"]) == ("BILUO", 21)  # the shipped heads' scheme, JNLPBA's labels
    for schedule in crf_schedules.SCHEDULES:
        assert record[f"{schedule}_vs_numpy_max_relative_difference"] < 1e-4
        assert record[f"{schedule}_vs_numpy_identical_paths"] == 1.0
    cpu = crf_schedules.measure_shape(crf_schedules.get_current_ops(), 3, 20, repeats=1)
    assert not [key for key in cpu if "vs_numpy" in key]


def test_a_time_is_the_median_of_the_repeats_after_an_untimed_call(monkeypatch) -> None:
    """On a clock whose readings make the timed calls take 5, 1 and 2 ms, the
    time is their median, 2 ms (the mean would be 2.67), and the first call
    reads no clock (a timed one would run out of readings)."""
    readings = iter([0.0, 0.005, 1.0, 1.001, 2.0, 2.002])
    monkeypatch.setattr(crf_schedules, "time", SimpleNamespace(perf_counter=lambda: next(readings)))
    calls = []
    assert crf_schedules.median_ms(lambda: calls.append(1), crf_schedules.np, 3) == pytest.approx(2.0)
    assert len(calls) == 1 + 3


@pytest.mark.parametrize("text", ["8", "8x", "0x5", "ax5"])
def test_a_malformed_shape_is_refused(text: str) -> None:
    with pytest.raises(typer.BadParameter, match="DOCUMENTSxTOKENS|at least 1"):
        crf_schedules.parse_shape(text)
