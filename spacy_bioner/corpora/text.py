"""Reading corpus files: plain, gzipped or xz-compressed UTF-8, CRLF line ends, a BOM.

The compression is told by the file's first bytes, not its name
(`spacy_bioner.compressed`). Bad input raises `ConversionError` with a
one-line message naming the file and line; a truncated or corrupt `.gz` or
`.xz` is an error, never a silent cut.
"""

import codecs
import contextlib
import hashlib
import json
import re
from pathlib import Path
from typing import IO, Any, Dict, Iterator, List, Optional, Tuple, Union

from ..compressed import DECOMPRESSION_ERRORS, describe_error, is_system_error, open_bytes
from .report import ConversionError

PathLike = Union[str, Path]

READ_CHUNK = 1 << 20
# JSON's "\ud83d" alone decodes to a lone surrogate, which no tokenizer or DocBin can encode.
_SURROGATE = re.compile("[\ud800-\udfff]")


def read_lines(path: PathLike) -> List[str]:
    """The lines of a plain, gzipped or xz-compressed UTF-8 file, without line ends or BOM."""
    return list(iter_lines(path))


def iter_lines(path: PathLike) -> Iterator[str]:
    """The lines of a plain, gzipped or xz-compressed UTF-8 file, without line
    ends or BOM, read a MiB at a time: the file is never in memory whole. Its
    errors are `ConversionError`s naming the line (an empty file is one, raised
    once the file has been read; a carriage return other than a CRLF's is one too)."""
    path = Path(path)
    offset = 0  # decompressed bytes decoded so far
    line = 1  # the line the decoded text has reached
    pending: List[bytes] = []  # a line begun but not ended in the chunks read (no line end in them)
    blank = True
    with _open(path) as f:
        while True:
            chunk = _read_chunk(path, f, line)
            end = chunk.rfind(b"\n") + 1 if chunk else len(chunk)
            if chunk and not end:
                pending.append(chunk)
                continue
            block = b"".join(pending) + chunk[:end]  # whole lines; the last one, at the end of the file
            pending = [chunk[end:]] if chunk[end:] else []
            if offset == 0 and block.startswith(codecs.BOM_UTF8):
                block, offset = block[len(codecs.BOM_UTF8):], len(codecs.BOM_UTF8)
            lines = _decode(path, block, offset, line).split("\n")
            if lines[-1] == "":  # after the block's last line end
                lines.pop()
            for number, text in enumerate(lines, start=line):
                text = text[:-1] if text.endswith("\r") else text
                if "\r" in text:  # CR line ends: the lines they end would be read as one, columns lost
                    raise ConversionError(
                        f"{path}:{number}: carriage return inside a line: convert CR line ends to LF"
                    )
                blank = blank and not text.strip()
                yield text
            offset += len(block)
            line += block.count(b"\n")
            if not chunk:
                break
    if blank:
        raise ConversionError(f"{path}:1: empty file")


def read_json_values(path: PathLike, stream: Optional[IO[bytes]] = None) -> List[Tuple[Any, str]]:
    """The JSON of a plain, gzipped or xz-compressed UTF-8 file: the file as one value, or JSON
    Lines (a value a line), each with where it is ("PATH" or "PATH:LINE"). Its errors are
    `ConversionError`s naming the line. `stream`: the file's decompressed bytes, opened already."""
    path = Path(path)
    chunks: List[bytes] = []
    line = 1
    with _open(path) if stream is None else contextlib.nullcontext(stream) as f:
        while True:
            chunk = _read_chunk(path, f, line)
            if not chunk:
                break
            chunks.append(chunk)
            line += chunk.count(b"\n")
    data = b"".join(chunks)
    bom = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    text = _decode(path, data[bom:], bom, 1)
    try:
        return [(json.loads(text), str(path))]
    except json.JSONDecodeError as e:
        if e.msg != "Extra data":
            raise ConversionError(f"{path}:{e.lineno}: not JSON ({e.msg})") from None
    values = []
    # Lines end at "\n" alone, as `iter_lines` reads them: a JSON string may hold U+2028 or U+0085 raw.
    for lineno, text_line in enumerate(text.split("\n"), start=1):
        if text_line.strip():
            try:
                values.append((json.loads(text_line), f"{path}:{lineno}"))
            except json.JSONDecodeError as e:
                raise ConversionError(f"{path}:{lineno}: not JSON ({e.msg}; one JSON value a line)") from None
    return values


def json_objects(value: Any, key: str, where: str) -> List[Any]:
    """The list of JSON objects under `key` of `value` (none where it is missing or null);
    anything else there is a `ConversionError` naming `where`."""
    items = value.get(key) if isinstance(value, dict) else None
    if items is None:
        return []
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise ConversionError(f"{where}: {key!r} is no list of objects")
    return items


def record_text(record: Dict[str, Any], text_key: str, where: str) -> str:
    """The text in a JSON record's field `text_key`, refused where it is none the tokenizer reads."""
    text = record.get(text_key)
    if not isinstance(text, str) or not text.strip():
        what = "no" if text_key not in record else "an empty" if isinstance(text, str) else "a non-string"
        raise ConversionError(f"{where}: {what} {text_key!r} field (the text; --text-key names another)")
    surrogate = _SURROGATE.search(text)
    if surrogate is not None:
        raise ConversionError(f"{where}: half a UTF-16 pair ({surrogate.group()!a}) at character {surrogate.start()}: "
                              "the text was cut inside a character")
    return text


def json_id(value: Any) -> Optional[str]:
    """A JSON value as a document id: a string or an integer (not a boolean), stripped; None where it
    is none (null, a blank string) or no id (anything else)."""
    if isinstance(value, bool) or not isinstance(value, (str, int)) or not str(value).strip():
        return None
    return str(value).strip()


def text_digest(text: str) -> bytes:
    """A 16-byte digest of `text`, to tell a text given again by: a corpus's texts are not held."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def _decode(path: Path, block: bytes, offset: int, line: int) -> str:
    """`block`, whole lines of the file from byte `offset` and `line`, as text."""
    try:
        return block.decode("utf-8")
    except UnicodeDecodeError as e:
        line += block[: e.start].count(b"\n")
        raise ConversionError(
            f"{path}:{line}: not UTF-8 text (byte {block[e.start]:#04x} at offset {offset + e.start})"
        ) from None


@contextlib.contextmanager
def _open(path: Path) -> Iterator[IO[bytes]]:
    try:
        f = open_bytes(path)
    except OSError as e:
        raise ConversionError(f"{path}: cannot read file: {describe_error(path, e)}") from None
    with f:
        yield f


def _read_chunk(path: Path, f: IO[bytes], line: int) -> bytes:
    """The next decompressed chunk (b"" at the end); a truncated or corrupt file is an error naming
    the `line` the text has reached."""
    try:
        # read1: what was decompressed before a truncation is kept, for the line number.
        return f.read1(READ_CHUNK)  # type: ignore[attr-defined]
    except (OSError, *DECOMPRESSION_ERRORS) as e:
        if is_system_error(e):
            raise ConversionError(f"{path}: cannot read file: {describe_error(path, e)}") from None
        where = f" (ends inside line {line})" if isinstance(e, EOFError) else ""
        raise ConversionError(f"{path}:{line}: {describe_error(path, e)}{where}") from None
