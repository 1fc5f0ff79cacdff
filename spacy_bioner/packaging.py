"""Recording the encoder actually used, and preparing a pipeline for `spacy package`.

The encoder is resolved when a pipeline is initialised (SciBERT, or the
offline fallback where SciBERT cannot be loaded: see encoders.py). The
`spacy_bioner.record_encoder.v1` callback, run as `[initialize.after_init]`,
prints the resolved encoder in the training log and writes it to
`nlp.meta["sources"]` and `nlp.meta["description"]`, which `spacy train`
saves in the trained pipeline's meta.json. `prepare_package` then turns a
trained pipeline and its measured scores into a package directory: meta.json
(name, version, requirements, sources, scores) and a README model card.
"""

import json
import shutil
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from spacy.language import Language
from spacy.util import registry
from wasabi import msg

ENCODER_META_KEY = "spacy_bioner_encoder"
PACKAGE_REQUIREMENTS = ["spacy-bioner>=0.1.0", "spacy-transformers>=1.4,<1.5"]
HEAD_LABELS = {
    "jnlpba": ["protein", "DNA", "RNA", "cell_line", "cell_type"],
    "bc5cdr": ["Chemical", "Disease"],
}


def encoder_name(nlp: Language, component: str = "transformer") -> Optional[str]:
    """The encoder a pipeline's transformer was initialised from (name or path)."""
    if component not in nlp.pipe_names:
        return None
    return nlp.get_pipe(component).model.attrs.get("name")


def describe_encoder(name: str) -> Dict[str, str]:
    """A meta.json "sources" entry for an encoder name or local path.

    A local directory inside an installed encoder package (the offline
    fallback) is named by the package; any other directory by its path.
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
        return {"name": f"{model} (local directory {path})", "url": "", "encoder": model}
    return {"name": name, "url": f"https://huggingface.co/{name}", "encoder": name}


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


def record_encoder(nlp: Language, component: str = "transformer") -> Language:
    """Log the resolved encoder and store it in nlp.meta (sources, description)."""
    name = encoder_name(nlp, component)
    if name is None:
        return nlp
    source = describe_encoder(name)
    msg.info(f"Encoder used by {component!r}: {source['name']}")
    nlp.meta[ENCODER_META_KEY] = source["encoder"]
    sources = [s for s in nlp.meta.get("sources", []) if not s.get("encoder")]
    nlp.meta["sources"] = sources + [source]
    description = nlp.meta.get("description") or ""
    nlp.meta["description"] = _with_encoder(description, source["name"])
    return nlp


def _with_encoder(description: str, encoder: str) -> str:
    lines = [line for line in description.splitlines() if not line.startswith("Encoder: ")]
    return "\n".join(lines + [f"Encoder: {encoder}"]).strip()


@registry.callbacks("spacy_bioner.record_encoder.v1")
def make_record_encoder(component: str = "transformer") -> Callable[[Language], Language]:
    """`[initialize.after_init]` callback: log and record the encoder used."""

    def after_init(nlp: Language) -> Language:
        return record_encoder(nlp, component)

    return after_init


# ---------------------------------------------------------------------------
# Package preparation


def prepare_package(
    model_dir: Path,
    metrics_dir: Path,
    output_dir: Path,
    name: str,
    version: str,
    command: str = "",
) -> Dict[str, Any]:
    """Copy a trained pipeline to `output_dir` with a package meta.json and README.

    The measured test scores (metrics/<corpus>.json written by `evaluate`)
    go into meta.json ("performance") and the model card. Returns the meta.
    """
    meta = json.loads((model_dir / "meta.json").read_text(encoding="utf8"))
    metrics = load_metrics(metrics_dir)
    sources = [s for s in meta.get("sources", []) if s.get("encoder")]
    encoder = meta.get(ENCODER_META_KEY) or (sources[0]["encoder"] if sources else None)
    if encoder is None:
        raise ValueError(
            f"{model_dir}/meta.json does not name the encoder used: train with "
            "[initialize.after_init] = spacy_bioner.record_encoder.v1 (configs/bioner.cfg)"
        )
    encoder_full = sources[0]["name"] if sources else encoder
    meta["name"] = name
    meta["version"] = version
    meta["description"] = (
        "Biomedical named-entity recognition (spacy-bioner): one shared transformer and two "
        "bio_ner heads, JNLPBA (protein, DNA, RNA, cell_line, cell_type) -> "
        "doc.spans['jnlpba'] and BC5CDR (Chemical, Disease) -> doc.spans['bc5cdr']; "
        f"doc.ents holds their union without overlaps. Encoder: {encoder_full}."
    )
    meta.setdefault("license", "MIT")
    meta["author"] = meta.get("author") or "spacy-bioner"
    requirements = [r for r in meta.get("requirements", []) if not _same_requirement(r, PACKAGE_REQUIREMENTS)]
    meta["requirements"] = PACKAGE_REQUIREMENTS + requirements
    meta["sources"] = sources + CORPUS_SOURCES
    if metrics:
        meta["test_scores"] = {
            corpus: {k: m["seqeval"][k] for k in ("p", "r", "f1")} for corpus, m in metrics.items()
        }
    if output_dir.exists():
        shutil.rmtree(output_dir)
    shutil.copytree(model_dir, output_dir)
    (output_dir / "meta.json").write_text(json.dumps(meta, indent=2), encoding="utf8")
    package_name = f"{meta['lang']}_{name}"
    (output_dir / "README.md").write_text(
        model_card(meta, package_name, encoder_full, metrics, command), encoding="utf8"
    )
    return meta


def _same_requirement(req: str, reqs: List[str]) -> bool:
    from spacy.util import split_requirement

    return split_requirement(req)[0] in {split_requirement(r)[0] for r in reqs}


CORPUS_SOURCES = [
    {
        "name": "JNLPBA (BioNLP/JNLPBA 2004 shared task, GENIA 3.02)",
        "url": "http://www.nactem.ac.uk/GENIA/current/Shared-tasks/JNLPBA/",
        "license": "GENIA Project licence",
    },
    {
        "name": "BC5CDR (BioCreative V Chemical-Disease Relation corpus)",
        "url": "https://biocreative.bioinformatics.udel.edu/tasks/biocreative-v/track-3-cdr/",
        "license": "research use (BioCreative)",
    },
]


def load_metrics(metrics_dir: Path) -> Dict[str, Dict[str, Any]]:
    """metrics/<corpus>.json files written by `evaluate`, by corpus."""
    found = {}
    for path in sorted(Path(metrics_dir).glob("*.json")):
        data = json.loads(path.read_text(encoding="utf8"))
        if isinstance(data, dict) and "seqeval" in data:
            found[data.get("corpus", path.stem)] = data
    return found


def model_card(
    meta: Dict[str, Any], package_name: str, encoder: str, metrics: Dict[str, Dict[str, Any]], command: str
) -> str:
    from .evaluation import markdown_table

    lines = [
        f"# {package_name} {meta['version']}",
        "",
        "Biomedical named-entity recognition for spaCy, built with "
        "[spacy-bioner](https://pypi.org/project/spacy-bioner/): a shared transformer and one "
        "`bio_ner` head per corpus, finding seven entity types in one pass.",
        "",
        f"**Encoder used:** {encoder}",
        "",
        "| head (`doc.spans` key) | corpus | labels |",
        "| --- | --- | --- |",
        f"| `jnlpba` | JNLPBA | {', '.join(HEAD_LABELS['jnlpba'])} |",
        f"| `bc5cdr` | BC5CDR | {', '.join(HEAD_LABELS['bc5cdr'])} |",
        "",
        "`doc.ents` holds the union of both heads without overlaps (higher score wins, then the "
        "longer span); each head's spans, with a confidence per span, are in "
        "`doc.spans[key]` and `doc.spans[key].attrs['scores']`.",
        "",
        "## Usage",
        "",
        "```python",
        "import spacy",
        "",
        f'nlp = spacy.load("{package_name}")',
        'doc = nlp("Naloxone reverses the antihypertensive effect of clonidine in IL-2 treated T cells.")',
        "print([(ent.text, ent.label_) for ent in doc.ents])",
        'group = doc.spans["bc5cdr"]',
        'print(list(zip([s.text for s in group], group.attrs["scores"])))',
        "```",
        "",
        "The transformer weights are inside the package: loading never contacts the Hugging Face hub.",
        "",
        "## Test scores",
        "",
    ]
    if metrics:
        lines += [
            "Entity-level micro P/R/F1 with seqeval (default, conlleval-compatible mode) on each "
            "corpus's test set with gold tokenization; each corpus is scored on its own head.",
            "",
            markdown_table(metrics),
        ]
        if command:
            lines += ["Measured with:", "", f"    {command}", ""]
    else:
        lines += ["Not measured.", ""]
    lines += [
        "## Details",
        "",
        f"- spaCy: {meta.get('spacy_version', '')}",
        f"- Pipeline: {', '.join(meta.get('pipeline', []))}",
        f"- Requirements: {', '.join(meta.get('requirements', []))}",
        "- Sources: " + "; ".join(s["name"] for s in meta.get("sources", [])),
        "",
    ]
    return "\n".join(lines)
