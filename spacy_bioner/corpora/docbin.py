"""DocBin files: written atomically, read back, and copied without annotation."""

import os
import tempfile
from pathlib import Path
from typing import Iterable, List, Union

from spacy.tokens import Doc, DocBin
from spacy.vocab import Vocab


def write_docbin(docs: Iterable[Doc], path: Union[str, Path]) -> Path:
    """Write `docs` (with user_data) to a .spacy file, atomically.

    The file appears complete or not at all: it is written to a temporary
    file in the same directory and then renamed over `path`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = DocBin(docs=docs, store_user_data=True).to_bytes()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file_:
            file_.write(data)
        # mkstemp creates the file readable by its owner only; give it the
        # mode any new file gets here (umask), as a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return path


def gold_token_doc(vocab: Vocab, reference: Doc) -> Doc:
    """An unannotated copy with the reference's tokens and sentence starts."""
    return Doc(
        vocab,
        words=[t.text for t in reference],
        spaces=[bool(t.whitespace_) for t in reference],
        sent_starts=[t.is_sent_start for t in reference] if reference.has_annotation("SENT_START") else None,
    )


def load_docs(path: Union[str, Path], vocab: Vocab, limit: int = 0) -> List[Doc]:
    """The documents of a .spacy file (the first `limit`, if given)."""
    docs = list(DocBin().from_disk(path).get_docs(vocab))
    return docs[:limit] if limit else docs
