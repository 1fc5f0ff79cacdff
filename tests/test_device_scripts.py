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


def install(repo: Path, site: Path, marker: Path, path: str) -> subprocess.CompletedProcess:
    """device_install.sh's install_package, as device_env.sh calls it."""
    return subprocess.run(
        ["bash", "-c", f'set -euo pipefail; source "{SCRIPTS}/device_install.sh"; '
                       f'install_package "{repo}" "{site}" "{marker}"'],
        env={"PATH": path}, capture_output=True, text=True, timeout=120,
    )


@pytest.mark.slow
def test_the_package_installs_from_the_tree_and_its_staged_metadata(tmp_path):
    """What the GPU machine does: the tree's modules and the dist-info of a wheel built from
    them, without pip; spaCy finds `bio_ner` by the entry points there. Sources changed since
    staging are installed by pip instead."""
    repo = tmp_path / "repo"
    shutil.copytree(ROOT / "spacy_bioner", repo / "spacy_bioner", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("setup.py", "pyproject.toml", "README.md", "LICENSE", "scripts/package_stamp.sh"):
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, repo / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(tmp_path / "wheels"), str(repo)], check=True, capture_output=True, timeout=300)
    (wheel,) = (tmp_path / "wheels").glob("spacy_bioner-*.whl")
    (repo / ".device").mkdir()
    stage = (f'source "{SCRIPTS}/device_install.sh"; stage_metadata "{wheel}" "{repo}/.device"; '
             f'source "{ROOT}/scripts/package_stamp.sh"; package_stamp "{repo}" > "{repo}/.device/spacy-bioner.stamp"')
    subprocess.run(["bash", "-c", stage], check=True, timeout=60)
    assert [p.name for p in (repo / ".device").iterdir() if p.is_dir()] == [f"{wheel.name.split('-py3')[0]}.dist-info"]
    site, marker = tmp_path / "site", tmp_path / "installed"
    path = f"{Path(sys.executable).parent}:/usr/bin:/bin"
    result = install(repo, site, marker, path)
    assert result.returncode == 0 and "pip install" not in result.stderr, result.stderr
    code = ("import importlib.metadata as m, spacy_bioner; "
            f"eps = [e.name for d in m.distributions(path=[{str(site)!r}]) for e in d.entry_points "
            "if e.group == 'spacy_factories']; print(spacy_bioner.__file__); print(sorted(eps))")
    found = subprocess.run([sys.executable, "-c", code], env={"PYTHONPATH": str(site), "PATH": path},
                           cwd=tmp_path, capture_output=True, text=True, check=True, timeout=120).stdout.splitlines()
    assert found[0] == str(site / "spacy_bioner" / "__init__.py") and "bio_ner" in found[1]
    # Sources changed after staging: the staged metadata is not theirs, so pip installs them.
    (repo / "spacy_bioner" / "about.py").write_text((repo / "spacy_bioner" / "about.py").read_text() + "\n")
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "python3").write_text(f'#!/bin/sh\necho "$@" > "{tmp_path}/pip-args"\n')
    (fake / "python3").chmod(0o755)
    result = install(repo, site, marker, f"{fake}:/usr/bin:/bin")
    assert result.returncode == 0 and "no metadata of these sources in .device/" in result.stderr
    assert (tmp_path / "pip-args").read_text().split()[:3] == ["-m", "pip", "install"]
    assert not (site / "spacy_bioner").exists()  # the stale copy is gone


def test_the_source_stamp_fails_without_a_sha1_tool(tmp_path):
    """Without sha1sum (macOS has shasum), the stamp was empty and exit 0: library changes then
    reran nothing that depends on it."""
    tools = tmp_path / "bin"
    tools.mkdir()
    for tool in ("find", "sort", "cut", "cat"):
        (tools / tool).symlink_to(shutil.which(tool))
    result = subprocess.run(
        [shutil.which("bash"), "-c", f'source "{ROOT}/scripts/package_stamp.sh"; package_stamp "{ROOT}"'],
        env={"PATH": str(tools)}, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode != 0 and result.stdout == ""
    assert "package_stamp: needs sha1sum or shasum" in result.stderr


def job_calls(tmp_path: Path, job: str, *args: str) -> list:
    """The python3 calls a GPU job script makes, each as its arguments: the script runs from a copy
    of the benchmarks' scripts, with device_env.sh stubbed (the bundles unpacked) and a python3 that
    records its arguments and succeeds."""
    repo = tmp_path / "repo"
    if not repo.exists():
        shutil.copytree(SCRIPTS, repo / "benchmarks" / "scripts")
        (repo / "benchmarks" / "scripts" / "device_env.sh").write_text(":\n")
        (tmp_path / "bin").mkdir()
        (tmp_path / "bin" / "python3").write_text(
            f'#!/bin/sh\nprintf "%s\\037" "$@" >> "{tmp_path}/calls"\nprintf "\\n" >> "{tmp_path}/calls"\n'
        )
        (tmp_path / "bin" / "python3").chmod(0o755)
        (tmp_path / "out").mkdir()
    (tmp_path / "calls").write_text("")
    subprocess.run(["bash", str(repo / "benchmarks" / "scripts" / job), *args], check=True, capture_output=True,
                   env={"PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin", "OUT": str(tmp_path / "out")}, timeout=120)
    return [line.split("\x1f")[:-1] for line in (tmp_path / "calls").read_text().splitlines()]


def test_a_job_converts_only_the_corpora_its_script_reads(tmp_path):
    """Each conversion costs device time: crf_schedules.py reads no corpus, a BC5CDR run no JNLPBA."""
    out = tmp_path / "out"
    assert job_calls(tmp_path, "device_job.sh", "crf_schedules.py") == [
        ["scripts/crf_schedules.py", "--gpu-id", "0", "--output", f"{out}/crf_schedules.json"]]
    calls = job_calls(tmp_path, "device_job.sh", "--corpus", "bc5cdr", "--epochs", "5")
    assert calls == [["-m", "spacy", "project", "run", "convert-bc5cdr", "."],
                     ["scripts/run.py", "--gpu-id", "0", "--encoder", "/tmp/all-MiniLM-L6-v2", "--corpus-root",
                      "corpus", "--output-dir", str(out), "--corpus", "bc5cdr", "--epochs", "5"]]
    converted = [call[4] for call in job_calls(tmp_path, "device_job.sh", "step_profile.py") if call[0] == "-m"]
    assert converted == ["convert-jnlpba", "convert-bc5cdr"]


def test_a_failed_conversion_says_why_in_the_calls_output(tmp_path):
    """weasel prints why a conversion failed on stdout: the job passes it on, not an exit 1 alone."""
    repo = tmp_path / "repo"
    shutil.copytree(SCRIPTS, repo / "benchmarks" / "scripts")
    (repo / "benchmarks" / "scripts" / "device_env.sh").write_text(":\n")
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "python3").write_text(
        "#!/bin/sh\necho \"Missing dependency specified by command 'convert-bc5cdr': assets/devel.tsv.xz\"\nexit 1\n"
    )
    (tmp_path / "bin" / "python3").chmod(0o755)
    (tmp_path / "out").mkdir()
    result = subprocess.run(["bash", str(repo / "benchmarks" / "scripts" / "device_job.sh"), "--corpus", "bc5cdr"],
                            capture_output=True, text=True, timeout=120,
                            env={"PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin", "OUT": str(tmp_path / "out")})
    assert result.returncode != 0
    assert "Missing dependency specified by command 'convert-bc5cdr'" in result.stderr


def planned_jobs() -> list:
    """The GPU jobs benchmarks/README.md plans, as (job script, arguments)."""
    import re
    import shlex

    text = (ROOT / "benchmarks" / "README.md").read_text(encoding="utf8")
    jobs = []
    for job, args in re.findall(r"bash benchmarks/scripts/(device_(?:project_)?job\.sh)([^;&`\n]*)", text):
        jobs.append((job, shlex.split(args.replace("$w", "welt"))))
    return jobs


@pytest.mark.slow
def test_every_option_the_planned_gpu_jobs_pass_is_one_their_scripts_take(tmp_path):
    """A renamed option would otherwise first fail on the GPU machine, a call lost."""
    import re

    jobs = planned_jobs()
    assert {job for job, _ in jobs} == {"device_job.sh", "device_project_job.sh"} and len(jobs) >= 6
    helps = {}
    for job, args in jobs:
        for call in job_calls(tmp_path, job, *args):
            script = next((arg for arg in call if arg.endswith(".py")), None)
            if script is None:
                continue
            name = Path(script).name
            if name not in helps:
                helps[name] = subprocess.run([sys.executable, str(SCRIPTS / name), "--help"], capture_output=True,
                                             text=True, check=True, timeout=120).stdout
            options = {arg.split("=")[0] for arg in call if arg.startswith("--")}
            unknown = [option for option in options if not re.search(re.escape(option) + r"(?![\w-])", helps[name])]
            assert not unknown, (job, call)
    assert {"run.py", "crf_schedules.py", "step_profile.py", "inference.py", "annotate_speed.py"} <= set(helps)
