"""DocBin files: written atomically, as documents come, to one file or a folder of them; read back;
copied without annotation.

A corpus too large to hold in memory is written as a folder of .spacy files
(`DocBinWriter` with `shard_size`), which spaCy's `Corpus` reads as one
corpus, in file name order, and so do this package's readers (`docbin_files`).
"""

import errno
import re
import shutil
import warnings
from itertools import islice
from pathlib import Path
from typing import Callable, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

from spacy.tokens import Doc, DocBin
from spacy.training.corpus import walk_corpus
from spacy.vocab import Vocab

from ..files import atomic_write_all, replace_folder, staging_folder, write_synced
from ..messages import counted

# The name of a folder's files: their order, the documents' order, is that of their names.
SHARD_NAME = "{:06d}.spacy"
_SHARD_NAME = re.compile(r"\d{6}\.spacy")


def not_written_by_writer(folder: Path) -> Optional[Path]:
    """The first entry of `folder` that no `DocBinWriter` writes (anything but its numbered .spacy
    files), or None: a folder a writer may replace whole."""
    return next((entry for entry in sorted(folder.iterdir())
                 if not (_SHARD_NAME.fullmatch(entry.name) and entry.is_file() and not entry.is_symlink())), None)


class DocBinWriter:
    """Documents written to a .spacy output as they come, complete or not at all (`commit_docbins`).

    To one file, its DocBin (a few arrays a document) held until the commit;
    or, with `shard_size`, to a folder of files of at most that many
    documents each, each written as it fills into a folder beside `path` that
    the commit puts in its place: memory holds one file's documents, however
    large the corpus (DocBin.to_bytes takes about four times the DocBin's
    memory). A folder at `path` is replaced whole.
    """

    def __init__(self, path: Union[str, Path], shard_size: int = 0) -> None:
        if shard_size < 0:
            raise ValueError(f"shard_size must be 0 (one file) or more, not {shard_size}")
        self.path = Path(path)
        self.shard_size = shard_size
        self.n_docs = 0
        self._docbin = DocBin(store_user_data=True)
        self._shards = 0
        self._staged: Optional[Path] = None  # the folder of the files written so far

    def add(self, doc: Doc) -> None:
        """Add `doc` (with its user_data): in the next file of a folder, written once it is full."""
        self._docbin.add(doc)
        self.n_docs += 1
        if self.shard_size and len(self._docbin) == self.shard_size:
            self._write_shard()

    def _write_shard(self) -> None:
        if self._staged is None:
            self._staged = staging_folder(self.path)
        write_synced(self._staged / SHARD_NAME.format(self._shards), self._docbin.to_bytes())
        self._shards += 1
        self._docbin = DocBin(store_user_data=True)

    def described(self) -> str:
        """What was written: "N docs", and for a folder, in how many files."""
        docs = counted(self.n_docs, "doc")
        return f"{docs} in {counted(self._shards, 'file')}" if self.shard_size else docs

    def stage(self) -> Optional[Tuple[Path, Callable[[Path], None]]]:
        """Write what is left but the rename: a folder's last file (a folder of no documents has one
        empty file, so that it reads as an empty corpus); for a file, its path and its writer for
        `atomic_write_all`."""
        if not self.shard_size:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            data = self._docbin.to_bytes()
            return self.path, lambda tmp: tmp.write_bytes(data)
        if self.path.exists() and not self.path.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, "a file where a folder of .spacy files is to go", str(self.path))
        if len(self._docbin) or self._staged is None:
            self._write_shard()
        return None

    def put_in_place(self) -> None:
        """Rename a staged folder into place (a file's rename is `atomic_write_all`'s)."""
        if self._staged is not None:
            replace_folder(self._staged, self.path)
            self._staged = None

    def discard(self) -> None:
        """Remove what was written and not put in place (nothing of `path` is touched); forget the
        documents added."""
        if self._staged is not None and self._staged.exists():
            shutil.rmtree(self._staged)
        self._staged = None
        self._docbin = DocBin(store_user_data=True)


def commit_docbins(writers: Sequence[DocBinWriter]) -> None:
    """Put each writer's output in its place, all or none: every file written (the folders' last
    files, then the single files, renamed as `atomic_write_all` does) before the folders are renamed
    into place. What is not put in place is discarded, whatever fails."""
    try:
        files = [writer.stage() for writer in writers]
        atomic_write_all([file_ for file_ in files if file_ is not None])
        for writer in writers:
            writer.put_in_place()
    finally:
        for writer in writers:
            writer.discard()


def write_docbin(docs: Iterable[Doc], path: Union[str, Path]) -> Path:
    """Write `docs` (with user_data) to a .spacy file, atomically (`commit_docbins`): complete, or,
    whatever fails, the file as it was; its folder is made."""
    writer = DocBinWriter(path)
    for doc in docs:
        writer.add(doc)
    commit_docbins([writer])
    return writer.path


def gold_token_doc(vocab: Vocab, reference: Doc) -> Doc:
    """An unannotated copy with the reference's tokens and sentence starts."""
    return Doc(
        vocab,
        words=[t.text for t in reference],
        spaces=[bool(t.whitespace_) for t in reference],
        sent_starts=[t.is_sent_start for t in reference] if reference.has_annotation("SENT_START") else None,
    )


def docbin_files(path: Union[str, Path]) -> List[Path]:
    """The .spacy files of a corpus: `path` itself, or the .spacy files of the folder `path` and its
    subfolders in name order (spaCy's `walk_corpus`, as its Corpus reads them; hidden ones left out).
    ValueError where the folder has none."""
    path = Path(path)
    if not path.is_dir():
        return [path]
    with warnings.catch_warnings():  # spaCy's W090 where there is none: the error below says it
        warnings.filterwarnings("ignore", message=r"\[W090\]")
        files = [file_ for file_ in walk_corpus(path, ".spacy") if file_.is_file()]
    if not files:
        raise ValueError(f"{path}: a folder without .spacy files; convert a corpus file with "
                         "`python -m spacy_bioner convert`")
    return files


def read_docbin(path: Union[str, Path]) -> DocBin:
    """The DocBin of the .spacy file `path`; a ValueError naming the file where it is none.

    Not spaCy's message, which advises `spacy convert`: that reads the BC5CDR
    IOB form, but neither JNLPBA's documents nor PubTator (see iob.py, pubtator.py).
    """
    try:
        return DocBin().from_disk(path)
    except ValueError:
        raise ValueError(
            f"{path}: not a .spacy (DocBin) file; convert a corpus file with `python -m spacy_bioner convert`"
        ) from None


def iter_docs(path: Union[str, Path], vocab: Vocab) -> Iterator[Doc]:
    """The documents of a .spacy file, or of a folder of them (`docbin_files`), one file in memory at a time."""
    for file_ in docbin_files(path):
        yield from read_docbin(file_).get_docs(vocab)


def load_docs(path: Union[str, Path], vocab: Vocab, limit: int = 0) -> List[Doc]:
    """The documents of a .spacy file or a folder of them (the first `limit`, if given).

    Raises ValueError, naming the file, where it is not a DocBin.
    """
    docs = iter_docs(path, vocab)
    return list(islice(docs, limit) if limit else docs)
