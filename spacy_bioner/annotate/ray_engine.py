"""The Ray Data engine (`--engine ray`): the same results as the local engine, on a cluster.

The dataflow:

1. one row per input file; `flat_map` reads and parses each file in a CPU
   task (the same readers as the local engine) into one row per shard (its
   items as JSON); finished shards are dropped there;
2. `map_batches` with a callable class, one shard per call: a pool of
   actors (`ActorPoolStrategy`), each loading the pipeline once in its constructor
   (`num_gpus=1` per actor with `--gpu-id`), annotates a whole shard with the
   same batches as the local engine (`engine.annotate_shard`), so the
   entities are the same (scores to float32 rounding, on another number of
   threads). Rows per shard rather than a `groupby("shard")` avoid a shuffle;
3. the driver hands each complete shard to the writer of `output.py`, which
   writes it atomically with its manifest: the same files, resume and
   accounting as the local engine.

Each actor reserves one CPU (Ray's default, also beside a GPU), so on a
cluster with fewer CPUs than `--n-process` + 1 the actor pool is shrunk to
leave one CPU for the parsing tasks (else nothing gets parsed), and a
cluster of one CPU is refused. Ray limits an actor's torch threads to what it
reserved; on the CPU an actor instead runs torch on its share of the
cluster's CPUs (CPUs / actors, at most its node's cores), as the local
engine's processes do: the parsing tasks need little of their CPU.
Ray Data restarts a dead actor and retries its shard without end by default;
here a shard is retried `shard_retries` times (a node lost), so that a shard
that kills its actor each time (out of memory, a CUDA fault) ends the run.
A `spacy.Language` is never shipped to a worker: actors load the pipeline by
name or path, which must therefore be readable on every node (an installed
package or a shared path), as must the inputs. Paths go to Ray resolved in the
driver: a worker's working directory is not the driver's. A task or actor
that fails (an input that cannot be read, a pipeline that cannot be loaded)
ends the run with a one-line AnnotateError, the shards written kept. Ray is an
optional extra: `pip install spacy-bioner[ray]`.
"""

import json
import re
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Set, Tuple

from ..loading import encoder_precision, pipeline_directory
from ..messages import first_line
from .engine import BatchAnnotator, annotate_shard, shards_of, usable_cpus
from .errors import AnnotateError
from .output import Result, input_shards, shard_prefix
from .sources import Deleted, Item, Record, Reject


def item_row(shard: str, position: int, item: Item) -> Dict[str, Any]:
    """A flat row for an item (strings, never None, so that blocks share one schema)."""
    row = {"shard": shard, "position": position, "kind": "", "doc_id": "", "text": "", "source": item.source,
           "record": "", "reject_kind": "", "reason": ""}
    if isinstance(item, Record):
        row.update(kind="record", doc_id=item.doc_id, text=item.text, record=item.record)
    elif isinstance(item, Reject):
        row.update(kind="reject", doc_id=item.doc_id, record=item.record, reject_kind=item.kind, reason=item.reason)
    else:
        row.update(kind="deleted", doc_id=item.pmid)
    return row


def row_item(row: Dict[str, Any]) -> Item:
    """The item of a row made by `item_row`."""
    kind = row["kind"]
    if kind == "record":
        return Record(row["doc_id"], row["text"], row["source"], row["record"])
    if kind == "reject":
        return Reject(row["source"], row["record"], row["reject_kind"], row["reason"], row["doc_id"])
    return Deleted(row["source"], row["doc_id"])


def _parse_input(row: Dict[str, Any], id_key: str, text_key: str, max_chars: int, shard_size: int,
                 finished: List[str], limit_name: str = "", max_items: int = 0) -> Iterator[Dict[str, Any]]:
    """flat_map: one row per unfinished shard of an input file, its items as JSON."""
    planned = input_shards(Path(row["path"]), row["prefix"], shard_size, finished, id_key, text_key, max_chars,
                           limit_name, max_items)
    for shard, group in shards_of(planned):
        yield {"shard": shard, "items": json.dumps([item_row(shard, position, item) for position, item in group])}


class _ShardAnnotator:
    """map_batches: an actor that loads the pipeline once and annotates whole shards.

    It loads the pipeline at `precision` and says with each shard the precision
    it computes in: where its device has no bfloat16 arithmetic that is float32,
    which the driver refuses to write under a run that records bfloat16.
    """

    def __init__(self, model: str, gpu_id: int, batch_size: int, max_chars: int, threads: int = 0,
                 precision: Optional[str] = None):
        if threads > 0:
            import torch

            torch.set_num_threads(min(threads, usable_cpus()))
        self.annotator = BatchAnnotator(model, 0 if gpu_id >= 0 else -1, precision=precision, check_device=False)
        self.precision = encoder_precision(self.annotator.nlp) or ""
        self.batch_size = batch_size
        self.max_chars = max_chars

    def __call__(self, batch: Dict[str, Any]) -> Dict[str, Any]:
        out: Dict[str, List[Any]] = {"shard": [], "results": [], "precision": []}
        for shard, items in zip(batch["shard"], batch["items"]):
            rows = json.loads(str(items))
            pairs = [(row["position"], row_item(row)) for row in rows]
            results = annotate_shard(self.annotator, str(shard), pairs, self.batch_size, self.max_chars)
            out["shard"].append(str(shard))
            out["precision"].append(self.precision)
            out["results"].append(json.dumps([
                dict(row, entities=r.entities, n_words=r.n_words)
                for row, r in zip(rows, results)
            ]))
        return out


def _host_port(address: str) -> Optional[Tuple[str, int]]:
    """(host, port) of a cluster address, HOST:PORT or ray://HOST:PORT; None for "auto" and other forms."""
    rest = address[len("ray://"):] if address.startswith("ray://") else address
    host, sep, port = rest.rpartition(":")
    host = host.strip("[]")  # an IPv6 address in brackets
    if not sep or not host or not port.isdigit():
        return None
    return host, int(port)


def check_reachable(address: str, timeout: float = 10.0) -> None:
    """AnnotateError, at once, where nothing listens at the cluster address `address`.

    `ray.init(address=...)` retries an address where nothing listens for many
    minutes, printing a warning every few seconds. Ray connects to a loopback
    address at this node's IP address, so that is tried too.
    """
    import socket

    target = _host_port(address)
    if target is None:
        return
    host, port = target
    hosts = [host]
    if host == "localhost" or host.startswith("127."):
        try:
            from ray.util import get_node_ip_address

            hosts.append(get_node_ip_address())
        except Exception:  # noqa: BLE001  (no network: the loopback address alone)
            pass
    reasons = []
    for name in hosts:
        try:
            with socket.create_connection((name, port), timeout=timeout):
                return
        except socket.gaierror as e:
            reasons.append(f"{name}: unknown host ({e.strerror or e})")
        except OSError as e:
            reasons.append(f"{name}:{port}: {e.strerror or type(e).__name__}")
    raise AnnotateError(
        f"cannot reach the Ray cluster at --address {address} ({'; '.join(reasons)}): give the address of its "
        "head node (HOST:PORT, 6379 by default, or ray://HOST:10001 for Ray Client) once the cluster is up, "
        "or leave --address out to start a local Ray"
    )


@contextmanager
def ray_session(address: Optional[str] = None, gpu_id: int = -1,
                log: Callable[[str], None] = lambda text: None) -> Iterator[None]:
    """Ray for one run: the running one, the cluster at `address`, or a local Ray started (and shut down) here.

    AnnotateError, with Ray shut down again, when the cluster cannot be
    reached, has a single CPU, or has no GPU while `gpu_id` asks for one: its
    actors or the parsing tasks would wait forever. (A cluster of no CPU yet,
    whose head node runs none, is left to its autoscaler.)
    """
    import ray

    started = not ray.is_initialized()
    if started:
        try:
            if address:
                check_reachable(address)
                ray.init(address=address)
            else:
                ray.init(include_dashboard=False)
        except (ConnectionError, RuntimeError, ValueError) as e:
            where = f"the Ray cluster at --address {address}" if address else "a local Ray"
            detail = first_line(e, type(e).__name__)
            raise AnnotateError(f"cannot start or reach {where}: {detail}") from None
    resources = ray.cluster_resources()
    log(f"Ray: {resources.get('CPU', 0):g} CPUs, {resources.get('GPU', 0):g} GPUs")
    try:
        if resources.get("CPU", 0) == 1:
            raise AnnotateError("the Ray cluster has 1 CPU: the Ray engine needs 2 or more (one to read the "
                                "inputs, one for each annotator actor); use --engine local on a single CPU")
        if not resources.get("CPU", 0):
            log("Ray: no CPU in the cluster yet; the run waits for its autoscaler to add some")
        if gpu_id >= 0 and resources.get("GPU", 0) < 1:
            raise AnnotateError(f"--gpu-id {gpu_id}: the Ray cluster has no GPU; use --gpu-id -1 for its CPUs")
        yield
    finally:
        if started:
            ray.shutdown()


def _absolute_model(model: str) -> str:
    """`model` as a worker finds it: a directory by its absolute path, an installed package by its name."""
    directory = pipeline_directory(model)
    return model if directory is None else str(directory)


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_RAISED = re.compile(r"[A-Za-z_][\w.]*(?:Error|Exception): ")


def _ray_failure(error: Exception) -> AnnotateError:
    """A one-line AnnotateError for a failed Ray task or actor (Ray's message holds tracebacks)."""
    cause = getattr(error, "cause", None)  # a task's exception (RayTaskError)
    if isinstance(cause, AnnotateError):
        # A reader's own message (an input that cannot be read); Ray appends lines to it.
        return AnnotateError(first_line(cause))
    if cause is not None:
        detail = f"{type(cause).__name__}: {first_line(cause)}"
    else:
        # An actor that died: the error that ended it is the last one its traceback names.
        lines = [_ANSI.sub("", line).strip() for line in str(error).splitlines() if line.strip()]
        raised = [line for line in lines if _RAISED.match(line)]
        detail = raised[-1] if raised else lines[0] if lines else type(error).__name__
    return AnnotateError(f"a Ray task or annotator actor failed: {detail}; "
                         "the shards written are kept: rerun with --resume once that is fixed")


def annotator_actors(requested: int, cpus: int) -> int:
    """How many annotator actors to start: `requested`, but at most one fewer than the
    cluster's `cpus`, so that a CPU is left to read the inputs. A cluster of no CPU yet
    (its autoscaler adds them) gets the actors requested, which wait for CPUs."""
    return cpus - 1 if 0 < cpus <= requested else requested


def ray_shards(model: str, inputs: Sequence[Path], *, id_key: str, text_key: str, max_chars: int,
               shard_size: int, finished: Set[str], batch_size: int, max_batch_chars: int,
               actors: int = 1, gpu_id: int = -1, shard_retries: int = 2, precision: Optional[str] = None,
               expected_precision: Optional[str] = None, log: Callable[[str], None] = lambda text: None,
               limit_name: str = "", max_items: int = 0,
               progress: bool = True) -> Iterator[Tuple[str, List[Result]]]:
    """(shard, its results) of every unfinished shard, each as soon as it arrives (in any shard order),
    of the first `max_items` items of each input (if > 0).

    Ray must be running (`ray_session`). Inputs are read by their resolved
    path, each item's `source`, as in the local engine. A shard whose actor
    dies is tried again up to `shard_retries` times. The actors load the
    pipeline at `precision` (None: its own). AnnotateError when a task or
    actor fails, or, given an `expected_precision`, when an actor computes in
    another. Without `progress`, Ray Data shows no progress bars (nor, where
    stdout is no terminal, the progress lines it logs in their place):
    `DataContext.enable_progress_bars` of this dataset's context.

    The actors keep Ray Data's restarts (`max_restarts=-1`): a dead actor is
    restarted so that its shard is retried. Ray's driver therefore logs an
    error-level line once an actor starts, "... has constructor arguments in
    the object store and max_restarts > 0 ...": the arguments in the object
    store are Ray Data's own (its context and the map function), not this
    engine's, so only `max_restarts=0` would avoid it, and with it the retries.
    """
    import ray

    cpus = int(ray.cluster_resources().get("CPU", 0))
    pool = annotator_actors(actors, cpus)
    if pool != actors:
        log(f"Ray has {cpus} CPUs: {pool} annotator actors, leaving a CPU to read the inputs")
        actors = pool
    files = [{"path": str(path.resolve()), "prefix": shard_prefix(path)} for path in inputs]
    ds = ray.data.from_items(files, override_num_blocks=max(1, len(files)))
    ds = ds.flat_map(_parse_input, fn_kwargs={"id_key": id_key, "text_key": text_key, "max_chars": max_chars,
                                              "shard_size": shard_size, "finished": sorted(finished),
                                              "limit_name": limit_name, "max_items": max_items})
    # One shard a block: a parse task's rows (every shard of its input) come as one block, which the
    # pool took as one task, so one actor annotated a whole input and its shards were written at its end.
    ds = ds.repartition(target_num_rows_per_block=1)
    with warnings.catch_warnings():
        # Ray 2.60 takes the retry limits only among its ray_remote_args, which it deprecates
        # without a named parameter for them yet (the extra stays below 2.64, which removes them).
        warnings.filterwarnings("ignore", message="`ray_remote_args` is deprecated")
        ds = ds.map_batches(
            _ShardAnnotator,
            fn_constructor_kwargs={"model": _absolute_model(model), "gpu_id": gpu_id, "batch_size": batch_size,
                                   "max_chars": max_batch_chars,
                                   "threads": 0 if gpu_id >= 0 else max(1, cpus // actors),
                                   "precision": precision},
            batch_size=1,
            compute=ray.data.ActorPoolStrategy(size=actors),
            # One CPU an actor either way: Ray Data reserves one beside a GPU when num_cpus is not
            # given, and warns that giving both is experimental.
            **({"num_gpus": 1} if gpu_id >= 0 else {"num_cpus": 1}),
            max_restarts=-1,
            max_task_retries=shard_retries,
            batch_format="numpy",
        )
    # This dataset's own context (a copy of the driver's current one, made as the dataset was).
    ds.context.enable_progress_bars = progress
    with _quiet_progress_notice(progress):
        try:
            for row in ds.iter_rows():  # one row per shard (see _ShardAnnotator)
                shard = str(row["shard"])
                if expected_precision is not None and str(row["precision"]) != expected_precision:
                    raise AnnotateError(
                        f"an annotator actor computes in {row['precision']}, not in the {expected_precision} this run "
                        "records: the device of its node has no bfloat16 arithmetic. Run again with --precision "
                        "float32, into a new --output or with --overwrite (a run keeps one precision)")
                results = []
                for result in json.loads(row["results"]):
                    results.append(Result(shard, int(result["position"]), row_item(result), result["entities"],
                                          int(result["n_words"])))
                yield shard, results
        except ray.exceptions.RayError as e:
            raise _ray_failure(e) from None


@contextmanager
def _quiet_progress_notice(progress: bool) -> Iterator[None]:
    """Without `progress`, leave out the warning Ray Data logs once a run without progress
    bars starts, to say how to turn them on: --no-progress asked for them to be off."""
    import logging

    progress_logger = logging.getLogger("ray.data._internal.progress")
    level = progress_logger.level
    if not progress:
        progress_logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        progress_logger.setLevel(level)
