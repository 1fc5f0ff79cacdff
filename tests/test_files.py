"""The file helpers that `annotate` and `pretrain` write their outputs with (spacy_bioner/files.py)."""

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from spacy_bioner.files import FolderUnavailable, atomic_write, atomic_write_all, exclusive_folder

HOLD = """
import sys
from pathlib import Path
from spacy_bioner.files import exclusive_folder
with exclusive_folder(Path(sys.argv[1])):
    print("held", flush=True)
    sys.stdin.read()
"""


def test_a_folder_is_held_by_one_process_until_it_ends_however(tmp_path: Path) -> None:
    folder = tmp_path / "out"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    # The read is bounded: a holder that never takes the folder fails the test rather than hangs it
    # (the kill below closes the pipe, which ends the read).
    reader = ThreadPoolExecutor(1)
    try:
        assert reader.submit(holder.stdout.readline).result(timeout=120).strip() == "held"
        with pytest.raises(FolderUnavailable, match="is in use by another run"):
            with exclusive_folder(folder):
                pass
    finally:
        holder.kill()  # no cleanup runs: the lock goes with the process
        holder.wait()
        reader.shutdown()
    with exclusive_folder(folder):
        pass


def test_a_folder_is_held_once_within_a_process_too(tmp_path: Path) -> None:
    with exclusive_folder(tmp_path):
        with pytest.raises(FolderUnavailable):
            with exclusive_folder(tmp_path):
                pass
    with exclusive_folder(tmp_path):
        pass


def test_a_folder_made_and_left_empty_is_removed_and_others_stay(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError):
        with exclusive_folder(tmp_path / "new" / "out"):
            assert (tmp_path / "new" / "out").is_dir()
            raise RuntimeError
    assert not (tmp_path / "new" / "out").exists()
    with exclusive_folder(tmp_path / "written"):
        (tmp_path / "written" / "run.json").write_text("{}")
    assert (tmp_path / "written" / "run.json").is_file()
    (tmp_path / "existing").mkdir()
    with exclusive_folder(tmp_path / "existing"):
        pass
    assert (tmp_path / "existing").is_dir()


def test_a_file_system_without_locks_holds_nothing_and_runs(tmp_path: Path, monkeypatch) -> None:
    """flock fails with ENOLCK on some network and FUSE file systems: the run goes on, unheld."""
    import errno
    import fcntl

    def no_locks(fd: int, operation: int) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    with exclusive_folder(tmp_path / "out"):
        (tmp_path / "out" / "run.json").write_text("{}")
    assert (tmp_path / "out" / "run.json").is_file()


def test_a_folder_under_a_file_is_unavailable(tmp_path: Path) -> None:
    (tmp_path / "note.txt").write_text("not a folder")
    with pytest.raises(FolderUnavailable, match="note.txt/out cannot be used as the output folder: Not a directory"):
        with exclusive_folder(tmp_path / "note.txt" / "out"):
            pass


def test_atomic_write_leaves_the_old_file_where_writing_fails(tmp_path: Path) -> None:
    path = tmp_path / "table.json"
    atomic_write(path, lambda tmp: tmp.write_text("old"))

    def fail(tmp: Path) -> None:
        tmp.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(path, fail)
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["table.json"]


def test_atomic_write_of_a_name_as_long_as_the_file_system_takes(tmp_path: Path) -> None:
    """The temporary file's name, the file's with a dot and a suffix, was past the 255 bytes a name may
    have: a valid output failed after the work was done, naming a file the user never gave."""
    path = tmp_path / ("b" * 249 + ".spacy")
    atomic_write(path, lambda tmp: tmp.write_text("whole"))
    assert [p.name for p in tmp_path.iterdir()] == [path.name] and path.read_text() == "whole"


def test_atomic_write_all_with_a_folder_in_place_of_a_file_writes_none(tmp_path: Path) -> None:
    """A rename onto a folder fails after the renames before it: the first file was replaced."""
    first, second = tmp_path / "a.json", tmp_path / "b.md"
    first.write_text("old")
    second.mkdir()
    with pytest.raises(IsADirectoryError):
        atomic_write_all([(first, lambda tmp: tmp.write_text("new")), (second, lambda tmp: tmp.write_text("new"))])
    assert first.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.md"]
