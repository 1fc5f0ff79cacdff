"""Opening plain, gzip- or xz-compressed input files as one stream of bytes.

The corpus readers (`corpora.text`) and the annotation readers
(`annotate.sources`) open their inputs here, so both take the same
compressions. The compression is told by the file's first bytes, not its
name: a gzipped file named `.txt` is read, and a plain file named `.gz` too.
The standard library's `gzip` and `lzma` do the decompressing (every gzip
member, every xz stream); what they raise on a truncated or corrupt file is in
`DECOMPRESSION_ERRORS`, beside `OSError`, the error of the system.
"""

import gzip
import lzma
import zlib
from pathlib import Path
from typing import IO, Optional, Tuple, Type, Union

# EOFError: the file ends inside a member or stream (a truncated download).
# gzip's BadGzipFile is an OSError without errno, so callers that tell the
# system's errors from the file's by `errno` (`annotate.sources`) see it right.
DECOMPRESSION_ERRORS: Tuple[Type[Exception], ...] = (EOFError, zlib.error, lzma.LZMAError)

_MAGIC = {b"\x1f\x8b": "gzip", b"\xfd7zXZ\x00": "xz"}


def compression(path: Union[str, Path]) -> Optional[str]:
    """'gzip' or 'xz' by the file's first bytes; None for a plain (or empty) file."""
    with open(path, "rb") as f:
        head = f.read(6)
    return next((name for magic, name in _MAGIC.items() if head.startswith(magic)), None)


def open_bytes(path: Union[str, Path]) -> IO[bytes]:
    """The decompressed bytes of a gzip or xz file, the bytes of any other file.

    The stream has `read1`, so that a reader can keep what was decompressed
    before a truncation (`read(n)` drops it).
    """
    name = compression(path)
    if name == "gzip":
        return gzip.open(path, "rb")  # type: ignore[return-value]
    if name == "xz":
        return lzma.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")


def is_system_error(error: Exception) -> bool:
    """An error of the system reading a file (permission denied, an I/O error),
    not of its content: an OSError with an errno. A corrupt file's errors carry
    none (gzip's BadGzipFile, pyarrow's)."""
    return isinstance(error, OSError) and error.errno is not None


def describe_error(path: Union[str, Path], error: Exception) -> str:
    """What a reading error says about the file: 'truncated xz file', 'corrupt gzip data (...)', or the error."""
    if is_system_error(error):
        return error.strerror or str(error)  # type: ignore[attr-defined]
    try:
        name = compression(path) or "compressed"
    except OSError:
        return str(error)
    if isinstance(error, EOFError):
        return f"truncated {name} file"
    return f"corrupt {name} data ({error})"
