"""Reading corpus files: plain, gzipped or xz-compressed UTF-8, CRLF line ends, a BOM.

The compression is told by the file's first bytes, not its name. Bad input
raises `ConversionError` with a one-line message naming the file and line; a
truncated or corrupt `.gz` or `.xz` is an error, never a silent cut.
"""

import lzma
import zlib
from pathlib import Path
from typing import Callable, Dict, List, Tuple, Type, Union

from .report import ConversionError

PathLike = Union[str, Path]

# Leading bytes -> (name in messages, a decompressor for one stream or member, its error).
_COMPRESSIONS: Dict[bytes, Tuple[str, Callable, Type[Exception]]] = {
    b"\x1f\x8b": ("gzip", lambda: zlib.decompressobj(wbits=16 + zlib.MAX_WBITS), zlib.error),
    b"\xfd7zXZ\x00": ("xz", lzma.LZMADecompressor, lzma.LZMAError),
}


def read_lines(path: PathLike) -> List[str]:
    """The lines of a plain, gzipped or xz-compressed UTF-8 file, without line ends or BOM."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ConversionError(f"{path}: cannot read file: {e.strerror or e}") from None
    for magic, (name, make_decompressor, error) in _COMPRESSIONS.items():
        if data.startswith(magic):
            data = _decompress(path, data, name, make_decompressor, error)
            break  # one layer of compression, as `gzip -d` or `xz -d` would undo
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


def _decompress(path: Path, data: bytes, name: str, make_decompressor: Callable, error: Type[Exception]) -> bytes:
    """Decompress every member (gzip) or stream (xz); a truncated or corrupt file is an error."""
    out: List[bytes] = []

    def line() -> int:  # the line the decompressed text has reached
        return sum(chunk.count(b"\n") for chunk in out) + 1

    while data:
        decompressor = make_decompressor()
        try:
            out.append(decompressor.decompress(data))
        except error as e:
            raise ConversionError(f"{path}:{line()}: corrupt {name} data ({e})") from None
        if not decompressor.eof:
            raise ConversionError(f"{path}:{line()}: truncated {name} file (ends inside line {line()})")
        # Padding between members/streams: NULs (gzip in the wild, xz's stream padding).
        data = decompressor.unused_data.lstrip(b"\x00")
    return b"".join(out)
