"""The dev and test text of the task corpora, which pretraining text must not hold.

Masked-LM pretraining on the abstracts a pipeline is then scored on (their
text, not their labels) lets the encoder learn the evaluation text, and the
scores after it are no longer those of unseen text. A PubMed dump holds the
JNLPBA and BC5CDR abstracts, so `pretrain` drops the lines of its `--text`
files that overlap their dev or test text (`--keep-eval-text` keeps them);
the embedded collection was filtered with the same rules
(`scripts/filter_unlabeled.py`).

Both sides are compared lower-cased with all whitespace removed and the Penn
Treebank quotes of JNLPBA (`` and '') read as the plain " ("normalised"),
so that tokenisation differences (`IL - 2` against `IL-2`) do not matter,
and in the ASCII of the corpora: PubMed writes "±", "≥", "α" and en dashes
where the corpora have "+/-", ">=", "alpha" and "-" (NFKC, then
`ASCII_FORMS`). A line overlaps when

  (a) "inside": its normalised form has at least `min_chars` characters and
      is a substring of a normalised evaluation document (a JNLPBA abstract,
      a BC5CDR PubTator title+abstract) or sentence (a BC5CDR IOB sentence);
  (b) "contains": a normalised evaluation sentence of at least `min_chars`
      characters is a substring of the line (a one-abstract-a-line file
      holding an evaluation abstract).

Shorter strings are common phrases that unrelated abstracts share ("in the
presence of interleukin-2"); at 40 characters a line found inside
evaluation text is that text. Candidates are found by indexing the first
`min_chars` characters of one side in a dict and sliding a window of that
width over the other; each is confirmed with a real substring test. The
cost grows with the text: rule (b) looks a window up at every character of
it, and rule (a) passes over the evaluation text (about 3M characters) once
for each chunk of lines checked together. This is written here, not taken
from a deduplication library: those (datasketch's MinHash, text-dedup's
suffix arrays) find near-duplicate documents or long repeated spans across
a whole corpus, not an exact sentence inside a line against a small fixed
set.
"""

import bisect
import unicodedata
from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Set, Tuple

from ..corpora import read_iob, read_pubtator
from ..corpora.text import PathLike
from .settings import PretrainError
from .text import JNLPBA_TEST, JNLPBA_TRAIN, read_jnlpba_splits

# Relative to the assets directory (DEFAULT_ASSETS), as JNLPBA's: its dev
# split is the last JNLPBA_DEV_DOCS abstracts of its training file.
BC5CDR_PUBTATOR = {"dev": Path("bc5cdr/pubtator/CDR_DevelopmentSet.PubTator.txt.xz"),
                   "test": Path("bc5cdr/pubtator/CDR_TestSet.PubTator.txt.xz")}
BC5CDR_IOB = {"dev": Path("bc5cdr/iob/devel.tsv.xz"), "test": Path("bc5cdr/iob/test.tsv.xz")}
EVALUATION_TEXT_FILES = (JNLPBA_TRAIN, JNLPBA_TEST, *BC5CDR_PUBTATOR.values(), *BC5CDR_IOB.values())
DEFAULT_MIN_CHARS = 40
# Never in normalised text (whitespace is removed): joins texts without
# creating matches across their boundaries.
SEPARATOR = "\n"
RULES = ("inside", "contains")


def _ascii_forms() -> Dict[int, str]:
    """The corpora's ASCII for what PubMed writes otherwise: symbols, dashes, quotes, Greek letters
    by name ("α" alpha; "μ", also NFKC's micro sign, as "micro": a unit far more often than a letter)."""
    forms = {"±": "+/-", "≥": ">=", "≤": "<=", "×": "x", "‘": "'", "’": "'", "“": '"', "”": '"',
             **dict.fromkeys("‐‑‒–—―−", "-")}
    for code in range(0x391, 0x3CA):
        words = unicodedata.name(chr(code), "").split()
        if len(words) == 4 and words[:3] in (["GREEK", "SMALL", "LETTER"], ["GREEK", "CAPITAL", "LETTER"]):
            forms[chr(code)] = {"LAMDA": "lambda"}.get(words[3], words[3].lower())
    forms["μ"] = "micro"
    return {ord(char): form for char, form in forms.items()}


ASCII_FORMS = _ascii_forms()


def normalise(text: str) -> str:
    """Lower-cased, all whitespace removed, the Penn Treebank quotes of JNLPBA
    (`` and '') read as the plain double quote, and in ASCII forms (NFKC, then
    ASCII_FORMS)."""
    text = unicodedata.normalize("NFKC", text).translate(ASCII_FORMS)
    return "".join(text.split()).lower().replace("``", '"').replace("''", '"')


class EvalSource:
    """One source of evaluation text: containers (documents, or sentences
    where a corpus has no documents) for rule (a), sentences for rule (b)."""

    def __init__(self, name: str, containers: Sequence[str], sentences: Sequence[str]) -> None:
        self.name = name
        self.containers = [normalise(text) for text in containers]
        self.sentences = [normalise(text) for text in sentences]


def missing_evaluation_files(assets: PathLike) -> List[Path]:
    """The files of `EVALUATION_TEXT_FILES` that `assets` lacks."""
    return [Path(assets) / name for name in EVALUATION_TEXT_FILES if not (Path(assets) / name).is_file()]


def read_eval_sources(assets: PathLike) -> List[EvalSource]:
    """The dev and test text of JNLPBA and BC5CDR under `assets`, as the package reads it
    (PretrainError, before anything is read, where a file is missing)."""
    from ..tokenizer import make_bio_nlp

    assets = Path(assets)
    missing = missing_evaluation_files(assets)
    if missing:
        raise PretrainError(f"{missing[0]}: not found, where the dev and test text is read from")
    nlp = make_bio_nlp()
    _, jnlpba_dev, jnlpba_test = read_jnlpba_splits(assets, nlp.vocab)
    docs = [("JNLPBA dev", jnlpba_dev), ("JNLPBA test", jnlpba_test)]
    for split, path in BC5CDR_PUBTATOR.items():
        docs.append((f"BC5CDR {split} (PubTator)", read_pubtator(assets / path, nlp)[0]))
    for split, path in BC5CDR_IOB.items():
        # No document boundaries in these files: one Doc per sentence.
        docs.append((f"BC5CDR {split} (IOB)", read_iob(assets / path, nlp.vocab)[0]))
    return [
        EvalSource(name, [doc.text for doc in group], [sent.text for doc in group for sent in doc.sents])
        for name, group in docs
    ]


def _anchor_index(strings: Sequence[str], k: int) -> Dict[str, List[int]]:
    """First k characters -> indices of the strings (of at least k characters) that start so."""
    index: Dict[str, List[int]] = {}
    for i, s in enumerate(strings):
        if len(s) >= k:
            index.setdefault(s[:k], []).append(i)
    return index


def find_inside(needles: Sequence[str], haystacks: Sequence[str], k: int) -> Set[Tuple[int, int]]:
    """(needle index, haystack index) for each needle of at least k characters
    that is a substring of a haystack: the haystacks are joined with SEPARATOR,
    a window of k characters slides over them, and where it equals the start
    of a needle the needle is compared there in full."""
    anchors = _anchor_index(needles, k)
    text = SEPARATOR.join(haystacks)
    starts: List[int] = []
    offset = 0
    for haystack in haystacks:
        starts.append(offset)
        offset += len(haystack) + len(SEPARATOR)
    found: Set[Tuple[int, int]] = set()
    for start in [i for i in range(len(text) - k + 1) if text[i : i + k] in anchors]:
        for n in anchors[text[start : start + k]]:
            if text.startswith(needles[n], start):
                found.add((n, bisect.bisect_right(starts, start) - 1))
    return found


def filter_lines(
    lines: Sequence[str], sources: Sequence[EvalSource], min_chars: int = DEFAULT_MIN_CHARS
) -> Tuple[List[bool], Dict[Tuple[str, str], Set[int]]]:
    """Which lines to keep, and the dropped line indices by (rule, source name)."""
    normalised = [normalise(line) for line in lines]
    containers = [(source.name, text) for source in sources for text in source.containers]
    sentences = [(source.name, text) for source in sources for text in source.sentences]
    hits: Dict[Tuple[str, str], Set[int]] = {(rule, source.name): set() for rule in RULES for source in sources}
    # (a) the line inside a container; (b) a sentence inside the line.
    for line, c in find_inside(normalised, [text for _, text in containers], min_chars):
        hits[("inside", containers[c][0])].add(line)
    for s, line in find_inside([text for _, text in sentences], normalised, min_chars):
        hits[("contains", sentences[s][0])].add(line)
    dropped = set().union(*hits.values())
    return [i not in dropped for i in range(len(lines))], hits


class EvaluationText:
    """The dev and test text under `assets` (`read_eval_sources`), against which lines are checked
    as they stream by. It is read when first needed (`sources`), so that a run that fails before
    it reads its text does not wait for it; `log` says so as it is read."""

    def __init__(self, assets: PathLike, min_chars: int = DEFAULT_MIN_CHARS, chunk_lines: int = 100_000,
                 chunk_chars: int = 10_000_000, sources: Optional[Sequence[EvalSource]] = None,
                 log: Callable[[str], None] = lambda text: None) -> None:
        self.assets = Path(assets)
        self.min_chars = min_chars
        # Rule (a) slides over all the evaluation text once a chunk: larger chunks, fewer passes; a chunk is
        # held about three times over (lines, normalised, joined), so its characters are bounded too.
        self.chunk_lines = chunk_lines
        self.chunk_chars = chunk_chars
        self._sources = None if sources is None else list(sources)
        self.log = log

    @property
    def sources(self) -> List[EvalSource]:
        """The evaluation text, read on first use."""
        if self._sources is None:
            self.log(f"Reading the dev and test text of JNLPBA and BC5CDR under {self.assets}, to drop the lines "
                     "of the text that overlap it")
            self._sources = read_eval_sources(self.assets)
        return self._sources

    def mark(self, lines: Iterable[str]) -> Iterator[Tuple[str, bool]]:
        """(line, whether it overlaps the evaluation text) for each line, in order, a chunk of
        at most `chunk_lines` lines or `chunk_chars` characters (and a line) at a time: a large
        file is never in memory whole."""
        chunk: List[str] = []
        chars = 0
        for line in lines:
            chunk.append(line)
            chars += len(line)
            if len(chunk) == self.chunk_lines or chars >= self.chunk_chars:
                yield from self._marked(chunk)
                chunk, chars = [], 0
        yield from self._marked(chunk)

    def _marked(self, chunk: List[str]) -> Iterator[Tuple[str, bool]]:
        if chunk:
            keep, _ = filter_lines(chunk, self.sources, self.min_chars)
            yield from zip(chunk, (not k for k in keep))
