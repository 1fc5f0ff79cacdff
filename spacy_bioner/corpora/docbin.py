"""DocBin files: written atomically, read back, and copied without annotation."""

from pathlib import Path
from typing import Iterable, List, Sequence, Tuple, Union

from spacy.tokens import Doc, DocBin
from spacy.vocab import Vocab

from ..files import atomic_write_all


def write_docbin(docs: Iterable[Doc], path: Union[str, Path]) -> Path:
    """Write `docs` (with user_data) to a .spacy file, atomically.

    The file appears complete or not at all: it is written to a temporary
    file in the same directory and then renamed over `path`.
    """
    return write_docbins([(docs, path)])[0]


def write_docbins(outputs: Sequence[Tuple[Iterable[Doc], Union[str, Path]]]) -> List[Path]:
    """`write_docbin` for each (docs, path), all or none: a write that fails (a full disk) leaves
    every file as it was (`files.atomic_write_all`)."""
    files = []
    for docs, path in outputs:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = DocBin(docs=docs, store_user_data=True).to_bytes()
        files.append((path, lambda tmp, data=data: tmp.write_bytes(data)))
    atomic_write_all(files)
    return [path for path, _ in files]


def gold_token_doc(vocab: Vocab, reference: Doc) -> Doc:
    """An unannotated copy with the reference's tokens and sentence starts."""
    return Doc(
        vocab,
        words=[t.text for t in reference],
        spaces=[bool(t.whitespace_) for t in reference],
        sent_starts=[t.is_sent_start for t in reference] if reference.has_annotation("SENT_START") else None,
    )


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


def load_docs(path: Union[str, Path], vocab: Vocab, limit: int = 0) -> List[Doc]:
    """The documents of a .spacy file (the first `limit`, if given).

    Raises ValueError, naming the file, where it is not a DocBin.
    """
    docs = list(read_docbin(path).get_docs(vocab))
    return docs[:limit] if limit else docs
