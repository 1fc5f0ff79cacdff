"""The CRF schedules benchmark on the CPU: both schedules timed on each shape,
their results compared, the record written; bad shapes refused."""

import json
from pathlib import Path

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
    assert record["device"].startswith("CPU") and record["repeats"] == 2
    assert [(s["documents"], s["tokens"]) for s in record["shapes"]] == [(3, 20), (2, 1)]
    for shape in record["shapes"]:
        for name in ("forward_backward", "viterbi"):
            for schedule in crf_schedules.SCHEDULES:
                assert shape[f"{name}_{schedule}_ms"] > 0
            assert shape[f"{name}_speedup"] == pytest.approx(
                shape[f"{name}_sequential_ms"] / shape[f"{name}_parallel_ms"]
            )
        assert shape["log_z_max_relative_difference"] < 1e-4
        assert shape["marginals_max_relative_difference"] < 1e-4
        assert shape["pairwise_max_relative_difference"] < 1e-4
        assert shape["identical_paths"] == 1.0
    # Lengths run from T/2 to T, the first document's is T.
    assert 3 * 10 <= record["shapes"][0]["words"] <= 3 * 20
    assert record["shapes"][1]["words"] == 2


@pytest.mark.parametrize("text", ["8", "8x", "0x5", "ax5"])
def test_a_malformed_shape_is_refused(text: str) -> None:
    with pytest.raises(typer.BadParameter, match="DOCUMENTSxTOKENS|at least 1"):
        crf_schedules.parse_shape(text)
