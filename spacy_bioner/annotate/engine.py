"""Running the pipeline over input items: the model worker and the local engine.

Both engines (this one and `ray_engine`) annotate a shard the same way: its
records, in input order, cut into batches of at most `batch_size` documents
and `max_batch_chars` characters (a longer document goes alone), each batch
through `nlp.pipe`. The same batches give the same entities, so the engines
produce the same tables (scores equal to float32 rounding: torch sums in
another order on another number of threads); and the character budget, with
the strided windows of the transformer, bounds the memory of one forward
pass. A document longer than `max_doc_chars` is rejected rather than risked.
A batch that runs out of memory all the same ends the run with what to do.

More than one CPU process (`n_process > 1`) uses a process pool
(`concurrent.futures`, which fails rather than hangs when a worker dies)
started with *spawn*, each worker loading the pipeline once from its name or
path: forking a process that has already run torch can deadlock in its
thread pools (and breaks CUDA), and a spaCy `Language` with a transformer
should not be pickled to workers. Each worker gets `usable_cpus() // n_process`
torch threads. `n_process > 1` with a GPU is refused (`run.annotate`).
Ctrl-C is this process's to handle: workers are started with SIGINT blocked
(a terminal sends it to the whole process group, and a worker interrupted
while it loads the pipeline prints its traceback), and are ended here when
the run is interrupted, the shards written kept. A worker whose parent is
killed ends itself.
"""

import multiprocessing
import os
import signal
import threading
from collections import deque
from contextlib import contextmanager
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from itertools import groupby
from multiprocessing.connection import wait
from typing import Any, Callable, Deque, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

from ..annotation import head_keys
from ..loading import load_pipeline
from ..messages import first_line
from .errors import AnnotateError
from .output import Result
from .sources import Record

Annotation = Tuple[List[Dict[str, Any]], int]  # entity rows, words


def char_batches(records: Iterable[Record], batch_size: int, max_chars: int) -> Iterator[List[Record]]:
    """Consecutive batches of at most `batch_size` records and `max_chars` characters."""
    batch: List[Record] = []
    chars = 0
    for record in records:
        if batch and (len(batch) >= batch_size or chars + len(record.text) > max_chars):
            yield batch
            batch, chars = [], 0
        batch.append(record)
        chars += len(record.text)
    if batch:
        yield batch


class BatchAnnotator:
    """A loaded pipeline that annotates batches of texts: one per process or Ray actor."""

    def __init__(self, model: str, gpu_id: int = -1, nlp: Any = None, precision: Optional[str] = None,
                 check_device: bool = True):
        self.nlp = nlp if nlp is not None else load_pipeline(model, gpu_id, precision=precision,
                                                             check_device=check_device)
        self.heads = list(head_keys(self.nlp))

    def __call__(self, texts: Sequence[str]) -> List[Annotation]:
        """The entity rows and the number of words of each text.

        In a memory zone: the strings and lexemes of the batch's new words
        are freed after it (a collection's numbers, doses and names would
        grow the vocab without end); the rows are plain values.
        """
        from .output import entity_rows

        try:
            with self.nlp.memory_zone():
                return [
                    (entity_rows(doc, self.heads), len(doc))
                    for doc in self.nlp.pipe(texts, batch_size=max(1, len(texts)))
                ]
        except (MemoryError, RuntimeError) as e:  # torch's and CuPy's are RuntimeErrors
            if not is_out_of_memory(e):
                raise
            raise AnnotateError(
                f"out of memory annotating a batch of {len(texts)} documents ({sum(map(len, texts)):,} "
                f"characters): {type(e).__name__}: {first_line(e)}; the shards written are kept: rerun with "
                "--resume and a smaller --max-batch-chars or --batch-size (or a lower --max-doc-chars)"
            ) from None


def is_out_of_memory(error: BaseException) -> bool:
    """Whether `error` says that memory ran out: Python's, torch's (CUDA, cuBLAS or CPU), CuPy's."""
    text = str(error).lower()
    return isinstance(error, MemoryError) or any(
        words in text for words in ("out of memory", "can't allocate memory", "alloc_failed"))


# Called with a batch's results once they are annotated (the progress bar's records and words).
BatchDone = Callable[[List[Result]], None]


def shard_batches(shard: str, items: Sequence[Tuple[int, Any]], batch_size: int,
                  max_chars: int) -> Tuple[List[Result], List[List[Result]]]:
    """The results of one shard's (position, item) pairs, and its records' results cut into `char_batches`."""
    results = [Result(shard, position, item) for position, item in items]
    records = [result for result in results if isinstance(result.item, Record)]
    batches: List[List[Result]] = []
    done = 0
    for batch in char_batches((r.item for r in records), batch_size, max_chars):
        batches.append(records[done:done + len(batch)])
        done += len(batch)
    return results, batches


def annotate_shard(annotator: Callable[[Sequence[str]], List[Annotation]], shard: str,
                   items: Sequence[Tuple[int, Any]], batch_size: int, max_chars: int,
                   on_batch: Optional[BatchDone] = None) -> List[Result]:
    """The results of one shard's (position, item) pairs, annotating its records with `annotator`;
    `on_batch` is given each batch's results once they are filled."""
    results, batches = shard_batches(shard, items, batch_size, max_chars)
    for batch in batches:
        for result, annotation in zip(batch, annotator([r.item.text for r in batch])):
            _fill(result, annotation)
        if on_batch is not None:
            on_batch(batch)
    return results


def _fill(result: Result, annotation: Annotation) -> None:
    result.entities, result.n_words = annotation


def shards_of(planned: Iterable[Tuple[str, int, Any]]) -> Iterator[Tuple[str, List[Tuple[int, Any]]]]:
    """Group the (shard, position, item) stream into (shard, [(position, item), ...])."""
    for shard, group in groupby(planned, key=lambda planned_item: planned_item[0]):
        yield shard, [(position, item) for _, position, item in group]


# ---------------------------------------------------------------- worker processes

_WORKER: Optional[BatchAnnotator] = None


def usable_cpus() -> int:
    """The CPUs this process may run on: its affinity (a container's or
    taskset's limit), not the machine's count, which would over-subscribe."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def _exit_with_parent() -> None:
    """End this worker when the process that started it ends, however it ends.

    A parent killed (SIGTERM, SIGKILL, the OOM killer, a job's time limit) has
    no chance to end its pool, and a worker waiting for its next batch would
    otherwise live on, holding its pipeline's memory.
    """
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def wait_for_parent() -> None:
        wait([parent.sentinel])
        os._exit(1)

    threading.Thread(target=wait_for_parent, name="exit-with-parent", daemon=True).start()


def _init_worker(model: str, threads: int, precision: Optional[str]) -> None:
    global _WORKER
    import torch

    _exit_with_parent()
    torch.set_num_threads(threads)
    _WORKER = BatchAnnotator(model, precision=precision)


def _worker_annotate(texts: List[str]) -> List[Annotation]:
    assert _WORKER is not None
    return _WORKER(texts)


def local_shards(model: str, planned: Iterable[Tuple[str, int, Any]], batch_size: int, max_chars: int,
                 n_process: int = 1, gpu_id: int = -1, nlp: Any = None, precision: Optional[str] = None,
                 on_batch: Optional[BatchDone] = None) -> Iterator[Tuple[str, List[Result]]]:
    """(shard, its results) of the planned items, shard after shard, in input order.

    A shard is yielded as soon as it is annotated, before the next one is
    (with processes, before any result of the next one is awaited), so that
    it is written first; `on_batch` is given each batch's results as they come,
    those of a shard before it is yielded. `nlp`, if given, is used instead of
    loading `model` (one process only); each process loads it at `precision`
    (`load_pipeline`).
    """
    if n_process < 1:
        raise ValueError("--n-process must be at least 1")
    if n_process == 1:
        annotator = BatchAnnotator(model, gpu_id, nlp, precision)
        for shard, items in shards_of(planned):
            yield shard, annotate_shard(annotator, shard, items, batch_size, max_chars, on_batch)
        return
    yield from _pool_shards(model, planned, batch_size, max_chars, n_process, precision, on_batch)


@contextmanager
def _sigint_blocked() -> Iterator[None]:
    """SIGINT blocked in this thread: what a process started meanwhile inherits (and keeps, across exec).

    A SIGINT that arrives meanwhile waits, and is delivered once it is unblocked.
    """
    if not hasattr(signal, "pthread_sigmask"):  # not POSIX
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _end_workers(pool: ProcessPoolExecutor) -> None:
    """Terminate the pool's processes: on Ctrl-C, rather than wait for the batches they are annotating."""
    if hasattr(pool, "terminate_workers"):  # Python 3.14
        pool.terminate_workers()
        return
    # Before 3.14 the executor has no public way to end its workers: read its process table.
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        if process.is_alive():
            process.terminate()


def _pool_shards(model: str, planned: Iterable[Tuple[str, int, Any]], batch_size: int, max_chars: int,
                 n_process: int, precision: Optional[str] = None,
                 on_batch: Optional[BatchDone] = None) -> Iterator[Tuple[str, List[Result]]]:
    """`local_shards` on a spawn pool: batches in flight are bounded (2 per process).

    A worker that dies (killed for memory, or unable to load the pipeline)
    breaks the pool: AnnotateError, with the shards written so far kept.
    """
    threads = max(1, usable_cpus() // n_process)
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(n_process, mp_context=context, initializer=_init_worker,
                               initargs=(model, threads, precision))
    window: Deque[Tuple[str, List[Result], List[Result], "Future[List[Annotation]]", bool]] = deque()

    def drain(limit: int) -> Iterator[Tuple[str, List[Result]]]:
        while len(window) > limit:
            shard, results, batch, pending, last = window.popleft()
            try:
                annotations = pending.result()
            except BaseException:
                # No shard is completed past a batch that failed (out of memory): its results are unfilled.
                window.clear()
                raise
            for result, annotation in zip(batch, annotations):
                _fill(result, annotation)
            if on_batch is not None and batch:
                on_batch(batch)
            if last:
                yield shard, results

    try:
        try:
            for shard, items in shards_of(planned):
                results, batches = shard_batches(shard, items, batch_size, max_chars)
                batches = batches or [[]]  # a shard of rejects only still goes through the window, in order
                for i, batch in enumerate(batches):
                    with _sigint_blocked():  # a worker is started in submit, when one is needed
                        pending = pool.submit(_worker_annotate, [r.item.text for r in batch])
                    window.append((shard, results, batch, pending, i == len(batches) - 1))
                    yield from drain(2 * n_process)
        except AnnotateError:
            # An input that cannot be read: the shards read before it are still annotated and written.
            yield from drain(0)
            raise
        yield from drain(0)
    except BrokenProcessPool:
        raise AnnotateError(
            f"an annotation process ended abruptly (out of memory, or it could not load {model!r}; from a "
            "script, annotate() with n_process > 1 must be called under `if __name__ == \"__main__\":`, as "
            "each process imports the script); the shards written are kept: rerun with --resume, perhaps "
            "with fewer --n-process"
        ) from None
    except (KeyboardInterrupt, GeneratorExit):
        # Ctrl-C here, or in the caller (which then closes this generator), or a run ended early:
        # what the workers are annotating would be thrown away. They do not see SIGINT (`_sigint_blocked`).
        _end_workers(pool)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
