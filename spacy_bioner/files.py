"""Writing files atomically: complete or not at all, whatever interrupts the
writer; digesting a file without reading it into memory."""

import os
from pathlib import Path
from typing import Any, Callable


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
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        with open(tmp, "rb") as file_:
            os.fsync(file_.fileno())
        os.replace(tmp, path)
        _sync_folder(path.parent)
    finally:
        if tmp.exists():
            tmp.unlink()


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
