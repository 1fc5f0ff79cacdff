"""Recording the encoder actually used, and the package metadata for `spacy package`.

The encoder is resolved when a pipeline is initialised (SciBERT, or the
offline fallback where SciBERT cannot be loaded: see encoders.py). The
`spacy_bioner.record_encoder.v1` callback, run as `[initialize.after_init]`,
prints the resolved encoder in the training log and writes it to
`nlp.meta["sources"]` and `nlp.meta["description"]` (and, for an encoder
made by `pretrain`, its pretraining record to `nlp.meta["spacy_bioner_pretraining"]`:
spaCy's meta schema allows only strings in a source), which `spacy train`
saves in the trained pipeline's meta.json. `package_meta` then adds the
project's own metadata file (configs/meta.json), this library's version and
the measured test scores, for `spacy package --meta-path`, which writes the
model card from it.
"""

import hashlib
import json
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from spacy.language import Language
from spacy.util import registry
from wasabi import msg

from .about import __version__
from .files import update_digest
from .messages import first_line

ENCODER_META_KEY = "spacy_bioner_encoder"
PRETRAINING_META_KEY = "spacy_bioner_pretraining"
# The `[initialize.after_init]` callback that records the encoder.
RECORD_ENCODER = "spacy_bioner.record_encoder.v1"


def encoder_name(nlp: Language, component: str = "transformer") -> Optional[str]:
    """The encoder a pipeline's transformer was initialised from (name or path); a disabled
    transformer's too (spacy train initialises with its sourced components disabled)."""
    if component not in nlp.component_names:
        return None
    return nlp.get_pipe(component).model.attrs.get("name")


def describe_encoder(name: str, pretraining: Optional[Dict[str, Any]] = None) -> Dict[str, str]:
    """A meta.json "sources" entry for an encoder name or local path.

    A local directory inside an installed encoder package (the offline
    fallback) is named by the package; any other directory by its path, and
    by its `pretraining_record` (read here unless given).
    """
    from .encoders import PACKAGED_ENCODERS, packaged_encoder_path

    path = Path(name)
    for package in PACKAGED_ENCODERS:
        try:
            packaged = packaged_encoder_path(package)
        except OSError:
            continue
        if path.is_dir() and path.resolve() == packaged.resolve():
            model = _model_id(path) or path.name
            return {
                "name": f"{model} (Python package {package})",
                "url": f"https://pypi.org/project/{package}/",
                "license": "Apache-2.0",
                "encoder": model,
                "package": package,
            }
    if path.is_dir():
        model = _model_id(path) or path.name
        source = {"name": f"{model} (local directory {path})", "url": "", "encoder": model}
        pretraining = pretraining or pretraining_record(path)
        if pretraining:
            base = pretraining["base_encoder"]
            # The base by its package where it is the offline fallback, not a site-packages path.
            base = describe_encoder(base)["name"] if isinstance(base, str) else base
            source["name"] = (
                f"{model} (local directory {path}): {base} with domain-adaptive "
                f"masked-LM pretraining, {pretraining['steps']:,} steps, {pretraining['tokens_seen']:,} tokens"
            )
            before, after = pretraining["heldout_perplexity_before"], pretraining["heldout_perplexity_after"]
            if before is not None and after is not None:
                source["name"] += f", held-out perplexity {before:.1f} -> {after:.1f}"
                if pretraining.get("new_head"):
                    source["name"] += " (before: a new masked-LM head's, the base had none)"
        return source
    return {"name": name, "url": f"https://huggingface.co/{name}", "encoder": name}


def pretraining_record(path: Path) -> Optional[Dict[str, Any]]:
    """What `python -m spacy_bioner pretrain` did to the encoder in `path`, if anything.

    The held-out perplexities are None where nothing was held out (NaN would
    not survive meta.json: srsly refuses to write it).
    """
    from .pretraining import RESULTS_FILE

    record = path / RESULTS_FILE
    if not record.exists():
        return None
    data = json.loads(record.read_text(encoding="utf8"))
    heldout = data.get("heldout") or {}
    return {
        "base_encoder": data.get("base_encoder"),
        "steps": data.get("steps", 0),
        "tokens_seen": data.get("tokens_seen", 0),
        "heldout_perplexity_before": (heldout.get("before") or {}).get("perplexity"),
        "heldout_perplexity_after": (heldout.get("after") or {}).get("perplexity"),
        "new_head": bool((heldout.get("before") or {}).get("new_head")),
    }


def _model_id(path: Path) -> Optional[str]:
    """The model's own name, from a sentence-transformers README or config."""
    readme = path / "README.md"
    if readme.exists():
        for line in readme.read_text(encoding="utf8", errors="replace").splitlines():
            if line.startswith("# "):
                return line[2:].strip()
    config = path / "config.json"
    if config.exists():
        name = json.loads(config.read_text(encoding="utf8")).get("_name_or_path")
        if name and not Path(name).is_absolute():
            return name
    return None


def pipeline_encoder(nlp: Language) -> str:
    """The encoder a trained pipeline names (as `record_encoder` stored it), else
    the one its transformer was initialised from; "unknown" without either."""
    if nlp.meta.get(ENCODER_META_KEY):
        return nlp.meta[ENCODER_META_KEY]
    name = encoder_name(nlp)
    return describe_encoder(name)["encoder"] if name else "unknown"


def record_encoder(nlp: Language, component: str = "transformer") -> Language:
    """Log the resolved encoder and store it in nlp.meta (sources, description).

    A `component` that names none of the pipeline's transformer components, where it has some, is
    refused: the encoder would go unrecorded (the config's `[initialize.after_init] component`, left
    behind by a renamed transformer). A pipeline without one (a head with its own tok2vec) records none."""
    from spacy_transformers import Transformer

    transformers = [name for name, pipe in nlp.components if isinstance(pipe, Transformer)]
    if transformers and component not in transformers:
        raise ValueError(
            f"{RECORD_ENCODER}: {component!r} ([initialize.after_init] component) is none of the pipeline's "
            f"transformer components, whose encoder it records: {', '.join(map(repr, transformers))}"
        )
    name = encoder_name(nlp, component)
    if name is None:
        return nlp
    pretraining = pretraining_record(Path(name)) if Path(name).is_dir() else None
    source = describe_encoder(name, pretraining)
    msg.info(f"Encoder used by {component!r}: {source['name']}")
    nlp.meta[ENCODER_META_KEY] = source["encoder"]
    if pretraining:
        nlp.meta[PRETRAINING_META_KEY] = pretraining
    else:
        nlp.meta.pop(PRETRAINING_META_KEY, None)
    sources = [s for s in nlp.meta.get("sources", []) if not s.get("encoder")]
    nlp.meta["sources"] = sources + [source]
    description = nlp.meta.get("description") or ""
    nlp.meta["description"] = _with_encoder(description, source["name"])
    _name_fallback_in_paths(nlp, component, source)
    return nlp


def _name_fallback_in_paths(nlp: Language, component: str, source: Dict[str, str]) -> None:
    """Where the transformer's name is `${paths.transformer}` and an encoder package stood in
    for it (the offline fallback), name that package there: the saved config.cfg then trains
    the encoder the weights came from, not the one asked for."""
    package = source.get("package")
    config = nlp.config  # spaCy's live config, which nlp.to_disk saves; built anew at each access
    paths = config.get("paths", {})
    model = config["components"][component].get("model", {})
    if package and model.get("name") == "${paths.transformer}" and paths.get("transformer") != package:
        msg.info(f"[paths] transformer: {paths.get('transformer')} -> {package}, the encoder used")
        paths["transformer"] = package


def _with_encoder(description: str, encoder: str) -> str:
    lines = [line for line in description.splitlines() if not line.startswith("Encoder: ")]
    return "\n".join(lines + [f"Encoder: {encoder}"]).strip()


@registry.callbacks(RECORD_ENCODER)
def make_record_encoder(component: str = "transformer") -> Callable[[Language], Language]:
    """`[initialize.after_init]` callback: log and record the encoder used."""

    def after_init(nlp: Language) -> Language:
        return record_encoder(nlp, component)

    return after_init


# ---------------------------------------------------------------------------
# Package metadata


def package_meta(
    model_dir: Path,
    project_meta: Dict[str, Any],
    metrics_dir: Path,
    command: str = "",
    primary: Optional[Dict[str, str]] = None,
) -> Dict[str, Any]:
    """The meta.json for `spacy package --meta-path`: the trained pipeline's meta,
    the project's (name, description, license, sources, notes), this library's
    version and requirement, and the measured test scores.

    Scores go under spaCy's standard "performance" keys: each head's
    `spans_<key>_p/r/f/per_type` from its corpus's test set (`primary`: the
    corpus of a head scored on several, see `performance`), and `ents_p/r/f`
    and `ents_per_type` pooled over the heads. The description ends with the
    test F1 of each corpus, which `spacy info` shows. Refused (ValueError)
    for a pipeline without bio_ner heads or without the encoder's record,
    without metrics of this pipeline (see `metrics_to_publish`), and where a
    head has no test scores.
    """
    meta = read_json(Path(model_dir) / "meta.json")
    config = _pipeline_config(model_dir)
    components = config["components"]
    # A disabled head predicts nothing where the package is loaded, and `evaluate` cannot score it.
    disabled = set(config["nlp"].get("disabled", []))
    heads = {name: component for name, component in components.items()
             if component.get("factory") == "bio_ner" and name not in disabled}
    if not heads:
        raise ValueError(
            f"{model_dir} is not a spacy-bioner pipeline: none of its components ({', '.join(components) or 'none'}) "
            "is a bio_ner head; give a pipeline trained by this project (e.g. training/model-best)"
        )
    encoder_sources = [s for s in meta.get("sources", []) if s.get("encoder")]
    if not encoder_sources:
        raise ValueError(
            f"{model_dir}/meta.json does not name the encoder used: train with a config whose "
            f'[initialize.after_init] section has @callbacks = "{RECORD_ENCODER}", as configs/bioner.cfg does'
        )
    metrics = metrics_to_publish(metrics_dir, model_dir)
    meta.update({k: v for k, v in project_meta.items() if k not in ("sources", "requirements")})
    meta["version"] = __version__
    requirements = library_requirements()
    # The pipeline's own (spacy package adds the packages of its config's functions) and the project's.
    meta["requirements"] = requirements + [
        r for r in dict.fromkeys([*meta.get("requirements", []), *project_meta.get("requirements", [])])
        if not _same_requirement(r, requirements)
    ]
    meta["sources"] = encoder_sources + list(project_meta.get("sources", []))
    if "spacy_version" not in project_meta:
        meta["spacy_version"] = spacy_minor_range()
    meta["performance"] = performance(metrics, primary)
    scored = {result["spans_key"] for result in metrics.values()}
    unscored = [name for name, head in heads.items() if _saved_spans_key(model_dir, name, head) not in scored]
    if unscored:
        raise ValueError(
            f"--metrics {metrics_dir}: no test scores of head{'s' * (len(unscored) > 1)} {', '.join(unscored)}; "
            f"the model card would publish the other heads' alone. Evaluate {model_dir} on a test corpus of "
            f"every head (`python -m spacy_bioner evaluate {model_dir} --corpus NAME=TEST ...`)"
        )
    scores = ", ".join(f"{name} {m['seqeval']['f1']:.3f}" for name, m in metrics.items())
    encoder = encoder_sources[0]["name"]
    meta["description"] = (
        f"{project_meta.get('description', '').strip()} Encoder: {encoder}. "
        f"Test F1 (seqeval on the corpus's tokens, the pipeline reading the raw text): {scores}."
    )
    from .evaluation import markdown_table

    measured = ["### Test scores", "", markdown_table(metrics)]
    if "ents_f" in meta["performance"]:
        measured += ["(The Accuracy table's `ENTS_*` pool the heads' counts on their test sets, "
                     "not the entities of `doc.ents`.)", ""]
    if command:
        measured += ["Measured with:", "", f"    {command}", ""]
    meta["notes"] = "\n\n".join(filter(None, [project_meta.get("notes", ""), "\n".join(measured)]))
    return meta


def performance(metrics: Dict[str, Dict[str, Any]], primary: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
    """spaCy's performance keys from `evaluate`'s metrics (seqeval on each test set).

    Each head is scored on its test corpus; a head evaluated on several (BC5CDR
    from PubTator and in the IOB form) is scored on the one `primary` names for
    its spans key, and one not named is refused rather than picked by chance.
    `ents_*` pool the heads' entity counts (their labels are disjoint).
    """
    primary = primary or {}
    by_head: Dict[str, List[str]] = {}
    for name, result in metrics.items():
        by_head.setdefault(result["spans_key"], []).append(name)
    unknown = sorted(set(primary) - set(by_head))
    if unknown:
        raise ValueError(f"--performance names heads without test scores: {', '.join(unknown)} "
                         f"(scored heads: {', '.join(sorted(by_head))})")
    scores: Dict[str, Any] = {}
    pooled = {"gold": 0, "predicted": 0, "correct": 0}
    per_type: Dict[str, Dict[str, float]] = {}
    for key, names in by_head.items():
        name = primary.get(key, names[0])
        if name not in names or (len(names) > 1 and key not in primary):
            given = ""
            if name not in names:
                head = metrics[name]["spans_key"] if name in metrics else None
                whose = f"{name} is scored on head {head!r}" if head else "no such corpus"
                given = f"--performance {key}={name}: {whose}; "
            raise ValueError(f"{given}head {key!r} was evaluated on {', '.join(names)}: name the corpus for its "
                             f"performance scores with --performance {key}=CORPUS")
        seqeval = metrics[name]["seqeval"]
        rows = {label: {"p": r["p"], "r": r["r"], "f": r["f1"]} for label, r in seqeval["per_type"].items()}
        scores.update({f"spans_{key}_p": seqeval["p"], f"spans_{key}_r": seqeval["r"], f"spans_{key}_f": seqeval["f1"]})
        scores[f"spans_{key}_per_type"] = rows
        per_type.update(rows)
        for count in pooled:
            pooled[count] += seqeval["entities"][count]
    if pooled["correct"]:
        p, r = pooled["correct"] / pooled["predicted"], pooled["correct"] / pooled["gold"]
        scores.update({"ents_p": p, "ents_r": r, "ents_f": 2 * p * r / (p + r), "ents_per_type": per_type})
    return scores


def library_requirements() -> List[str]:
    """What the packaged pipeline needs beside spaCy: this library and
    spacy-transformers, each within the minor version it was built with, as
    `spacy package` pins the packages of a config's functions: named here, so
    that the requirement does not depend on how spacy-bioner is installed."""
    from spacy.util import get_minor_version_range, get_package_version

    return [
        f"spacy-bioner{get_minor_version_range(__version__)}",
        f"spacy-transformers{get_minor_version_range(get_package_version('spacy-transformers'))}",
    ]


def spacy_minor_range() -> str:
    """The packaged pipeline's spaCy: the minor version it was built with, from its first
    patch, as this library requires (setup.py); spaCy's own meta names the patch it ran
    (">=3.8.18"), which would refuse a 3.8 that this library accepts."""
    from spacy import about

    major, minor = about.__version__.split(".")[:2]
    return f">={major}.{minor}.0,<{major}.{int(minor) + 1}.0"


def _same_requirement(req: str, reqs: List[str]) -> bool:
    from spacy.util import split_requirement

    return split_requirement(req)[0] in {split_requirement(r)[0] for r in reqs}


def read_json(path: Path) -> Any:
    """The JSON in `path`; a ValueError naming the file where it is not valid JSON."""
    try:
        return json.loads(Path(path).read_text(encoding="utf8"))
    except ValueError as e:  # JSONDecodeError (a byte-order mark, say), UnicodeDecodeError
        raise ValueError(f"{path}: not valid JSON ({first_line(e)})") from None


def metrics_to_publish(metrics_dir: Path, model_dir: Path) -> Dict[str, Dict[str, Any]]:
    """The metrics `evaluate` wrote to `metrics_dir`, as the test scores of the pipeline in `model_dir`.

    Refused (ValueError) where the folder is missing or holds no metrics (a
    typo would ship a card that says "Not evaluated"), where a corpus was
    scored in part (evaluate --limit): the card would publish partial scores
    as the test F1, or at another precision than the pipeline's own
    (evaluate --precision), or on the corpus's own tokens (evaluate --gold-tokens), or where the metrics are not of this pipeline as it is now
    (`pipeline_sha256`: a train run after `evaluate` would ship the previous
    model's scores) or lack the entity counts that `performance` pools.
    """
    if not Path(metrics_dir).is_dir():
        raise ValueError(f"--metrics {metrics_dir}: no such folder; run `evaluate` first, or name its --output-dir")
    metrics = load_metrics(metrics_dir)
    if not metrics:
        raise ValueError(f"--metrics {metrics_dir}: no metrics (<corpus>.json written by `evaluate`) in the "
                         "folder; run `evaluate` first, or name its --output-dir")
    overridden = any(result.get("precision") for result in metrics.values())
    saved_precision = _saved_precision(model_dir) if overridden else None
    for name, result in metrics.items():
        if result.get("limit"):
            raise ValueError(
                f"--metrics {metrics_dir}: {name} was scored on its first {result['limit']:,} documents only "
                "(evaluate --limit); evaluate it again without --limit: partial scores are not test scores"
            )
        if result.get("tokens") == "gold":
            raise ValueError(
                f"--metrics {metrics_dir}: {name} was scored with the pipeline reading the corpus's own tokens "
                "(evaluate --gold-tokens), not the raw text as the package reads it; evaluate it again "
                "without --gold-tokens"
            )
        if result.get("precision") and result["precision"] != saved_precision:
            raise ValueError(
                f"--metrics {metrics_dir}: {name} was scored with the encoder at {result['precision']} "
                f"(evaluate --precision, or a device that cannot compute in the pipeline's own: bfloat16 without "
                f"its arithmetic, float16 off a CUDA GPU), not at {saved_precision} as the package runs it; "
                "evaluate it again without --precision, on a device that computes in it"
            )
    scored = pipeline_sha256(model_dir)
    for name, result in metrics.items():
        if "pipeline_sha256" not in result:
            why = "does not record the pipeline it was measured on (an older `evaluate` wrote it)"
        elif result["pipeline_sha256"] != scored:
            why = (f"was not measured on {model_dir} as it is now (it scored {result.get('pipeline')}: another "
                   "pipeline, or this one before it was trained again)")
        elif "entities" not in result["seqeval"]:
            why = "has no entity counts to pool (an older `evaluate` wrote it)"
        else:
            continue
        raise ValueError(
            f"--metrics {metrics_dir}: {name} {why}; evaluate {model_dir} again "
            f"(`python -m spacy_bioner evaluate {model_dir} ...`, or `spacy project run evaluate`)"
        )
    return metrics


def _saved_precision(model_dir: Path) -> str:
    """The precision a saved pipeline's shared transformer is set to (float32 where its config names none)."""
    transformer = _pipeline_config(model_dir)["components"].get("transformer", {})
    return str(transformer.get("model", {}).get("precision", "float32"))


def _saved_spans_key(model_dir: Path, name: str, component: Dict[str, Any]) -> str:
    """The key a saved head writes: the one saved with its weights (`BioNER.spans_key`, which may
    have been moved after the config was written), else its config's."""
    path = Path(model_dir) / name / "cfg"
    saved = read_json(path).get("spans_key") if path.is_file() else None
    return saved or component["spans_key"]


def _pipeline_config(model_dir: Path) -> Dict[str, Any]:
    """A saved pipeline's config.cfg, uninterpolated; a ValueError naming a pipeline without one."""
    from thinc.api import Config

    path = Path(model_dir) / "config.cfg"
    if not path.is_file():
        raise ValueError(f"{model_dir} is not a trained pipeline (no config.cfg)")
    return Config().from_disk(path, interpolate=False)


def pipeline_sha256(model_dir: Path) -> str:
    """What `evaluate` records of the pipeline it scored, for `package-meta` to tell it from another:
    the SHA-256 of the files the predictions are loaded from (config.cfg, the tokenizer and each
    component's files), not of meta.json (notes) nor vocab/ (its strings grow as text is read).

    A copy of the folder has the same; a pipeline loaded and saved again may not (a transformer's
    saved config names the temporary folder it was loaded from).
    """
    model_dir = Path(model_dir)
    files: List[Path] = []
    for name in ["config.cfg", "tokenizer", *_pipeline_config(model_dir)["nlp"]["pipeline"]]:
        path = model_dir / name
        files += sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    digest = hashlib.sha256()
    for path in files:
        if not path.is_file():  # a component that saves nothing
            continue
        digest.update(f"{path.relative_to(model_dir).as_posix()}\0{path.stat().st_size}\0".encode("utf8"))
        update_digest(digest, path)
    return digest.hexdigest()


def load_metrics(metrics_dir: Path) -> Dict[str, Dict[str, Any]]:
    """metrics/<corpus>.json files written by `evaluate`, by corpus, in file order."""
    found = {}
    for path in sorted(Path(metrics_dir).glob("*.json")):
        data = read_json(path)
        if isinstance(data, dict) and "seqeval" in data:
            found[data.get("corpus", path.stem)] = data
    return found
