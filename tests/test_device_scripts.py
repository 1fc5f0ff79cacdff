"""The GPU machine's job scripts (benchmarks/scripts/*.sh), on this machine: what
fails there must fail at once and say what to do, since a device call is dear."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from toy import ROOT

SCRIPTS = ROOT / "benchmarks" / "scripts"

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="the job scripts are bash")


def source_device_env(repo: Path, path: str) -> subprocess.CompletedProcess:
    """device_env.sh sourced as the jobs source it, with REPO and PATH given."""
    return subprocess.run(
        ["bash", "-c", f'set -euo pipefail; source "{SCRIPTS}/device_env.sh"; echo reached'],
        env={"REPO": str(repo), "PATH": path}, capture_output=True, text=True, timeout=60,
    )


def fake_python3(folder: Path, version: str) -> str:
    """A PATH whose python3 reports `version` (as sys.version_info) and does nothing else."""
    folder.mkdir()
    major, minor = version.split(".")
    (folder / "python3").write_text(
        f"#!/bin/sh\n[ \"$1\" = -c ] && exec {sys.executable} -c \"import sys; "
        f"sys.exit(({major}, {minor}) != (3, 12))\"\nexit 0\n"
    )
    (folder / "python3").chmod(0o755)
    return f"{folder}:/usr/bin:/bin"


def test_device_env_refuses_another_python_than_the_bundles(tmp_path):
    result = source_device_env(ROOT, fake_python3(tmp_path / "bin", "3.11"))
    assert result.returncode != 0 and "reached" not in result.stdout
    assert "the carried spaCy stack is for CPython 3.12" in result.stderr


def test_device_env_says_to_stage_and_carry_the_bundles(tmp_path):
    result = source_device_env(tmp_path, fake_python3(tmp_path / "bin", "3.12"))
    assert result.returncode != 0 and "reached" not in result.stdout
    assert "run benchmarks/scripts/stage_device.sh, and carry [\".device\"]" in result.stderr


def stamp(repo: Path) -> str:
    return subprocess.run(
        ["bash", "-c", f'source "{ROOT}/scripts/package_stamp.sh"; package_stamp "{repo}"'],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout.strip()


def test_the_source_stamp_changes_with_a_file_renamed(tmp_path):
    """The carried wheel is installed only for the sources it was built from: a
    module renamed (same bytes) is other sources."""
    (tmp_path / "spacy_bioner").mkdir()
    (tmp_path / "setup.py").write_text("setup()\n")
    (tmp_path / "spacy_bioner" / "a.py").write_text("X = 1\n")
    before = stamp(tmp_path)
    assert len(before) == 40 and stamp(tmp_path) == before
    (tmp_path / "spacy_bioner" / "a.py").rename(tmp_path / "spacy_bioner" / "b.py")
    assert stamp(tmp_path) != before
