"""Opening plain, gzip- or xz-compressed input files as one stream of bytes.

The corpus readers (`corpora.text`) and the annotation readers
(`annotate.sources`) open their inputs here, so both take the same
compressions. The compression is told by the file's first bytes, not its
name: a gzipped file named `.txt` is read, and a plain file named `.gz` too.
A pipe (`<(zcat x.gz)`, `/dev/stdin`) is read once: its first bytes, read to
tell its compression, are given back to the stream they came from.
The standard library's `gzip` and `lzma` do the decompressing (every gzip
member, every xz stream); what they raise on a truncated or corrupt file is in
`DECOMPRESSION_ERRORS`, beside `OSError`, the error of the system.
"""

import gzip
import io
import lzma
import zlib
from pathlib import Path
from typing import IO, Optional, Tuple, Type, Union

# EOFError: the file ends inside a member or stream (a truncated download).
# gzip's BadGzipFile is an OSError without errno, so callers that tell the
# system's errors from the file's by `errno` (`annotate.sources`) see it right.
DECOMPRESSION_ERRORS: Tuple[Type[Exception], ...] = (EOFError, zlib.error, lzma.LZMAError)

_MAGIC = {b"\x1f\x8b": "gzip", b"\xfd7zXZ\x00": "xz"}
# Others a corpus comes in, said by name where they would read as bytes that are no UTF-8
# text. bzip2's is its "BZh", a block size and a block's (or the empty stream's end's) magic.
_UNREAD = {
    b"PK\x03\x04": "a zip archive, which is not read: unpack it",
    b"\x28\xb5\x2f\xfd": "zstd-compressed, which is not read: decompress it (unzstd), or compress it with gzip or xz",
    b"7z\xbc\xaf\x27\x1c": "a 7z archive, which is not read: unpack it",
    **{b"BZh" + level + magic: "bzip2-compressed, which is not read: decompress it (bunzip2), or compress it "
                               "with gzip or xz"
       for level in (b"%d" % n for n in range(1, 10)) for magic in (b"1AY&SY", b"\x17rE8P\x90")},
}

_HEAD = max(len(magic) for magic in (*_MAGIC, *_UNREAD))


class UnreadCompression(OSError):
    """A file compressed or archived in a way not read here: its message says which, and what to do
    (an OSError without errno: an error of the file, not of the system)."""


def compression(path: Union[str, Path]) -> Optional[str]:
    """'gzip' or 'xz' by the file's first bytes; None for a plain (or empty) file, and for a pipe
    (whose bytes a look would take)."""
    if not Path(path).is_file():
        return None
    with open(path, "rb") as f:
        return _compression_of(f.read(_HEAD))


def _compression_of(head: bytes) -> Optional[str]:
    return next((name for magic, name in _MAGIC.items() if head.startswith(magic)), None)


def open_bytes(path: Union[str, Path]) -> IO[bytes]:
    """The decompressed bytes of a gzip or xz file, the bytes of any other file or pipe.

    The stream has `read1`, so that a reader can keep what was decompressed
    before a truncation (`read(n)` drops it).
    """
    f = open(path, "rb")
    try:
        head = f.read(_HEAD)
        if f.seekable():
            f.seek(0)
        else:
            f = unread(head, f)
        unread_as = next((what for magic, what in _UNREAD.items() if head.startswith(magic)), None)
        if unread_as is not None:
            raise UnreadCompression(unread_as)
        name = _compression_of(head)
        if name == "gzip":
            return _GzipReader(f)  # type: ignore[return-value]
        if name == "xz":
            return _XzReader(f)  # type: ignore[return-value]
        return f
    except BaseException:
        f.close()
        raise


class _ClosingSource:
    """Closes the stream it decompresses, which GzipFile and LZMAFile leave open when given one."""

    _source: IO[bytes]

    def close(self) -> None:
        try:
            super().close()  # type: ignore[misc]
        finally:
            self._source.close()


class _GzipReader(_ClosingSource, gzip.GzipFile):
    def __init__(self, source: IO[bytes]) -> None:
        self._source = source
        super().__init__(fileobj=source, mode="rb")


class _XzReader(_ClosingSource, lzma.LZMAFile):
    def __init__(self, source: IO[bytes]) -> None:
        self._source = source
        super().__init__(source, "rb")


def unread(head: bytes, stream: IO[bytes]) -> IO[bytes]:
    """`stream` with `head`, the bytes read from it so far, given back: a pipe's first bytes read to
    tell what it holds (a pipe cannot seek). Closing it closes `stream`."""
    return io.BufferedReader(_Unread(head, stream))  # type: ignore[return-value]


class _Unread(io.RawIOBase):
    """The raw stream of `unread`: `head`, then the rest of `stream`."""

    def __init__(self, head: bytes, stream: IO[bytes]) -> None:
        super().__init__()
        self._head = memoryview(head)  # sliced without a copy
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def, override]
        if not self._head:
            # read1: a GzipFile's readinto (its read) drops what it decompressed before a truncation.
            data = self._stream.read1(len(buffer))  # type: ignore[attr-defined]
            buffer[:len(data)] = data
            return len(data)
        size = min(len(buffer), len(self._head))
        buffer[:size] = self._head[:size]
        self._head = self._head[size:] if size < len(self._head) else memoryview(b"")  # the head let go
        return size

    def close(self) -> None:
        self._stream.close()
        super().close()


def is_system_error(error: Exception) -> bool:
    """An error of the system reading a file (permission denied, an I/O error),
    not of its content: an OSError with an errno. A corrupt file's errors carry
    none (gzip's BadGzipFile, pyarrow's)."""
    return isinstance(error, OSError) and error.errno is not None


def describe_error(path: Union[str, Path], error: Exception) -> str:
    """What a reading error says about the file: 'truncated xz file', 'corrupt gzip data (...)', or the error."""
    if is_system_error(error):
        return error.strerror or str(error)  # type: ignore[attr-defined]
    if isinstance(error, UnreadCompression):
        return str(error)
    try:
        name = compression(path) or "compressed"
    except OSError:
        return str(error)
    if isinstance(error, EOFError):
        return f"truncated {name} file"
    return f"corrupt {name} data ({error})"
