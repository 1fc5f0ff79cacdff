"""Reading corpus files: plain, gzipped or xz-compressed UTF-8, CRLF line ends, a BOM.

The compression is told by the file's first bytes, not its name
(`spacy_bioner.compressed`). Bad input raises `ConversionError` with a
one-line message naming the file and line; a truncated or corrupt `.gz` or
`.xz` is an error, never a silent cut.
"""

from pathlib import Path
from typing import List, Union

from ..compressed import DECOMPRESSION_ERRORS, describe_error, is_system_error, open_bytes
from .report import ConversionError

PathLike = Union[str, Path]

READ_CHUNK = 1 << 20


def read_lines(path: PathLike) -> List[str]:
    """The lines of a plain, gzipped or xz-compressed UTF-8 file, without line ends or BOM."""
    path = Path(path)
    data = _read_decompressed(path)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise ConversionError(
            f"{path}:{line}: not UTF-8 text (byte {data[e.start]:#04x} at offset {e.start})"
        ) from None
    if not text.strip():
        raise ConversionError(f"{path}:1: empty file")
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def _read_decompressed(path: Path) -> bytes:
    """The file's decompressed bytes; a truncated or corrupt file is an error naming the line it reached."""
    chunks: List[bytes] = []

    def line() -> int:  # the line the decompressed text has reached
        return sum(chunk.count(b"\n") for chunk in chunks) + 1

    try:
        with open_bytes(path) as f:
            # read1: what was decompressed before a truncation is kept, for the line number.
            for chunk in iter(lambda: f.read1(READ_CHUNK), b""):  # type: ignore[attr-defined]
                chunks.append(chunk)
    except (OSError, *DECOMPRESSION_ERRORS) as e:
        if is_system_error(e):
            raise ConversionError(f"{path}: cannot read file: {describe_error(path, e)}") from None
        where = f" (ends inside line {line()})" if isinstance(e, EOFError) else ""
        raise ConversionError(f"{path}:{line()}: {describe_error(path, e)}{where}") from None
    return b"".join(chunks)
