"""Writing files atomically: complete or not at all, whatever interrupts the
writer; digesting a file without reading it into memory; holding an output
folder for one run at a time.

The folder is held by an advisory `flock` on the folder itself, not on a lock
file (as `filelock` takes): `annotate` and `pretrain` refuse an output folder
that holds files their runs do not write, and a lock file would be one.
"""

import errno
import hashlib
import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence, Tuple


def update_digest(digest: Any, path: Path) -> Any:
    """Feed the bytes of `path` to a hashlib `digest`, a MiB at a time (a file may be large); return it."""
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call `write(tmp)` on a temporary file beside `path`, then rename it to `path`.

    The rename is atomic on POSIX, so readers (and a resumed run) see the old
    file or the new one, never a partial one; the file and then its folder are
    synced, so that this holds after a power loss too. The temporary file gets
    the usual mode of a new file (umask) and is removed if writing fails.
    """
    atomic_write_all([(path, write)])


def atomic_write_all(files: Sequence[Tuple[Path, Callable[[Path], None]]]) -> None:
    """`atomic_write` of several files together: every one written to its temporary file before
    any is renamed, so that an error while writing (a full disk), or a folder where a file
    goes, leaves each as it was."""
    for path, _ in files:
        if path.is_dir():  # a rename onto it would fail after the ones before it
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
    temporary = [_temporary(path) for path, _ in files]
    try:
        for (_, write), tmp in zip(files, temporary):
            write(tmp)
            with open(tmp, "rb") as file_:
                os.fsync(file_.fileno())
        for (path, _), tmp in zip(files, temporary):
            os.replace(tmp, path)
        for folder in dict.fromkeys(path.parent for path, _ in files):
            _sync_folder(folder)
    finally:
        for tmp in temporary:
            if tmp.exists():
                tmp.unlink()


def staging_folder(path: Path) -> Path:
    """A new, empty folder beside `path` (its parents made) for files that `replace_folder` then puts
    in the place of `path` together. What processes no longer running on this machine staged beside
    `path` (a conversion killed) is removed first."""
    staged = _temporary(path)
    if path.parent.is_dir():
        prefix = staged.name[: -len(str(os.getpid()))]  # ".NAME.tmp-"
        for left in path.parent.iterdir():
            pid = left.name[len(prefix):].split("-")[0] if left.name.startswith(prefix) else ""
            if not pid.isdigit() or (left != staged and _running(int(pid))):
                continue
            if left.is_dir() and not left.is_symlink():
                shutil.rmtree(left)
            else:
                left.unlink()
    staged.mkdir(parents=True)
    return staged


def _running(pid: int) -> bool:
    """Whether the process `pid` of this machine runs; True where that cannot be told (Windows)."""
    if os.name == "nt":  # os.kill(pid, 0) would end it there
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's
        return True
    return True


def replace_folder(staged: Path, path: Path) -> None:
    """Put the folder `staged` (`staging_folder`) in the place of `path`, a folder replaced whole or
    nothing. By renames alone: `path` holds the old files or the new ones, never some of each (for an
    instant none: no system renames a folder over one that is not empty); the old folder is put back
    where the new one cannot be put in its place."""
    old = None
    if path.exists():
        old = _temporary(path).with_name(f"{_temporary(path).name}-old")
        os.replace(path, old)
    try:
        os.replace(staged, path)
    except OSError:
        if old is not None:
            os.replace(old, path)
        raise
    _sync_folder(path.parent)
    if old is not None:
        shutil.rmtree(old)


def write_synced(path: Path, data: bytes) -> None:
    """Write `data` to `path` and sync it to the disk: a file that a rename will make visible."""
    with open(path, "wb") as file_:
        file_.write(data)
        file_.flush()
        os.fsync(file_.fileno())


def _temporary(path: Path) -> Path:
    """The temporary file beside `path` for this process: its name, hidden, where a file system's
    255 bytes a name leave room for the suffix; a digest of it for a name longer than that."""
    name = path.name if len(os.fsencode(path.name)) <= 200 else hashlib.sha256(os.fsencode(path.name)).hexdigest()
    return path.with_name(f".{name}.tmp-{os.getpid()}")


def _sync_folder(path: Path) -> None:
    """Make a rename in the folder `path` durable; nothing where a folder cannot be opened (Windows)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # a file system that cannot sync a folder
        pass
    finally:
        os.close(fd)


class FolderUnavailable(Exception):
    """An output folder cannot be made or opened, or another process holds it (`exclusive_folder`)."""


@contextmanager
def exclusive_folder(path: Path) -> Iterator[None]:
    """Hold the output folder `path` for this process while the block runs, making it where it is missing.

    Raises FolderUnavailable where it cannot be made or opened, or another
    process (or another open of it here) holds it. The lock ends with the
    block or with the process, however it ends, so a killed run leaves none
    behind. A folder made here and empty at the end is removed again. Where
    the system has no `flock` (Windows), or the file system no locks, nothing
    is locked.
    """
    try:
        import fcntl
    except ImportError:  # Windows, where a folder cannot be opened as a file either
        fcntl = None
    made = not path.exists()
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDONLY) if fcntl is not None else None
    except OSError as e:  # a file on the way, no permission, a read-only file system
        raise FolderUnavailable(f"{path} cannot be used as the output folder: {e.strerror or e}: {e.filename}") \
            from None
    try:
        if fd is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise FolderUnavailable(f"{path} is in use by another run: wait for it to end, "
                                        "or choose another output folder") from None
            except OSError:  # a file system without locks (some network and FUSE ones): unheld
                pass
        yield
    finally:
        if fd is not None:
            os.close(fd)  # ends the lock
        if made and path.is_dir() and not any(path.iterdir()):
            path.rmdir()
