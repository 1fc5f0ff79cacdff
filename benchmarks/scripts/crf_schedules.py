"""The CRF's two schedules side by side: forward-backward and Viterbi, sequential
(one step per token) against parallel (log-depth scans), on the CPU or a GPU.

    python scripts/crf_schedules.py                          # from benchmarks/, on the CPU
    python scripts/crf_schedules.py --gpu-id 0 --output results/crf-schedules.json

Random scores of a head's shape (JNLPBA's labels in the shipped BILUO
scheme, 21 tags, or in IOB2, 11: `--tag-scheme`; the scheme's constraints
plus learned-size transition scores; the parallel schedule's work grows with
the cube of the tags) for batches of B documents
of up to T tokens: a training step's (16 x 128 to 8 x 256 at 2,000 words)
and `nlp.pipe`'s (128 documents). Each call is timed after a warm-up call,
the device synchronised before every clock reading; the median of
`--repeats` is kept. Beside the times, how far the schedules agree: the
largest difference of log Z, marginals and pairwise marginals relative to
each array's scale, and the share of identical Viterbi paths. On a GPU each
schedule is also compared with NumPy's sequential one on the same scores
copied to the host (`*_vs_numpy_*`): the check that the CuPy code paths
compute what the NumPy ones, tested against the oracle, do.
"""

import statistics
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
import typer
from thinc.api import get_current_ops

from run import device_name, log, require_gpu, versions, write_json
from spacy_bioner.layers.crf import forward_backward, viterbi
from spacy_bioner.tags import make_tags, tag_constraints

SCHEDULES = ("sequential", "parallel")
LABELS = ["DNA", "RNA", "cell_line", "cell_type", "protein"]
DEFAULT_SHAPES = ["16x128", "8x256", "128x256", "128x512"]


def parse_shape(text: str) -> Tuple[int, int]:
    """'BxT' as (documents, longest document in tokens)."""
    try:
        n_docs, n_steps = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise typer.BadParameter(f"{text!r}: a shape is DOCUMENTSxTOKENS, e.g. 8x256") from None
    if n_docs < 1 or n_steps < 1:
        raise typer.BadParameter(f"{text!r}: both sizes must be at least 1")
    return n_docs, n_steps


def random_scores(ops, n_docs: int, n_steps: int, seed: int = 0, tag_scheme: str = "BILUO"):
    """Padded float32 emissions on the ops' device, host lengths (T/2 to T,
    one of them T), and the transition, start and end scores."""
    rng = np.random.default_rng(seed)
    tags = make_tags(LABELS, tag_scheme)
    n_tags = len(tags)
    lengths = rng.integers(max(n_steps // 2, 1), n_steps + 1, size=n_docs)
    lengths[0] = n_steps
    mask_transitions, mask_start, mask_end = tag_constraints(tags)
    host = (
        rng.normal(scale=8.0, size=(n_docs, n_steps, n_tags)),
        mask_transitions + rng.normal(scale=3.0, size=(n_tags, n_tags)),
        mask_start + rng.normal(size=n_tags),
        mask_end + rng.normal(size=n_tags),
    )
    emissions, transitions, start, end = (ops.asarray(a.astype("float32")) for a in host)
    return emissions, lengths, transitions, start, end


def synchronize(xp) -> None:
    if xp is not np:
        xp.cuda.Device().synchronize()


def median_ms(call: Callable[[], Any], xp, repeats: int) -> float:
    """Median wall time of `call` in ms, after one untimed call."""
    call()
    times = []
    for _ in range(repeats):
        synchronize(xp)
        start = time.perf_counter()
        call()
        synchronize(xp)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def relative_difference(actual, expected) -> float:
    actual, expected = (np.asarray(a, dtype="float64") for a in (actual, expected))
    scale = max(float(np.abs(expected).max(initial=0.0)), 1.0)
    return float(np.abs(actual - expected).max(initial=0.0)) / scale


def measure_shape(ops, n_docs: int, n_steps: int, repeats: int, tag_scheme: str = "BILUO") -> Dict[str, Any]:
    """Times of both schedules on one shape, and how far their results agree."""
    xp = ops.xp
    scores = random_scores(ops, n_docs, n_steps, tag_scheme=tag_scheme)
    lengths = scores[1]
    record: Dict[str, Any] = {"documents": n_docs, "tokens": n_steps, "words": int(lengths.sum()),
                              "tag_scheme": tag_scheme, "tags": int(scores[0].shape[2])}
    results = {}
    for schedule in SCHEDULES:
        record[f"forward_backward_{schedule}_ms"] = median_ms(
            lambda: forward_backward(*scores, recursion=schedule), xp, repeats
        )
        record[f"viterbi_{schedule}_ms"] = median_ms(lambda: viterbi(*scores, recursion=schedule), xp, repeats)
        results[schedule] = [ops.to_numpy(a) for a in forward_backward(*scores, recursion=schedule)]
        results[schedule].append(ops.to_numpy(viterbi(*scores, recursion=schedule)))
    for name in ("forward_backward", "viterbi"):
        record[f"{name}_speedup"] = record[f"{name}_sequential_ms"] / max(record[f"{name}_parallel_ms"], 1e-9)
    sequential, parallel = results["sequential"], results["parallel"]
    for name, index in (("log_z", 0), ("marginals", 1), ("pairwise", 2)):
        record[f"{name}_max_relative_difference"] = relative_difference(parallel[index], sequential[index])
    record["identical_paths"] = identical_paths(parallel[3], sequential[3], lengths)
    if xp is not np:
        # The same scores on the host, NumPy's sequential schedule: CuPy's arithmetic against NumPy's.
        host = [ops.to_numpy(a) if i != 1 else a for i, a in enumerate(scores)]
        reference = [*forward_backward(*host, recursion="sequential"), viterbi(*host, recursion="sequential")]
        for schedule in SCHEDULES:
            record[f"{schedule}_vs_numpy_max_relative_difference"] = max(
                relative_difference(results[schedule][i], reference[i]) for i in range(3)
            )
            record[f"{schedule}_vs_numpy_identical_paths"] = identical_paths(results[schedule][3], reference[3], lengths)
    return record


def identical_paths(paths, expected, lengths) -> float:
    """The share of documents whose Viterbi path is `expected`'s."""
    same = [np.array_equal(a[:n], b[:n]) for a, b, n in zip(paths, expected, lengths)]
    return sum(same) / len(same)


def print_records(records: List[Dict[str, Any]], header: bool = True) -> None:
    if header:
        print(
            "shape      words   fb seq ms   fb par ms   speedup   vit seq ms   vit par ms   speedup"
            "   max rel diff   same paths"
        )
    for r in records:
        diff = max(r[f"{n}_max_relative_difference"] for n in ("log_z", "marginals", "pairwise"))
        print(
            f"{r['documents']:>4}x{r['tokens']:<5} {r['words']:>6}   {r['forward_backward_sequential_ms']:>9.2f}"
            f"   {r['forward_backward_parallel_ms']:>9.2f}   {r['forward_backward_speedup']:>7.2f}"
            f"   {r['viterbi_sequential_ms']:>10.2f}   {r['viterbi_parallel_ms']:>10.2f}   {r['viterbi_speedup']:>7.2f}"
            f"   {diff:>12.1e}   {r['identical_paths']:>10.1%}"
        )
        for schedule in SCHEDULES:
            if f"{schedule}_vs_numpy_max_relative_difference" in r:
                print(
                    f"           {schedule} against NumPy: max rel diff "
                    f"{r[f'{schedule}_vs_numpy_max_relative_difference']:.1e}, "
                    f"same paths {r[f'{schedule}_vs_numpy_identical_paths']:.1%}"
                )


def main(
    gpu_id: int = typer.Option(-1, help="GPU to use; -1 for the CPU."),
    shape: Optional[List[str]] = typer.Option(
        None, help=f"A batch as DOCUMENTSxTOKENS (repeatable; default: {' '.join(DEFAULT_SHAPES)})."
    ),
    repeats: int = typer.Option(5, min=1, help="Timed calls per function, schedule and shape (median kept)."),
    tag_scheme: str = typer.Option("BILUO", help="BILUO (shipped: 21 tags of JNLPBA's labels) or IOB2 (11)."),
    output: Optional[Path] = typer.Option(None, help="Also write the record here as JSON."),
) -> None:
    """Time the CRF's sequential and parallel schedules and check that they agree."""
    shapes = [parse_shape(text) for text in (shape or DEFAULT_SHAPES)]
    if gpu_id >= 0:
        require_gpu(gpu_id)
    ops = get_current_ops()
    device = device_name(gpu_id)
    records: List[Dict[str, Any]] = []
    # Each shape is printed and written as soon as it is measured: a job cut off, or a
    # shape that fails, keeps the shapes before it (on a GPU, their check against NumPy).
    for n_docs, n_steps in shapes:
        log(f"{n_docs} x {n_steps} on {device}")
        records.append(measure_shape(ops, n_docs, n_steps, repeats, tag_scheme))
        print_records(records[-1:], header=len(records) == 1)
        if output is not None:
            write_json(output, {"device": device, "repeats": repeats, "versions": versions(), "shapes": records})
    if output is not None:
        log(f"wrote {output}")


if __name__ == "__main__":
    typer.run(main)
