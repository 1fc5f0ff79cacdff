"""Reading corpus files: plain or gzipped UTF-8, CRLF line ends, a BOM.

Bad input raises `ConversionError` with a one-line message naming the file
and line; a truncated or corrupt `.gz` is an error, never a silent cut.
"""

import zlib
from pathlib import Path
from typing import List, Union

from .report import ConversionError

PathLike = Union[str, Path]


def read_lines(path: PathLike) -> List[str]:
    """The lines of a plain or gzipped UTF-8 file, without line ends or BOM."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ConversionError(f"{path}: cannot read file: {e.strerror or e}") from None
    if data[:2] == b"\x1f\x8b":
        data = _gunzip(path, data)
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


def _gunzip(path: Path, data: bytes) -> bytes:
    """Decompress all gzip members; a truncated or corrupt file is an error."""
    out: List[bytes] = []
    while data:
        decomp = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            out.append(decomp.decompress(data))
        except zlib.error as e:
            line = b"".join(out).count(b"\n") + 1
            raise ConversionError(f"{path}:{line}: corrupt gzip data ({e})") from None
        if not decomp.eof:
            line = b"".join(out).count(b"\n") + 1
            raise ConversionError(f"{path}:{line}: truncated .gz file (ends inside line {line})")
        data = decomp.unused_data.lstrip(b"\x00")
    return b"".join(out)
