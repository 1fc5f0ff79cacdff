"""The inference benchmark on a tiny random BERT, on the CPU: both systems timed
on the same words at both batch sizes, the Hugging Face side reads texts longer
than the encoder's limit to the end, and `--gpu-id` without a GPU is a clean
usage error. Keeps `python scripts/inference.py` working."""

import json
from pathlib import Path
from typing import Any

import pipe_profile
import pytest
import spacy
import torch
from inference import app, hf_stride, hf_token_classifier
from spacy.tokens import Doc
from thinc.util import has_cupy_gpu
from toy import toy_sentences
from transformers import BertModel, BertTokenizerFast, pipeline
from typer.testing import CliRunner

from spacy_bioner.corpora import load_docs, write_docbin

# More pieces than the tiny BERT's 512 positions.
LONG_WORDS = ["the", "expression", "of"] * 200 + ["IL-2"]


@pytest.mark.slow
def test_both_systems_are_timed_on_the_same_words(tiny_pipeline: Path, tiny_bert: Path, tmp_path: Path) -> None:
    vocab = spacy.blank("en").vocab
    docs = [Doc(vocab, words=words) for words, _ in toy_sentences(8)] + [Doc(vocab, words=LONG_WORDS)]
    write_docbin(docs[:3] + docs[-1:], tmp_path / "corpus" / "jnlpba" / "test.spacy")
    write_docbin(docs[3:-1], tmp_path / "corpus" / "bc5cdr-iob" / "test.spacy")
    args = [
        "--model", str(tiny_pipeline), "--corpus-root", str(tmp_path / "corpus"), "--n-docs", "0",
        "--output-dir", str(tmp_path / "results"), "--tag", "toy",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output + repr(result.exception)
    [path] = (tmp_path / "results").glob("*-cpu-inference-toy.json")
    records = json.loads(path.read_text(encoding="utf8"))
    assert [(r["system"], r["batch_size"]) for r in records] == [
        (system, batch_size) for system in ("spacy_bioner", "hf_pipeline_ner") for batch_size in (32, 128)
    ]
    n_words = sum(len(doc.text.split()) for doc in docs)
    for record in records:
        assert record["words"] == n_words and record["docs"] == len(docs)
        assert len(record["runs_seconds"]) == record["repeats"] == 1
        assert record["model"] == str(tiny_pipeline)
        # The pipeline's own encoder; one head over O and B-/I- of its two labels.
        assert record["encoder"] == tiny_bert.name and record["encoder_weights"] == "the spaCy pipeline's"
        assert record["hf_labels"] == 5 and record["hf_stride"] == 128 and record["hf_max_length"] == 512
        assert record["threads"] == torch.get_num_threads() and record["device"]
        assert "peak_gpu_mb" not in record  # the CPU records keep their format
        assert record["precision"] == "float32"
        assert {"spacy", "transformers", "torch"} <= set(record["versions"])
    assert result.output.count("| spacy_bioner |") == 2 and result.output.count("| hf_pipeline_ner |") == 2


@pytest.mark.slow
def test_pipe_profile_times_every_component_and_the_encoder_apart(
    tiny_pipeline: Path, corpus_root: Path, tmp_path: Path
) -> None:
    result = CliRunner().invoke(pipe_profile.app, [
        "--model", str(tiny_pipeline), "--corpus-root", str(corpus_root), "--repeats", "2",
        "--output-dir", str(tmp_path), "--tag", "toy",
    ])
    assert result.exit_code == 0, result.output + repr(result.exception)
    [path] = tmp_path.glob("*-cpu-pipe-profile-toy.json")
    records = json.loads(path.read_text(encoding="utf8"))
    assert [r["batch_size"] for r in records] == [32, 128]
    pipe_names = spacy.load(tiny_pipeline).pipe_names
    vocab = spacy.blank("en").vocab
    texts = [doc.text for name in ("jnlpba", "bc5cdr-iob") for doc in load_docs(corpus_root / name / "test.spacy", vocab)]
    for record in records:
        parts = record["us_per_word"]
        assert list(parts) == ["tokenizer", "transformer", "encoder", *pipe_names[1:]]
        # The torch hooks timed the encoder's forward passes; the rest is the component's own work.
        assert parts["encoder"] > 0 and all(value >= 0 for value in parts.values())
        outside = sum(value for part, value in parts.items() if part != "encoder")
        assert record["outside_encoder_us_per_word"] == pytest.approx(outside, abs=0.01)
        assert record["words_per_second_bound"] == round(1e6 / record["outside_encoder_us_per_word"])
        assert record["words"] == sum(len(text.split()) for text in texts) and record["docs"] == len(texts)
        assert record["pipe_words_per_second"] > 0 and record["repeats"] == 2
    assert result.output.count("| 32 |") == result.output.count("| 128 |") == 1


def test_hf_pipeline_reads_long_texts_to_the_end(tiny_bert: Path, tmp_path: Path) -> None:
    """A tokenizer that declares no maximum length (as SciBERT's) is capped at the
    model's positions; the stride then carries the pipeline past the cut."""
    BertModel.from_pretrained(tiny_bert).save_pretrained(tmp_path)
    BertTokenizerFast(vocab_file=str(tiny_bert / "vocab.txt"), do_lower_case=False).save_pretrained(tmp_path)
    model, tokenizer = hf_token_classifier(str(tmp_path), ["O", "B-protein", "I-protein"])
    assert tokenizer.model_max_length == 512
    text = " ".join(LONG_WORDS)
    assert len(tokenizer(text)["input_ids"]) > 512

    def last_offset(**options: int) -> int:
        ner = pipeline("ner", model=model, tokenizer=tokenizer, aggregation_strategy="simple", device="cpu", **options)
        # Every group, "O" included: the last one ends where the pipeline stopped reading.
        return max(entity["end"] for entity in ner(text, ignore_labels=[]))

    assert last_offset(stride=hf_stride(tokenizer)) == len(text)
    assert last_offset() < len(text)  # what the pipeline does without a stride


@pytest.mark.skipif(has_cupy_gpu and torch.cuda.is_available(), reason="a GPU is present")
def test_gpu_id_without_a_gpu_is_a_usage_error(tmp_path: Path) -> None:
    """Checked before the pipeline loads (this one does not exist) and before any file is written."""
    args = ["--model", str(tmp_path / "no-pipeline"), "--gpu-id", "0", "--output-dir", str(tmp_path / "results")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output + repr(result.exception)
    assert "--gpu-id" in result.output and "no such GPU (torch sees" in result.output
    assert not (tmp_path / "results").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_every_benchmark_script_refuses_a_missing_gpu_as_a_usage_error(corpus_root: Path, tmp_path: Path) -> None:
    """run.py, step_profile.py and crf_schedules.py ended in a traceback that blamed a missing CuPy."""
    import crf_schedules
    import run
    import step_profile
    import typer

    schedules = typer.Typer()
    schedules.command()(crf_schedules.main)  # a script of typer.run
    for name, app_, args in (("run", run.app, ["--corpus-root", str(corpus_root), "--output-dir", str(tmp_path)]),
                             ("step_profile", step_profile.app, ["--corpus-root", str(corpus_root)]),
                             ("crf_schedules", schedules, [])):
        result = CliRunner().invoke(app_, [*args, "--gpu-id", "0"], env={"COLUMNS": "200"})
        assert result.exit_code == 2, (name, result.output)
        assert "no such GPU (torch sees 0); use -1 for the CPU" in result.output, name
    assert not any(tmp_path.iterdir())


@pytest.mark.slow
def test_both_systems_run_under_bfloat16_autocast_where_asked(
    tiny_pipeline: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from spacy_bioner.layers import encoder_shim

    vocab = spacy.blank("en").vocab
    for name in ("jnlpba", "bc5cdr-iob"):
        write_docbin([Doc(vocab, words=words) for words, _ in toy_sentences(2)], tmp_path / "corpus" / name / "test.spacy")
    args = ["--model", str(tiny_pipeline), "--corpus-root", str(tmp_path / "corpus"), "--batch-size", "32",
            "--output-dir", str(tmp_path / "results"), "--precision", "bfloat16"]
    monkeypatch.setattr(encoder_shim, "_cpu_has_bfloat16", lambda: False)
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and "no bfloat16 arithmetic" in result.output, result.output
    monkeypatch.setattr(encoder_shim, "_cpu_has_bfloat16", lambda: True)
    # The HF side computes under autocast: its token classifier's logits come out in bfloat16.
    logits = []

    def record_logits(module: torch.nn.Module, inputs: Any, output: Any) -> None:
        if type(module).__name__.endswith("ForTokenClassification"):
            logits.append(output.logits.dtype)

    hook = torch.nn.modules.module.register_module_forward_hook(record_logits)
    try:
        result = CliRunner().invoke(app, args)
    finally:
        hook.remove()
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert logits and set(logits) == {torch.bfloat16}
    [path] = (tmp_path / "results").glob("*-cpu-inference.json")
    records = json.loads(path.read_text(encoding="utf8"))
    assert [(r["system"], r["precision"]) for r in records] == [
        ("spacy_bioner", "bfloat16"), ("hf_pipeline_ner", "bfloat16")
    ]
    assert "encoders in bfloat16" in result.output
