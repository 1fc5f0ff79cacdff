#!/usr/bin/env python
"""Filter the unlabeled pretraining collection of every line that overlaps evaluation text.

    python scripts/filter_unlabeled.py                # defaults: see --help

Reads the source collection (one sentence a line, gzipped), the evaluation
text of the embedded corpora under `--assets` (JNLPBA dev = the last 200
abstracts of the training file, JNLPBA test, BC5CDR dev and test both as
PubTator documents and as IOB sentences, read with the package's own
readers) and writes the collection without the lines that overlap it. Both
sides are compared lower-cased with all whitespace removed and the Penn
Treebank quotes of JNLPBA (`` and '') read as the plain " of the collection
("normalised"), so that tokenisation differences (`IL - 2` against `IL-2`,
``octamer'' against "octamer") do not matter.
A line is dropped when

  (a) "inside": its normalised form has at least --min-chars characters and
      is a substring of a normalised evaluation document (a JNLPBA abstract,
      a BC5CDR PubTator title+abstract) or sentence (a BC5CDR IOB sentence);
  (b) "contains": a normalised evaluation sentence of at least --min-chars
      characters is a substring of the line (for such sentences this
      includes the equality rule of the original filter).

Rule (a) catches what the original equality filter missed where JNLPBA has
two sentences on one line, and the quote folding the sentences it missed
for their quotes. Candidates are found by indexing the first --min-chars
characters of one side in a dict and sliding a window of that width over
the other; each candidate is confirmed with a real substring test.

The kept lines are written byte-identical and in their order, xz-compressed
(a third smaller than gzip: the file travels to the GPU machine with the
repository); an xz file holds no name or time, so the same inputs (and
liblzma) give the same bytes. It prints what it dropped, by rule
and by evaluation source (a line matching several sources is counted under
each), the counts and the MD5 of the written file and of its uncompressed
text. Run it from the repository root: the defaults are relative to it.
"""

import argparse
import bisect
import gzip
import hashlib
import lzma
import sys
from pathlib import Path
from typing import Dict, List, Sequence, Set, Tuple

from spacy_bioner.corpora import JNLPBA_DEV_DOCS, read_iob, read_jnlpba, read_pubtator, split_dev
from spacy_bioner.pretraining import DEFAULT_ASSETS, DEFAULT_TEXT, JNLPBA_TEST, JNLPBA_TRAIN

DEFAULT_SOURCE = Path("../shared/datasets/unlabeled/biomed-sentences.txt.gz")
BC5CDR_PUBTATOR = "bc5cdr/pubtator/CDR_{}Set.PubTator.txt.gz"  # Development, Test
BC5CDR_IOB = "bc5cdr/iob/{}.tsv.gz"  # devel, test
DEFAULT_MIN_CHARS = 40
# Never in normalised text (whitespace is removed): joins texts without
# creating matches across their boundaries.
SEPARATOR = "\n"


def normalise(text: str) -> str:
    """Lower-cased, all whitespace removed, and the Penn Treebank quotes of
    JNLPBA (`` and '') read as the plain double quote of the collection."""
    return "".join(text.split()).lower().replace("``", '"').replace("''", '"')


class EvalSource:
    """One source of evaluation text: containers (documents, or sentences
    where a corpus has no documents) for rule (a), sentences for rule (b)."""

    def __init__(self, name: str, containers: Sequence[str], sentences: Sequence[str]) -> None:
        self.name = name
        self.containers = [normalise(text) for text in containers]
        self.sentences = [normalise(text) for text in sentences]


def read_eval_sources(assets: Path) -> List[EvalSource]:
    """The dev and test text of JNLPBA and BC5CDR, as the package reads it."""
    from spacy_bioner.tokenizer import make_bio_nlp

    nlp = make_bio_nlp()
    jnlpba_train, _ = read_jnlpba(assets / JNLPBA_TRAIN, nlp.vocab)
    _, jnlpba_dev = split_dev(jnlpba_train, JNLPBA_DEV_DOCS)
    jnlpba_test, _ = read_jnlpba(assets / JNLPBA_TEST, nlp.vocab)
    docs = [("JNLPBA dev", jnlpba_dev), ("JNLPBA test", jnlpba_test)]
    for split, name in (("Development", "dev"), ("Test", "test")):
        docs.append((f"BC5CDR {name} (PubTator)", read_pubtator(assets / BC5CDR_PUBTATOR.format(split), nlp)[0]))
    for split, name in (("devel", "dev"), ("test", "test")):
        # No document boundaries in these files: one Doc per sentence.
        docs.append((f"BC5CDR {name} (IOB)", read_iob(assets / BC5CDR_IOB.format(split), nlp.vocab)[0]))
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
    lines: Sequence[str], sources: Sequence[EvalSource], min_chars: int
) -> Tuple[List[bool], Dict[Tuple[str, str], Set[int]]]:
    """Which lines to keep, and the dropped line indices by (rule, source name)."""
    normalised = [normalise(line) for line in lines]
    containers = [(source.name, text) for source in sources for text in source.containers]
    sentences = [(source.name, text) for source in sources for text in source.sentences]
    hits: Dict[Tuple[str, str], Set[int]] = {
        (rule, source.name): set() for rule in ("inside", "contains") for source in sources
    }
    # (a) the line inside a container; (b) a sentence inside the line.
    for line, c in find_inside(normalised, [text for _, text in containers], min_chars):
        hits[("inside", containers[c][0])].add(line)
    for s, line in find_inside([text for _, text in sentences], normalised, min_chars):
        hits[("contains", sentences[s][0])].add(line)
    dropped = set().union(*hits.values())
    return [i not in dropped for i in range(len(lines))], hits


def write_xz(path: Path, data: bytes) -> None:
    """xz at its strongest preset, with a CRC64 of the text."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(lzma.compress(data, preset=9 | lzma.PRESET_EXTREME, check=lzma.CHECK_CRC64))


def main(argv: Sequence[str] = ()) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--source", type=Path, default=DEFAULT_SOURCE,
        help=f"the unfiltered collection, gzipped, one sentence a line (default: {DEFAULT_SOURCE})",
    )
    parser.add_argument(
        "--output", type=Path, default=DEFAULT_TEXT,
        help=f"where to write the filtered collection (default: {DEFAULT_TEXT}); may not be --source",
    )
    parser.add_argument(
        "--assets", type=Path, default=DEFAULT_ASSETS,
        help=f"the embedded corpora, read for their dev and test text (default: {DEFAULT_ASSETS})",
    )
    parser.add_argument(
        "--min-chars", type=int, default=DEFAULT_MIN_CHARS,
        help="the shortest normalised text (line or evaluation sentence) that the containment rules "
        "apply to (default: %(default)s, about six words). Shorter strings are common phrases that "
        "unrelated abstracts share ('in the presence of interleukin-2'), so a match would say nothing "
        "about leaked text, and shorter lines are mostly headings and fragments; at 40 a line found "
        "inside evaluation text is that text. An evaluation 'sentence' this long can still be a bare "
        "term (JNLPBA test has 'Granulocyte-macrophage colony-stimulating factor .', which drops two "
        "lines that mention it): rule (b) errs on the safe side",
    )
    parser.add_argument(
        "--show", action="store_true",
        help="also print each dropped line: its line number, the rules and sources it matched, its text",
    )
    args = parser.parse_args(list(argv) or None)
    if args.min_chars < 1:
        parser.error("--min-chars must be at least 1")
    if args.source.resolve() == args.output.resolve():
        parser.error("--output must not be --source (the source is read again by the next run)")

    raw = gzip.decompress(args.source.read_bytes())
    if not raw.endswith(b"\n"):
        raw += b"\n"
    raw_lines = raw.split(b"\n")[:-1]
    lines = [line.decode("utf-8") for line in raw_lines]
    sources = read_eval_sources(args.assets)
    keep, hits = filter_lines(lines, sources, args.min_chars)
    kept = [line + b"\n" for line, k in zip(raw_lines, keep) if k]
    write_xz(args.output, b"".join(kept))

    dropped = len(lines) - len(kept)
    print(f"{args.source}: {len(lines):,} lines; dropped {dropped:,} (--min-chars {args.min_chars})")
    for rule, what in (("inside", "line inside an evaluation document/sentence"),
                       ("contains", "line contains an evaluation sentence")):
        lines_by_rule = set().union(*(found for (r, _), found in hits.items() if r == rule))
        print(f"  ({'a' if rule == 'inside' else 'b'}) {what}: {len(lines_by_rule):,} lines")
        for source in sources:
            print(f"      {source.name}: {len(hits[(rule, source.name)]):,}")
    print("  by source (either rule):")
    for source in sources:
        either = hits[("inside", source.name)] | hits[("contains", source.name)]
        print(f"      {source.name}: {len(either):,}")
    if args.show:
        for i in sorted(set().union(*hits.values())):
            why = "; ".join(f"{rule} {name}" for (rule, name), found in hits.items() if i in found)
            print(f"  line {i + 1} [{why}]: {lines[i]}")
    tokens = sum(len(line.split()) for line in kept)
    print(f"{args.output}: {len(kept):,} lines, {tokens:,} tokens, "
          f"MD5 {hashlib.md5(args.output.read_bytes()).hexdigest()} "
          f"(uncompressed {hashlib.md5(b''.join(kept)).hexdigest()})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
