"""Loading a pipeline with its encoder at another precision (`load_pipeline(precision=...)`,
`--precision` of the commands that load one).

bfloat16 runs only where the device has bfloat16 arithmetic; the tests set the
CPU's answer (`encoder_shim._cpu_has_bfloat16`), so that they run the same on
any CPU: with it, autocast runs in bfloat16 whether the arithmetic is native
or emulated.
"""

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import spacy
from toy import toy_abstracts, write_texts

from spacy_bioner.annotate import AnnotateError, Options, annotate, read_table
from spacy_bioner.annotate.engine import BatchAnnotator
from spacy_bioner.annotate.ray_engine import _ShardAnnotator
from spacy_bioner.layers import encoder_shim
from spacy_bioner.loading import PipelineLoadError, encoder_precision, load_pipeline


def hidden_states(nlp: spacy.Language, texts):
    transformer = nlp.get_pipe("transformer")
    return transformer.model.predict([nlp.make_doc(text) for text in texts]).model_output.last_hidden_state


def test_bfloat16_runs_the_encoder_under_autocast(tiny_pipeline: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(encoder_shim, "_cpu_has_bfloat16", lambda: True)
    texts = toy_abstracts(3, seed=2)
    saved = load_pipeline(str(tiny_pipeline))
    as_bfloat16 = load_pipeline(str(tiny_pipeline), precision="bfloat16")
    as_float32 = load_pipeline(str(tiny_pipeline), precision="float32")
    assert [encoder_precision(nlp) for nlp in (saved, as_bfloat16, as_float32)] == ["float32", "bfloat16", "float32"]
    exact, ours = hidden_states(saved, texts), hidden_states(as_bfloat16, texts)
    np.testing.assert_array_equal(hidden_states(as_float32, texts).numpy(), exact.numpy())
    assert ours.dtype == exact.dtype  # the heads still get float32
    np.testing.assert_allclose(ours.numpy(), exact.numpy(), atol=0.1)
    assert (ours - exact).abs().max() > 0  # computed in bfloat16
    # The override is the loaded pipeline's, not the saved one's.
    assert spacy.load(tiny_pipeline).config["components"]["transformer"]["model"]["precision"] == "float32"


def test_bfloat16_without_bfloat16_arithmetic_is_refused(tiny_pipeline: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The shim would run float32 with a warning: a run asked for bfloat16 would silently be another."""
    monkeypatch.setattr(encoder_shim, "_cpu_has_bfloat16", lambda: False)
    with pytest.raises(PipelineLoadError, match="this CPU has no bfloat16 arithmetic .*use float32"):
        load_pipeline(str(tiny_pipeline), precision="bfloat16")
    # Loaded only to be inspected (the Ray engine's driver): not refused. Set to bfloat16, it
    # would compute in float32 here.
    nlp = load_pipeline(str(tiny_pipeline), precision="bfloat16", check_device=False)
    assert encoder_precision(nlp, effective=False) == "bfloat16" and encoder_precision(nlp) == "float32"


@pytest.mark.filterwarnings("ignore:precision 'float16'")
def test_float16_off_cuda_is_recorded_as_the_float32_it_computes_in(tiny_pipeline: Path) -> None:
    """A pipeline trained in float16 on a GPU runs in float32 on a CPU: annotate's run.json said float16,
    evaluate's metrics were published as the pipeline's own, and a resume on a GPU mixed the two."""
    nlp = spacy.load(tiny_pipeline, config={"components": {"transformer": {"model": {"precision": "float16"}}}})
    assert encoder_precision(nlp, effective=False) == "float16" and encoder_precision(nlp) == "float32"


def test_a_precision_needs_this_packages_transformer(tmp_path: Path) -> None:
    spacy.blank("en").to_disk(tmp_path / "blank")
    with pytest.raises(PipelineLoadError, match="has no `transformer` component built by this package's"):
        load_pipeline(str(tmp_path / "blank"), precision="float32")
    assert encoder_precision(spacy.load(tmp_path / "blank")) is None
    with pytest.raises(PipelineLoadError, match="precision 'float16': use one of float32, bfloat16"):
        load_pipeline(str(tmp_path / "blank"), precision="float16")


@pytest.mark.slow
def test_annotate_records_the_precision_and_a_resume_must_keep_it(
    tiny_pipeline: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(encoder_shim, "_cpu_has_bfloat16", lambda: True)
    assert encoder_precision(BatchAnnotator(str(tiny_pipeline), precision="bfloat16").nlp) == "bfloat16"
    # What a Ray actor loads (the class, without Ray): the same.
    actor = _ShardAnnotator(str(tiny_pipeline), -1, batch_size=8, max_chars=1000, precision="bfloat16")
    assert encoder_precision(actor.annotator.nlp) == "bfloat16"
    inputs = [write_texts(tmp_path / "toy.jsonl", toy_abstracts(4, seed=1))]
    output = tmp_path / "out"
    annotate(str(tiny_pipeline), inputs, output, Options(shard_size=2, precision="bfloat16"), stop_after_shards=1)
    assert json.loads((output / "run.json").read_text(encoding="utf8"))["precision"] == "bfloat16"
    with pytest.raises(AnnotateError, match=r'another precision \("bfloat16" there, "float32" here\)'):
        annotate(str(tiny_pipeline), inputs, output, Options(shard_size=2), resume=True)
    summary = annotate(str(tiny_pipeline), inputs, output, Options(shard_size=2, precision="bfloat16"), resume=True)
    assert summary["status"] == "complete" and summary["run"]["precision"] == "bfloat16"
    # Without --precision the run records the pipeline's own.
    plain = annotate(str(tiny_pipeline), inputs, tmp_path / "plain", Options(shard_size=2))
    assert plain["run"]["precision"] == "float32"


def test_every_engine_loads_its_pipelines_at_the_precision(
    tiny_pipeline: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Worker processes and Ray actors load their own pipeline at the precision the run records (their
    loading, `BatchAnnotator` and `_ShardAnnotator`, is tested above; real actors in test_annotate.py)."""
    import contextlib

    from spacy_bioner.annotate import engine, ray_engine

    monkeypatch.setattr(encoder_shim, "_cpu_has_bfloat16", lambda: True)
    given = {}

    def pool_shards(model, planned, batch_size, max_chars, n_process, precision=None, on_batch=None):
        given["processes"] = precision
        return iter(())

    def ray_shards(model, inputs, **options):
        given["ray"] = options.get("precision"), options.get("expected_precision")
        return iter(())

    monkeypatch.setattr(engine, "_pool_shards", pool_shards)
    monkeypatch.setattr(ray_engine, "ray_shards", ray_shards)
    monkeypatch.setattr(ray_engine, "ray_session", lambda *args: contextlib.nullcontext())
    inputs = [write_texts(tmp_path / "toy.jsonl", toy_abstracts(2, seed=1))]
    # Without a precision, the pipeline's own (what the run records), which the Ray driver checks.
    for precision, expected in (("bfloat16", "bfloat16"), (None, "float32")):
        for engine_name, n_process in (("local", 2), ("ray", 1)):
            options = Options(engine=engine_name, n_process=n_process, precision=precision)
            annotate(str(tiny_pipeline), inputs, tmp_path / f"{engine_name}-{precision}", options)
        assert given == {"processes": precision, "ray": (precision, expected)}


def earlier_architecture(pipeline: Path, to: Path) -> Path:
    """`pipeline` as spacy_bioner.Transformer.v1 builds it: no `precision` setting (mixed_precision)."""
    shutil.copytree(pipeline, to)
    config = (to / "config.cfg").read_text(encoding="utf8")
    config = re.sub(r"spacy_bioner\.Transformer\.v\d+", "spacy_bioner.Transformer.v1", config)
    config = config.replace('precision = "float32"', "mixed_precision = false")
    for key in ("fused_update", "layer_lr_decay", "max_windows_per_pass", "cpu_windows_per_pass"):
        config = re.sub(rf"^{key} = .*\n", "", config, flags=re.M)
    (to / "config.cfg").write_text(config, encoding="utf8")
    return to


@pytest.mark.slow
def test_worker_processes_load_a_pipeline_of_an_earlier_architecture(tiny_pipeline: Path, tmp_path: Path) -> None:
    """A Transformer.v1 pipeline has no precision to set: its workers load it as it is (they were given
    its float32 as a setting it refused), and tag as the process itself does."""
    v1 = earlier_architecture(tiny_pipeline, tmp_path / "v1")
    assert encoder_precision(load_pipeline(str(v1))) == "float32"
    inputs = [write_texts(tmp_path / "toy.jsonl", toy_abstracts(6, seed=1))]
    one = annotate(str(v1), inputs, tmp_path / "one", Options(shard_size=3, fmt="jsonl"))
    two = annotate(str(v1), inputs, tmp_path / "two", Options(shard_size=3, fmt="jsonl", n_process=2))
    assert one["status"] == two["status"] == "complete"
    rows = read_table(tmp_path / "one", "entities", "jsonl")
    assert rows and read_table(tmp_path / "two", "entities", "jsonl") == rows


def test_demo_and_visualize_load_the_pipeline_at_the_precision(
    tiny_pipeline: Path, corpus_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from spacy_bioner.cli import app

    monkeypatch.setattr(encoder_shim, "_cpu_has_bfloat16", lambda: False)
    test = corpus_root / "jnlpba" / "test.spacy"
    for command in (["demo", str(tiny_pipeline)], ["visualize", str(tiny_pipeline), str(test), str(tmp_path / "out.html")]):
        result = CliRunner().invoke(app, command + ["--precision", "bfloat16"])
        assert result.exit_code == 1 and "this CPU has no bfloat16 arithmetic" in result.output, result.output
        assert CliRunner().invoke(app, command + ["--precision", "float32"]).exit_code == 0


def test_each_worker_process_loads_its_pipeline_at_the_precision(
    tiny_pipeline: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`_pool_shards` hands the precision to each worker's initializer. The pool here is one thread,
    which runs the real initializer and annotator in this process (and so sees the patched CPU)."""
    from concurrent.futures import ThreadPoolExecutor

    import torch

    from spacy_bioner.annotate import engine
    from spacy_bioner.annotate.sources import Record

    monkeypatch.setattr(encoder_shim, "_cpu_has_bfloat16", lambda: True)
    monkeypatch.setattr(engine, "_WORKER", None)
    monkeypatch.setattr(engine, "ProcessPoolExecutor",
                        lambda n, mp_context, initializer, initargs: ThreadPoolExecutor(1, initializer=initializer, initargs=initargs))
    planned = [(f"toy-{i:06d}", i, Record(f"toy{i}", text, "toy.jsonl", f"line {i + 1}"))
               for i, text in enumerate(toy_abstracts(4, seed=3))]

    def entities(n_process: int) -> list:
        shards = engine.local_shards(str(tiny_pipeline), planned, batch_size=2, max_chars=1000,
                                     n_process=n_process, precision="bfloat16")
        return [result.entities for _, results in shards for result in results]

    threads = torch.get_num_threads()
    try:
        in_pool = entities(2)
    finally:
        torch.set_num_threads(threads)  # the initializer sizes this process's threads, as a worker's
    assert engine._WORKER is not None and encoder_precision(engine._WORKER.nlp) == "bfloat16"
    assert in_pool == entities(1) and any(in_pool)


@pytest.mark.slow
def test_evaluate_at_another_precision_says_so_and_is_not_published(
    tiny_pipeline: Path, corpus_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from spacy_bioner.cli import app

    monkeypatch.setattr(encoder_shim, "_cpu_has_bfloat16", lambda: True)
    model = tmp_path / "model"
    shutil.copytree(tiny_pipeline, model)
    meta = json.loads((model / "meta.json").read_text())  # what package-meta needs besides the scores
    meta.update(sources=[{"name": "tiny (local directory)", "encoder": "tiny", "url": ""}], spacy_bioner_encoder="tiny")
    (model / "meta.json").write_text(json.dumps(meta))
    metrics = tmp_path / "metrics"
    # The tiny pipeline's heads learnt the same toy labels: each is scored on a corpus of them, under its key.
    from spacy.tokens import DocBin

    nlp = spacy.load(model)
    docs = list(DocBin().from_disk(corpus_root / "jnlpba" / "test.spacy").get_docs(nlp.vocab))
    for doc in docs:
        doc.spans["bc5cdr"] = doc.spans.pop("jnlpba")
    DocBin(docs=docs, store_user_data=True).to_disk(tmp_path / "bc5cdr.spacy")
    evaluate = ["evaluate", str(model), "--corpus", f"toy={corpus_root / 'jnlpba' / 'test.spacy'}",
                "--corpus", f"bc5cdr={tmp_path / 'bc5cdr.spacy'}", "--output-dir", str(metrics)]
    result = CliRunner().invoke(app, evaluate + ["--precision", "bfloat16"])
    assert result.exit_code == 0, result.output
    assert json.loads((metrics / "toy.json").read_text())["precision"] == "bfloat16"
    assert "Encoder precision: bfloat16, not the pipeline's own (--precision" in (metrics / "scores.md").read_text()
    out = tmp_path / "meta.json"
    package_meta = ["package-meta", str(model), str(Path(__file__).parents[1] / "configs" / "meta.json"),
                    str(out), "--metrics", str(metrics)]
    result = CliRunner().invoke(app, package_meta)
    assert result.exit_code == 1 and "at bfloat16 (evaluate --precision, or a device that cannot compute in the " \
        "pipeline's own: bfloat16 without its arithmetic, float16 off a CUDA GPU), not at float32 as the package" \
        in " ".join(result.output.split())
    assert not out.exists()
    # The pipeline's own precision, asked for or not, is how the package runs.
    for own in (["--precision", "float32"], []):
        result = CliRunner().invoke(app, evaluate + own)
        assert result.exit_code == 0 and json.loads((metrics / "toy.json").read_text())["precision"] == (own or [None])[-1]
        result = CliRunner().invoke(app, package_meta)
        assert result.exit_code == 0, result.output
    assert "Encoder precision" not in (metrics / "scores.md").read_text()
    # A bfloat16 pipeline scored on a CPU without bfloat16 arithmetic computed in float32: recorded, not published.
    bf16_model = tmp_path / "bf16-model"
    load_pipeline(str(model), precision="bfloat16").to_disk(bf16_model)
    monkeypatch.setattr(encoder_shim, "_cpu_has_bfloat16", lambda: False)
    evaluate[1] = str(bf16_model)
    result = CliRunner().invoke(app, evaluate)
    assert result.exit_code == 0 and json.loads((metrics / "toy.json").read_text())["precision"] == "float32"
    package_meta[1] = str(bf16_model)
    result = CliRunner().invoke(app, package_meta)
    assert result.exit_code == 1 and "at float32 (evaluate --precision, or a device that cannot compute" in result.output
