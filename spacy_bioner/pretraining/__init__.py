"""Domain-adaptive pretraining: continue an encoder's masked-LM training on
biomedical text and write a local encoder directory for `--paths.transformer`.

Design choices, and why:

* **transformers' own pieces.** The model is `AutoModelForMaskedLM`: where
  the encoder was saved without an MLM head (all-MiniLM-L6-v2 is a bare
  `BertModel`), transformers adds a new head whose decoder is tied to the
  input embeddings (checked in `load_encoder`), so only the small transform
  layer and the output bias start from scratch. Masking is
  `DataCollatorForLanguageModeling` (15%, 80/10/10) or
  `DataCollatorForWholeWordMask` (whose 15% counts the separators between
  packed lines too: it masks about 15.5% of the text's pieces in the
  collection's 128-token blocks); the schedule is
  `get_linear_schedule_with_warmup`.
* **A plain torch loop, not `Trainer`.** `Trainer` requires `accelerate`
  (an extra dependency, unwanted here) and its checkpoints are keyed to its
  own data loader. The loop is short, and it makes resuming exact: the batch
  order is a function of (seed, epoch) and the RNG states (dropout, masking)
  are saved with the model, optimizer and scheduler, so `--resume` ends with
  the same weights as an uninterrupted run (on the CPU: on a GPU, torch's
  kernels are not set to be deterministic). A finished run removes its
  checkpoint (`keep_checkpoint` keeps it): the output is used as an encoder
  directory, and the checkpoint would triple its size.
* **Packing.** All lines (sentences, or whole abstracts) are tokenized into
  one stream with the separator token between lines, cut into blocks of
  `max_length` tokens and wrapped with the encoder's special tokens (RoBERTa's
  "full-sentences" packing). Neighbouring lines of one source are real
  context, the separator marks a boundary as in BERT's own pretraining, and
  nothing is spent on padding (sentences average ~30 word pieces: one
  sentence per sequence would be mostly padding). The text files are read
  as they are packed (`PretrainText`), and the sequences are held in one
  int32 array (`PackedSequences`): 4 bytes a token, never the text itself.
* **Logits only where masked.** For BERT- and RoBERTa-style models the loss
  runs the model's own prediction head on the masked positions only
  (`masked_lm_loss`; the same value as the model's loss, tested), instead of
  projecting every position onto the vocabulary: 85% of that work is thrown
  away by the loss. Other architectures use the model's own forward.
* **Held-out loss.** A fixed 1% of the packed sequences (chosen with a
  constant seed, independent of `seed`, so runs with different seeds are
  compared on the same sequences) with a fixed masking, so that "before" and
  "after" differ only by the weights. The held-out sequences are cut from the
  same stream as the training ones, so the sentences next to them (often of
  the same abstract) are trained on: the loss measures how well the encoder
  models this text, not text it has never seen. Splitting the lines before
  packing would not change that for one-sentence-a-line text (every held-out
  sentence would keep its neighbours in training) and would pack unrelated
  sentences together, unlike training. The loss is the mean over masked tokens;
  the perplexity is its exponential. For an encoder without an MLM head the
  "before" loss is that of the new, untrained head: expect it to be high.
* **Masking RNG.** The collators draw from torch's global RNG (and, for whole
  words, Python's `random`); they are run inside a private RNG state so that
  masking, dropout and evaluation never disturb one another, on any
  transformers version this package supports.

The modules: `settings` (what defines a run), `text` (what it reads),
`evaluation_text` (the dev and test text it must not read), `data`
(the encoder, packed sequences, masked batches), `output` (the output
directory and checkpoints) and `training` (the run itself, `pretrain`).
"""

from .data import (
    Batcher,
    MaskingRNG,
    PackedSequences,
    check_whole_word_mask,
    fingerprint,
    is_wordpiece,
    load_encoder,
    pack_sequences,
    sequence_length,
    split_heldout,
)
from .evaluation_text import EVALUATION_TEXT_FILES, EvaluationText, missing_evaluation_files, read_eval_sources
from .output import (
    CHECKPOINT_DIR,
    CHECKPOINT_OLD,
    CHECKPOINT_TMP,
    DATA_FINGERPRINT,
    RESULTS_FILE,
    RUN_MARKER,
    check_encoder_and_output_apart,
    check_inputs_outside_output,
    check_output_dir,
    is_pretraining_output,
)
from .settings import OtherRun, PretrainError, PretrainSettings
from .text import (
    BC5CDR_TRAIN,
    DEFAULT_ASSETS,
    DEFAULT_TEXT,
    JNLPBA_TEST,
    JNLPBA_TRAIN,
    TASK_TEXT_FILES,
    PretrainText,
    read_text_file,
    task_training_text,
)
from .training import evaluate_mlm, masked_lm_loss, pretrain, steps_per_epoch, total_steps

__all__ = [
    "BC5CDR_TRAIN", "CHECKPOINT_DIR", "CHECKPOINT_OLD", "CHECKPOINT_TMP", "DATA_FINGERPRINT", "DEFAULT_ASSETS",
    "DEFAULT_TEXT", "EVALUATION_TEXT_FILES", "JNLPBA_TEST", "JNLPBA_TRAIN", "RESULTS_FILE", "RUN_MARKER",
    "TASK_TEXT_FILES", "Batcher", "EvaluationText", "MaskingRNG", "OtherRun", "PackedSequences", "PretrainError",
    "PretrainSettings", "PretrainText",
    "check_encoder_and_output_apart", "check_inputs_outside_output", "check_output_dir", "check_whole_word_mask",
    "evaluate_mlm", "missing_evaluation_files", "read_eval_sources",
    "fingerprint", "is_pretraining_output", "is_wordpiece", "load_encoder", "masked_lm_loss", "pack_sequences",
    "pretrain", "read_text_file", "sequence_length", "split_heldout", "steps_per_epoch", "task_training_text",
    "total_steps",
]
