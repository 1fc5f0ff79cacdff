"""One annotation run: plan the shards, run an engine, write shards, summarise."""

import hashlib
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import (
    Any,
    Callable,
    Dict,
    Iterable,
    Iterator,
    List,
    Optional,
    Sequence,
    Tuple,
)

from ..about import __version__
from ..annotation import head_keys
from ..files import FolderUnavailable, exclusive_folder
from ..loading import LOAD_PRECISIONS, PipelineLoadError, encoder_precision, load_pipeline, pipeline_directory
from ..messages import counted, listed
from ..packaging import pipeline_encoder, pipeline_sha256
from .engine import local_shards
from .errors import AnnotateError, TooManyRejects
from .output import (
    FORMATS,
    TABLES_VERSION,
    OutputDir,
    OutputError,
    Result,
    bad_input_rejects,
    current_shard_names,
    input_shards,
    previous_run,
    refuse_another_run,
    shard_prefix,
)
from .sources import KEYED_KINDS, count_records, expand_inputs, input_kind, links_out_of, txt_files

ENGINES = ("local", "ray")
# What run.json records beside `run_settings`: known once the pipeline is loaded.
RECORDED_AFTER_LOADING = ("model", "precision", "max_doc_chars")


@dataclass
class Options:
    """What a run does.

    Those that decide its tables (`fmt`, `shard_size`, `batch_size`,
    `max_batch_chars`, `max_doc_chars`, `limit`, `id_key` and `text_key`
    where an input is JSON Lines or Parquet, and the encoder's precision that
    `precision` sets in place of the pipeline's own) and its status
    (`max_rejects`) are recorded in `run.json`: a rerun must give the same;
    `--resume` may change the batches and `max_rejects` (`output.RESUMABLE`).
    """

    engine: str = "local"
    fmt: str = "parquet"
    shard_size: int = 10_000
    batch_size: int = 64
    max_batch_chars: int = 100_000
    max_doc_chars: int = 0  # 0: the pipeline's nlp.max_length
    limit: int = 0  # items read of each input at most; 0: all
    n_process: int = 1
    gpu_id: int = -1
    precision: Optional[str] = None
    id_key: str = "id"
    text_key: str = "text"
    max_rejects: int = 1000
    address: Optional[str] = None
    progress: bool = False

    def __post_init__(self) -> None:
        """Refuse options no run can use, before anything is loaded or written."""
        if self.engine not in ENGINES:
            raise AnnotateError(f"unknown engine {self.engine!r} (expected one of {', '.join(ENGINES)})")
        if self.fmt not in FORMATS:
            raise AnnotateError(f"unknown format {self.fmt!r} (expected one of {', '.join(FORMATS)})")
        for option, value, least in (("--shard-size", self.shard_size, 1), ("--batch-size", self.batch_size, 1),
                                     ("--max-batch-chars", self.max_batch_chars, 1),
                                     ("--n-process", self.n_process, 1), ("--max-doc-chars", self.max_doc_chars, 0),
                                     ("--max-rejects", self.max_rejects, 0), ("--limit", self.limit, 0)):
            if value < least:
                raise AnnotateError(f"{option} must be at least {least}, not {value}")
        if self.id_key == self.text_key:
            raise AnnotateError(f"--id-key and --text-key both name {self.id_key!r}: "
                                "the id and the text of a record are two fields")
        if self.address is not None and self.engine != "ray":
            raise AnnotateError(f"--address {self.address} names a Ray cluster, for --engine ray only; "
                                f"--engine {self.engine} runs on this machine")
        if self.n_process > 1 and self.gpu_id >= 0 and self.engine == "local":
            raise AnnotateError("--n-process > 1 runs on the CPU only; with --gpu-id use one process, "
                                "or --engine ray (one actor per GPU)")


def model_fingerprint(model: str, nlp: Any) -> Dict[str, Any]:
    """What identifies the pipeline: name, version, components, encoder and a digest.

    The digest is that of a pipeline directory's files that predictions are
    loaded from (`pipeline_sha256`, as `evaluate` records it), or of the
    package name and version of an installed pipeline, whichever spaCy loaded
    (`pipeline_directory`). A directory is named by its resolved path,
    however it was spelt.
    """
    meta = nlp.meta
    path = pipeline_directory(model)
    if path is not None:
        model = str(path)
        digest = pipeline_sha256(path)
    else:
        digest = hashlib.sha256(f"{meta.get('name')}-{meta.get('version')}".encode("utf8")).hexdigest()
    return {
        "model": model,
        "name": f"{meta.get('lang', '')}_{meta.get('name', '')}",
        "version": meta.get("version", ""),
        "pipeline": list(nlp.pipe_names),
        "heads": list(head_keys(nlp)),
        "encoder": pipeline_encoder(nlp),
        "digest": digest,
    }


def input_state(path: Path) -> Dict[str, Any]:
    """What a rerun checks of an input, for `run.json`: its resolved path and the state of what is read.

    A file: its size and modification time (ns). A folder: its `.txt` files
    (`txt_files`), what is read of it: their number, total size, latest
    time, and a digest of each one's name, size and time. Not the folder's
    own time, which changes whenever anything else appears in it (an
    `--output` inside it, a note). A rerun refuses an input whose state
    changed (records appended after a run would otherwise be skipped with
    their shard); `output.run_differences` says which and how.
    """
    if path.is_dir():
        files = txt_files(path)[0]
        digest = hashlib.sha1()
        size = mtime_ns = 0
        for file in files:
            stat = file.stat()
            digest.update(f"{file.name}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode("utf8", "surrogateescape"))
            size += stat.st_size
            mtime_ns = max(mtime_ns, stat.st_mtime_ns)
        return {"path": str(path.resolve()), "files": len(files), "size": size, "mtime_ns": mtime_ns,
                "digest": digest.hexdigest()}
    stat = path.stat()
    return {"path": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def run_settings(paths: Sequence[Path], options: Options) -> Dict[str, Any]:
    """What `run.json` records of a run but its pipeline (`RECORDED_AFTER_LOADING`)."""
    # Only where an input has keys: with PubMed or text alone they change nothing.
    keyed = any(input_kind(path) in KEYED_KINDS for path in paths)
    return {
        "inputs": [input_state(path) for path in paths],
        "shard_size": options.shard_size,
        "format": options.fmt,
        "tables_version": TABLES_VERSION,
        # The code that sets the entities after the model (bounds, abbreviations, doc.ents):
        # a resume after an upgrade would mix two versions' tables.
        "spacy_bioner_version": __version__,
        "id_key": options.id_key if keyed else None,
        "text_key": options.text_key if keyed else None,
        "max_batch_chars": options.max_batch_chars,
        "batch_size": options.batch_size,
        # What the finished shards' rejects are judged against: a rerun with another limit
        # would fail, or pass, an output it did not change.
        "max_rejects": options.max_rejects,
        # Recorded only where given: a run without one matches the runs written before the option was.
        **({"limit": options.limit} if options.limit else {}),
    }


def limit_name(options: Options) -> str:
    """Where the limit of a document's characters comes from, for a too_long reject's reason."""
    return "--max-doc-chars" if options.max_doc_chars else "the pipeline's nlp.max_length"


def plan(inputs: Sequence[Path], options: Options, max_chars: int, skip: Iterable[str]) -> Iterator[Tuple[str, int, Any]]:
    """(shard, position, item) of every input item, those of `skip` shards left out.

    Inputs are read by their resolved path, each item's `source`, as `run.json` records it.
    """
    skip = frozenset(skip)  # made once for all inputs (input_shards takes a frozenset as it is)
    for path in inputs:
        yield from input_shards(path.resolve(), shard_prefix(path), options.shard_size, skip,
                                options.id_key, options.text_key, max_chars, limit_name(options), options.limit)


def annotate(
    model: str,
    inputs: Sequence[Path],
    output: Path,
    options: Options,
    resume: bool = False,
    overwrite: bool = False,
    log: Callable[[str], None] = lambda text: None,
    stop_after_shards: Optional[int] = None,
    progress_log: Optional[Callable[[str], None]] = None,
) -> Dict[str, Any]:
    """Annotate `inputs` into `output`; return the summary (also in `output/summary.json`).

    `progress_log` (default: `log`) is given a line as the pipeline loads.
    With `options.progress` a progress bar then shows how the run goes on;
    without it, `progress_log` is given a line for each shard written (its
    records and entities, the records done so far of all, once counted, and
    the words per second), so that a run whose stderr is no terminal shows
    it is alive.
    `stop_after_shards` ends the run after writing that many shards, as a
    kill between two shards would (for tests). Raises AnnotateError when the
    run cannot start or an input cannot be read, and TooManyRejects past
    `options.max_rejects` records rejected as bad input (`bad_input_rejects`:
    not those without text or longer than `max_doc_chars`). With
    `options.n_process` > 1, the processes are spawned and import the
    calling script: call it under `if __name__ == "__main__":`.
    """
    try:
        paths = expand_inputs(inputs, options.id_key, options.text_key)
    except ValueError as e:
        raise AnnotateError(str(e)) from None
    for path in (path for path in paths if path.is_dir()):
        files, skipped = txt_files(path)
        if skipped:
            names = listed([entry.name + ("/" if entry.is_dir() else "") for entry in skipped], most=5)
            log(f"{path}: a folder input is read for its .txt files only, hidden ones left out; skipped {len(skipped)} "
                f"other entries: {names}")
        outside = links_out_of(path, files)
        if outside:
            log(f"{path}: read through links to files outside it: "
                + listed([f"{file.name} -> {file.resolve()}" for file in outside], most=5))
    settings = run_settings(paths, options)
    try:
        previous_run(output, resume, overwrite)  # a file of that name, say, before it is made a folder
        with exclusive_folder(output):
            # Before the pipeline loads: a folder no run can use, or a run these settings differ from.
            recorded = previous_run(output, resume, overwrite)
            if recorded and not overwrite:
                known = {key: value for key, value in recorded.items() if key not in RECORDED_AFTER_LOADING}
                refuse_another_run(output, known, settings, resume)
            return _annotate(model, paths, output, options, settings, resume, overwrite, log,
                             stop_after_shards, progress_log or log)
    except (FolderUnavailable, OutputError) as e:
        raise AnnotateError(str(e)) from None


def _annotate(
    model: str,
    paths: Sequence[Path],
    output: Path,
    options: Options,
    settings: Dict[str, Any],
    resume: bool,
    overwrite: bool,
    log: Callable[[str], None],
    stop_after_shards: Optional[int],
    progress_log: Callable[[str], None],
) -> Dict[str, Any]:
    """`annotate` into an output directory this process holds, whose recorded run `settings` allow."""
    progress_log(f"loading the pipeline {model}")  # the bar starts once it is loaded
    try:
        # The Ray engine's actors take the GPUs (and check their bfloat16); here the pipeline only plans the run.
        here = options.engine == "local"
        # Where the pipeline computes on this machine's device as loaded here (a local Ray on its CPUs too),
        # a precision it cannot compute in is refused before anything is written, and the one it runs at recorded.
        on_this_device = here or (options.address is None and options.gpu_id < 0)
        nlp = load_pipeline(model, options.gpu_id if here else -1, need_entities=True, precision=options.precision,
                            check_device=on_this_device)
    except PipelineLoadError as e:
        raise AnnotateError(str(e)) from None
    if options.max_doc_chars > nlp.max_length:
        raise AnnotateError(f"--max-doc-chars {options.max_doc_chars:,} is more than the pipeline's nlp.max_length "
                            f"({nlp.max_length:,}), which spaCy does not let a document exceed; use at most that")
    max_chars = options.max_doc_chars or nlp.max_length
    precision = encoder_precision(nlp, effective=on_this_device)
    if precision == "float16" and options.gpu_id < 0:  # Ray's actors on CPUs compute it in float32 (and load so)
        precision = "float32"
    run_info = {  # RECORDED_AFTER_LOADING and the settings
        "model": model_fingerprint(model, nlp),
        "precision": precision,
        **settings,
        "max_doc_chars": max_chars,
    }
    with ExitStack() as session:
        if options.engine == "ray":
            from .ray_engine import ray_session

            # Before anything is written: a cluster that cannot be reached, or has no GPU for --gpu-id.
            session.enter_context(ray_session(options.address, options.gpu_id, log))
        try:
            out = OutputDir(output, options.fmt, run_info, resume=resume, overwrite=overwrite)
        except OutputError as e:
            raise AnnotateError(str(e)) from None
        previous = out.manifests()
        if previous:
            log(f"{output}: {counted(len(previous), 'shard')} already done, skipped")
        bad_input = sum(bad_input_rejects(m) for m in previous.values())
        # Processes and actors compute in the precision recorded: they load the pipeline at it where that is not
        # the pipeline's own (an earlier architecture, without the setting, keeps its own), and the Ray engine refuses
        # a shard that an actor computed otherwise (its device without bfloat16 arithmetic). Nothing is checked for
        # a precision no load sets (a pipeline trained in float16, or one without this package's encoder).
        recorded = run_info["precision"]
        own = encoder_precision(nlp, effective=False)
        load_precision = options.precision or (recorded if recorded != own else None)
        expected_precision = recorded if recorded in LOAD_PRECISIONS else None
        # They load their own pipeline: this one is kept only to annotate in this process.
        local_nlp = nlp if options.engine == "local" and options.n_process == 1 else None
        del nlp
        done = sum(m["documents"] + m["rejected"] for m in previous.values())
        bar = _progress_bar(paths, options, done) if options.progress else None
        total = None if options.progress else _RecordTotal(paths, options)
        start = time.perf_counter()
        words = documents = written = 0
        stopped = False
        # The local engine moves the bar a batch at a time (a shard is 10,000 records by default).
        moving = _BarMoves(bar, start)
        if bad_input > options.max_rejects:
            # Finished shards already pass the limit: fail, annotating nothing more.
            shards: Iterator[Tuple[str, List[Result]]] = iter(())
        elif options.engine == "ray":
            from .ray_engine import ray_shards

            shards = ray_shards(
                model, paths, id_key=options.id_key, text_key=options.text_key, max_chars=max_chars,
                shard_size=options.shard_size, finished=current_shard_names(previous, paths),
                batch_size=options.batch_size, max_batch_chars=options.max_batch_chars, actors=options.n_process,
                gpu_id=options.gpu_id,
                precision=load_precision, expected_precision=expected_precision, log=log,
                limit_name=limit_name(options), max_items=options.limit, progress=options.progress)
        else:
            planned = plan(paths, options, max_chars, current_shard_names(previous, paths))
            shards = local_shards(model, planned, options.batch_size, options.max_batch_chars, options.n_process,
                                  options.gpu_id, nlp=local_nlp, precision=load_precision, on_batch=moving.batch_done)
        try:
            for shard, shard_results in shards:
                try:
                    manifest = out.write_shard(shard, shard_results[0].item.source, shard_results)
                except OSError as e:  # a full disk, a quota, a folder removed meanwhile
                    raise AnnotateError(
                        f"{output}: shard {shard} cannot be written ({e.strerror or e}); the shards written "
                        "so far are kept: rerun with --resume once it can be") from None
                written += 1
                words += manifest["words"]
                documents += manifest["documents"]
                bad_input += bad_input_rejects(manifest)
                records = manifest["documents"] + manifest["rejected"]
                done += records
                words_per_s = words / max(time.perf_counter() - start, 1e-9)
                if bar is not None:
                    moving.shard_done(records, words)
                else:
                    of = f"/{total.value:,}" if total is not None and total.value is not None else ""
                    progress_log(f"shard {shard} written ({counted(records, 'record')}, "
                                 f"{counted(manifest['entities'], 'entity', 'entities')}): {done:,}{of} records "
                                 f"done, {words_per_s:,.0f} words/s")
                if bad_input > options.max_rejects or (stop_after_shards is not None and written >= stop_after_shards):
                    stopped = True
                    break
        finally:
            if bar is not None:
                bar.close()
            if total is not None:
                total.stop()
            if hasattr(shards, "close"):
                shards.close()
        wall = time.perf_counter() - start
        stats = {
            "engine": options.engine,
            "n_process": options.n_process,
            "batch_size": options.batch_size,
            "gpu_id": options.gpu_id,
            "this_invocation": {"shards_written": written, "shards_skipped": len(previous), "documents": documents,
                                "words": words, "wall_time_s": round(wall, 3),
                                "words_per_s": round(words / wall, 1) if wall > 0 else None},
        }
        # `bad_input` counts every finished shard's bad input, those of earlier invocations
        # too (as the summary does): the same output fails the same way, however it was reached.
        too_many = bad_input > options.max_rejects
        status = "failed: too many rejects" if too_many else "stopped" if stopped else "complete"
        try:
            summary = out.write_summary(paths, status, stats)
        except OSError as e:  # as a shard's
            raise AnnotateError(
                f"{output}: summary.json cannot be written ({e.strerror or e}); the shards written are kept: "
                "rerun with --resume once it can be, which writes it") from None
        if too_many:
            # Not "stopped early": the limit may have been passed on the last shard.
            where = f"; the run ended there (shards written: {summary['shards']})" if stopped else ""
            raise TooManyRejects(
                f"{summary['rejected_bad_input']} records rejected as bad input, more than --max-rejects "
                f"{options.max_rejects}{where} (and {summary['rejected_not_bad_input']} empty or too long, "
                f"not counted; see {output}/rejects and {output}/summary.json); to go on, rerun with --resume "
                "and a higher --max-rejects", summary)
        return summary


class _BarMoves:
    """The progress bar's records and words/s, moved batch by batch (`batch_done`, the local engine)
    and made whole as each shard is written (`shard_done`: its rejects, and the Ray engine's shards)."""

    def __init__(self, bar: Any, start: float) -> None:
        self.bar = bar
        self.start = start
        self.shown = 0  # records of the shard being annotated already on the bar
        self.words = 0  # words annotated, of the shards written and of the batches shown

    def batch_done(self, batch: Sequence[Any]) -> None:
        if self.bar is None:
            return
        self.shown += len(batch)
        self.words += sum(result.n_words for result in batch)
        self.bar.update(len(batch))
        self._show_speed()

    def shard_done(self, records: int, words: int) -> None:
        self.bar.update(records - self.shown)
        self.shown, self.words = 0, words
        self._show_speed()

    def _show_speed(self) -> None:
        self.bar.set_postfix(words_per_s=f"{self.words / max(time.perf_counter() - self.start, 1e-9):,.0f}")


def _progress_bar(paths: Sequence[Path], options: Options, done: int) -> Any:
    """A tqdm bar over input records (annotated or rejected), from `done` (those of the shards
    finished before), with words/s, and an ETA once the total is known.

    The total is counted in a thread while the run goes on: counting decompresses
    and frames every PubMed file once more, minutes for a whole baseline. Closing
    the bar stops the count after the file it is reading.
    """
    from tqdm import tqdm

    class CountedBar(tqdm):  # type: ignore[misc, valid-type]
        def close(self) -> None:
            counter.stop()
            super().close()

    bar = CountedBar(total=None, initial=done, unit="doc", desc="annotate", dynamic_ncols=True)

    def show_total(total: int) -> None:
        bar.total = total
        bar.refresh()

    counter = _RecordTotal(paths, options, show_total)
    return bar


class _RecordTotal:
    """The number of input records (`count_records`), counted in a thread while the run goes on:
    `value` is None until it is known, or for good where an input's count is unknown.

    Counting decompresses and frames every PubMed file once more, minutes for a
    whole baseline. `stop` ends the count after the file it is reading.
    """

    def __init__(self, paths: Sequence[Path], options: Options,
                 on_known: Callable[[int], None] = lambda total: None):
        self.value: Optional[int] = None
        self._stop = threading.Event()

        def count() -> None:
            counts = []
            for path in paths:
                if self._stop.is_set():
                    return
                counts.append(count_records(path, options.id_key, options.text_key))
            if all(c is not None for c in counts) and not self._stop.is_set():
                self.value = sum(min(c, options.limit or c) for c in counts)  # type: ignore[type-var]
                on_known(self.value)

        threading.Thread(target=count, name="annotate-progress-total", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
