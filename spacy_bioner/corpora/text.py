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
from enum import Enum
from pathlib import Path
from typing import IO, Any, Dict, Iterable, Iterator, List, Optional, Tuple, Union

from ..compressed import DECOMPRESSION_ERRORS, describe_error, is_system_error, open_bytes, unread
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
    ends or BOMs (a file's, or one at a line's start), read a MiB at a time:
    the file is never in memory whole. Its errors are `ConversionError`s naming
    the line (an empty file is one, raised once the file has been read; a
    carriage return other than a CRLF's is one too)."""
    path = Path(path)
    blank = True
    with _open(path) as f:
        for number, text in _numbered_lines(path, f):
            text = text[:-1] if text.endswith("\r") else text
            # A BOM that starts a line is the start of another file (`cat a.tsv b.tsv`), no text.
            text = text[1:] if text.startswith("\ufeff") else text
            if "\r" in text:  # CR line ends: the lines they end would be read as one, columns lost
                raise ConversionError(
                    f"{path}:{number}: carriage return inside a line: convert CR line ends to LF"
                )
            blank = blank and not text.strip()
            yield text
    if blank:
        raise ConversionError(f"{path}:1: empty file")


def _numbered_lines(path: Path, f: IO[bytes]) -> Iterator[Tuple[int, str]]:
    """(number, text) of the lines of the decompressed stream `f`, cut at "\n" alone (a carriage
    return kept), without the BOM, decoded a MiB at a time."""
    offset = 0  # decompressed bytes decoded so far
    line = 1  # the line the decoded text has reached
    pending: List[bytes] = []  # a line begun but not ended in the chunks read (no line end in them)
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
        yield from enumerate(lines, start=line)
        offset += len(block)
        line += block.count(b"\n")
        if not chunk:
            break


def iter_json_values(path: PathLike, stream: Optional[IO[bytes]] = None) -> Iterator[Tuple[Any, str]]:
    """The JSON of a plain, gzipped or xz-compressed UTF-8 file: the file as one value, or JSON
    Lines (a value a line), each with where it is ("PATH" or "PATH:LINE"). Its errors are
    `ConversionError`s naming the line. `stream`: the file's decompressed bytes, opened already.

    JSON Lines are read a line at a time, a file of one value whole. A file is JSON Lines where its
    first line that is not blank is a JSON value, and another line is not blank."""
    path = Path(path)
    with _open(path) if stream is None else contextlib.nullcontext(stream) as f:
        head, form, first = _sniff_json(path, f)
        if form is _JsonForm.LINES:
            yield from _json_lines(path, _numbered_lines(path, unread(head, f)))
            return
        # The value held alone while it is converted, not the bytes it was read from.
        values = [(first, str(path))] if form is _JsonForm.VALUE else _whole_json(path, head, f)
        del head, first
    yield from values


class _JsonForm(Enum):
    """What the first lines of a JSON file tell (`_sniff_json`)."""

    LINES = "JSON Lines: the first line that is not blank is a value, and another line is not blank"
    VALUE = "one value on the first line that is not blank, and the others blank"
    WHOLE = "for the whole file to tell: a value over several lines, or an error"


# JSON's whitespace within a line, where str.strip() takes more (a form feed, U+00A0, U+2028).
_JSON_SPACE = " \t\r"


def _sniff_json(path: Path, f: IO[bytes]) -> Tuple[bytearray, _JsonForm, Any]:
    """The bytes read of `f`, the file's form, as a parse of the whole file would tell it, and the
    first value where it is VALUE. No more is read than tells, and each byte is looked at once."""
    head = bytearray()
    line = 1  # the line the bytes read have reached
    start = searched = 0  # where the line being read begins, and where the search for its end goes on
    first: Any = None
    read_first = False
    at_end = False
    while not at_end:
        chunk = _read_chunk(path, f, line)
        at_end = not chunk
        head += chunk
        line += chunk.count(b"\n")
        if start == 0 and head.startswith(codecs.BOM_UTF8):
            start = searched = len(codecs.BOM_UTF8)
        while start <= len(head):
            end = head.find(b"\n", searched)
            if end < 0 and not at_end:
                searched = len(head)
                break  # the line goes on in the next chunk
            end = len(head) if end < 0 else end
            try:
                text = head[start:end].decode("utf-8")
            except UnicodeDecodeError:
                return head, _JsonForm.WHOLE, None
            start = searched = end + 1
            if not text.strip():
                if text.strip(_JSON_SPACE):  # blank to str.strip(), not to JSON: an error, or JSON Lines
                    return head, _JsonForm.LINES if read_first else _JsonForm.WHOLE, None
                continue
            if read_first:
                return head, _JsonForm.LINES, None
            try:
                first, read_first = json.loads(text), True
            except json.JSONDecodeError:
                return head, _JsonForm.WHOLE, None
    return head, _JsonForm.VALUE if read_first else _JsonForm.WHOLE, first


def _whole_json(path: Path, head: bytearray, f: IO[bytes]) -> List[Tuple[Any, str]]:
    """The value of the whole file, `head` and the rest of `f` (`head` emptied once decoded); the
    error of the first line that is no value where it holds several values."""
    line = 1 + head.count(b"\n")
    while True:
        chunk = _read_chunk(path, f, line)
        if not chunk:
            break
        head += chunk
        line += chunk.count(b"\n")
    bom = len(codecs.BOM_UTF8) if head.startswith(codecs.BOM_UTF8) else 0
    text = _decode(path, head[bom:], bom, 1)
    head.clear()
    try:
        return [(json.loads(text), str(path))]
    except json.JSONDecodeError as e:
        if e.msg != "Extra data":
            raise ConversionError(f"{path}:{e.lineno}: not JSON ({e.msg})") from None
    # Lines end at "\n" alone, as `iter_lines` reads them: a JSON string may hold U+2028 or U+0085 raw.
    return list(_json_lines(path, enumerate(text.split("\n"), start=1)))


def _json_lines(path: Path, lines: Iterable[Tuple[int, str]]) -> Iterator[Tuple[Any, str]]:
    """The value of each numbered line that is not blank, with where it is ("PATH:LINE")."""
    for lineno, text_line in lines:
        if text_line.strip():
            try:
                yield json.loads(text_line), f"{path}:{lineno}"
            except json.JSONDecodeError as e:
                raise ConversionError(f"{path}:{lineno}: not JSON ({e.msg}; one JSON value a line)") from None


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
        utf16 = offset == 0 and block.startswith((b"\xff\xfe", b"\xfe\xff"))
        raise ConversionError(
            f"{path}:{line}: not UTF-8 text (byte {block[e.start]:#04x} at offset {offset + e.start})"
            + (": UTF-16 (its byte order mark), save it as UTF-8" if utf16 else ": save it as UTF-8")
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
