#!/usr/bin/env python
"""Filter the unlabeled pretraining collection of every line that overlaps evaluation text.

    python scripts/filter_unlabeled.py                # defaults: see --help

Reads the source collection (one sentence a line, gzipped), the evaluation
text of the embedded corpora under `--assets` (JNLPBA dev = the last 200
abstracts of the training file, JNLPBA test, BC5CDR dev and test both as
PubTator documents and as IOB sentences, read with the package's own
readers) and writes the collection without the lines that overlap it, by
the rules that `pretrain` applies to its `--text` files
(spacy_bioner/pretraining/evaluation_text.py): a line is dropped when it
lies inside an evaluation document or sentence ("inside") or holds an
evaluation sentence ("contains"), compared lower-cased without whitespace
in ASCII forms ("±" as "+/-", "α" as "alpha"; the collection is ASCII).

The kept lines are written byte-identical and in their order, xz-compressed
(a third smaller than gzip: the file travels to the GPU machine with the
repository); an xz file holds no name or time, so the same inputs (and
liblzma) give the same bytes. It prints what it dropped, by rule
and by evaluation source (a line matching several sources is counted under
each), the counts and the MD5 of the written file and of its uncompressed
text. Run it from the repository root: the defaults are relative to it.
"""

import argparse
import gzip
import hashlib
import lzma
import sys
from pathlib import Path
from typing import Sequence

from spacy_bioner.pretraining import DEFAULT_ASSETS, DEFAULT_TEXT
from spacy_bioner.pretraining.evaluation_text import DEFAULT_MIN_CHARS, filter_lines, read_eval_sources

DEFAULT_SOURCE = Path("../shared/datasets/unlabeled/biomed-sentences.txt.gz")


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
