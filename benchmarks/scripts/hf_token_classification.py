"""The usual Hugging Face token-classification recipe, as a benchmark anchor.

This does what ``examples/pytorch/token-classification/run_ner.py`` does with
``--per_device_train_batch_size 32 --warmup_ratio 0.1 --bf16`` (on a GPU)
and otherwise ``transformers.Trainer``'s defaults: first-sub-token labels,
softmax cross-entropy, AdamW at 5e-5 without weight decay, a linear schedule,
gradient clipping at 1.0, the model of the last step. In a plain torch loop,
because the benchmark machine has no ``accelerate`` and therefore cannot run
``Trainer``. Untuned: the anchor is the usual recipe, not its best settings.
bf16 autocast runs on CUDA only, so its scores on a GPU and on the CPU come
from different arithmetic.
"""
import functools
import math
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch
from transformers import (
    AutoModelForTokenClassification,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    get_linear_schedule_with_warmup,
    pipeline,
    set_seed,
)

from spacy_bioner.evaluation import seqeval_scores

Example = Tuple[List[str], List[str]]

DEFAULT_DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
# run_ner.py sets add_prefix_space for byte-level BPE tokenizers so that
# pre-split words are encoded as they would be inside running text.
_PREFIX_SPACE_MODEL_TYPES = {"bloom", "gpt2", "roberta"}
# Inference batch sizes timed by every benchmark.
INFERENCE_BATCH_SIZES = (32, 128)
# Trainer's defaults.
_WEIGHT_DECAY = 0.0
_MAX_GRAD_NORM = 1.0


def _sync(device: torch.device) -> None:
    """Wait for queued CUDA kernels so wall-clock readings are honest."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _autocast(device: torch.device) -> Any:
    """bf16 mixed precision on CUDA (Trainer ``bf16=True``), fp32 elsewhere."""
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")


def _cut_words(word_ids: Sequence[Optional[int]], n_words: int, n_pieces: int, max_length: int) -> int:
    """How many of a sentence's `n_words` words truncation at `max_length` pieces cut off: those after
    the last word in its encoding (`word_ids`, `n_pieces` long without padding), where it is full."""
    return n_words - 1 - max((i for i in word_ids if i is not None), default=-1) if n_pieces >= max_length else 0


def _encode_train(
    tokenizer: PreTrainedTokenizerBase, examples: Sequence[Example], label2id: Dict[str, int], max_length: int
) -> Tuple[List[Dict[str, List[int]]], int]:
    """Tokenize once up front; only the first sub-token of a word gets its label. Returns the
    features and the number of training words truncation cut off (never learnt from)."""
    enc = tokenizer(
        [words for words, _ in examples], is_split_into_words=True, truncation=True, max_length=max_length
    )
    features, n_truncated = [], 0
    for i, (words, tags) in enumerate(examples):
        labels, previous = [], None
        for word_id in enc.word_ids(i):
            labels.append(-100 if word_id is None or word_id == previous else label2id[tags[word_id]])
            previous = word_id
        feature = {key: enc[key][i] for key in enc.keys()}
        feature["labels"] = labels
        features.append(feature)
        n_truncated += _cut_words(enc.word_ids(i), len(words), len(labels), max_length)
    return features, n_truncated


def _collate(features: List[Dict[str, List[int]]], pad_token_id: int) -> Dict[str, torch.Tensor]:
    """Right-pad to the longest item in the batch, as DataCollatorForTokenClassification does."""
    width = max(len(f["input_ids"]) for f in features)
    pad_values = {"input_ids": pad_token_id, "labels": -100}
    return {
        key: torch.tensor([f[key] + [pad_values.get(key, 0)] * (width - len(f[key])) for f in features])
        for key in features[0]
    }


def _predict(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    sentences: Sequence[List[str]],
    batch_size: int,
    device: torch.device,
    max_length: int,
) -> Tuple[List[List[str]], int, int]:
    """Tag words in their original order, reading the first sub-token of each word.

    Words without a sub-token in the encoding are tagged "O" so evaluation
    still covers every gold word. Returns the tags, the number of words cut by
    truncation and the number of other words that tokenized to nothing.
    """
    id2label = model.config.id2label
    model.eval()
    predictions, n_truncated, n_untokenized = [], 0, 0
    with torch.inference_mode(), _autocast(device):
        for start in range(0, len(sentences), batch_size):
            batch = list(sentences[start : start + batch_size])
            enc = tokenizer(
                batch,
                is_split_into_words=True,
                truncation=True,
                max_length=max_length,
                padding=True,
                return_tensors="pt",
            )
            inputs = {key: value.to(device) for key, value in enc.items()}
            label_ids = model(**inputs).logits.argmax(-1).cpu().tolist()
            lengths = enc["attention_mask"].sum(-1).tolist()
            for i, words in enumerate(batch):
                tags = ["O"] * len(words)
                seen = set()
                for position, word_id in enumerate(enc.word_ids(i)):
                    if word_id is not None and word_id not in seen:
                        seen.add(word_id)
                        tags[word_id] = id2label[label_ids[i][position]]
                cut = _cut_words(enc.word_ids(i), len(words), lengths[i], max_length)
                n_truncated += cut
                n_untokenized += len(words) - len(seen) - cut
                predictions.append(tags)
    return predictions, n_truncated, n_untokenized


def _timed(
    predict: Callable[[Sequence[List[str]]], Any], sentences: Sequence[List[str]], batch_size: int, device: torch.device
) -> Tuple[float, Any]:
    """Words/s of ``predict`` over the whole set, after a warm-up batch, and its result."""
    predict(sentences[:batch_size])
    _sync(device)
    start = time.perf_counter()
    result = predict(sentences)
    _sync(device)
    n_words = sum(len(words) for words in sentences)
    return n_words / (time.perf_counter() - start), result


def train_and_evaluate(
    train: Sequence[Example],
    test: Sequence[Example],
    encoder: str,
    *,
    dev: Sequence[Example] = (),
    epochs: int = 5,
    batch_size: int = 32,
    lr: float = 5e-5,
    warmup_ratio: float = 0.1,
    max_length: int = 512,
    seed: int = 0,
    device: str = DEFAULT_DEVICE,
    class_weights: Optional[Sequence[float]] = None,
    save_dir: Optional[str] = None,
    measure_speed: bool = True,
    log: Callable[[str], None] = print,
) -> Dict[str, Any]:
    """Fine-tune ``encoder`` on IOB2-tagged ``train`` and score it on ``test``.

    ``class_weights`` (one per label, in ``result["labels"]`` order, i.e. the
    sorted train tags) weights the cross-entropy, for the WELT ablation.
    With ``dev``, the trained model is also scored on it (``dev_f1``), after
    the clock stops: what a choice of ``lr`` is made on. Without
    ``measure_speed``, the test set is tagged once, untimed.
    """
    torch_device = torch.device(device)
    set_seed(seed)  # before loading, so the fresh classifier head is reproducible
    labels = sorted({tag for _, tags in train for tag in tags})
    label2id = {label: i for i, label in enumerate(labels)}
    model = AutoModelForTokenClassification.from_pretrained(
        encoder, num_labels=len(labels), id2label=dict(enumerate(labels)), label2id=label2id
    ).float()  # fp32 master weights even where the checkpoint dtype is kept (transformers 5 loads "auto")
    tokenizer_kwargs = {"add_prefix_space": True} if model.config.model_type in _PREFIX_SPACE_MODEL_TYPES else {}
    tokenizer = AutoTokenizer.from_pretrained(encoder, **tokenizer_kwargs)
    model.to(torch_device)
    if torch_device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(torch_device)

    features, n_truncated_train = _encode_train(tokenizer, train, label2id, max_length)
    steps_per_epoch = math.ceil(len(features) / batch_size)
    total_steps = epochs * steps_per_epoch
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=_WEIGHT_DECAY)
    scheduler = get_linear_schedule_with_warmup(optimizer, math.ceil(warmup_ratio * total_steps), total_steps)
    weight = None if class_weights is None else torch.tensor(class_weights, dtype=torch.float, device=torch_device)
    loss_fn = torch.nn.CrossEntropyLoss(weight=weight, ignore_index=-100)
    generator = torch.Generator().manual_seed(seed)
    log(f"hf recipe: {len(features)} train items, {len(labels)} labels, {total_steps} steps on {torch_device}")

    _sync(torch_device)
    start = time.perf_counter()
    model.train()
    epoch_seconds = []  # at the end of each epoch, from the start: the first holds first-use costs
    for epoch in range(1, epochs + 1):
        order = torch.randperm(len(features), generator=generator).tolist()
        epoch_loss = torch.zeros((), device=torch_device)  # summed on device: no per-step sync
        for step in range(steps_per_epoch):
            indices = order[step * batch_size : (step + 1) * batch_size]
            batch = _collate([features[i] for i in indices], tokenizer.pad_token_id)
            batch = {key: value.to(torch_device) for key, value in batch.items()}
            gold = batch.pop("labels")
            with _autocast(torch_device):
                logits = model(**batch).logits
            loss = loss_fn(logits.float().view(-1, len(labels)), gold.view(-1))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), _MAX_GRAD_NORM)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            epoch_loss += loss.detach()
        mean_loss = epoch_loss.item() / steps_per_epoch  # waits for the device: the epoch's work is done
        epoch_seconds.append(round(time.perf_counter() - start, 3))
        log(f"epoch {epoch}/{epochs} loss {mean_loss:.4f} elapsed {epoch_seconds[-1]:.1f}s")
    _sync(torch_device)
    train_seconds = time.perf_counter() - start
    peak_train = torch.cuda.max_memory_allocated(torch_device) / 2**20 if torch_device.type == "cuda" else None

    dev_f1 = None
    if dev:
        dev_predictions, _, _ = _predict(
            model, tokenizer, [words for words, _ in dev], batch_size, torch_device, max_length
        )
        dev_f1 = seqeval_scores([tags for _, tags in dev], dev_predictions)["f1"]
        log(f"dev F1 {dev_f1:.4f}")
    test_words = [words for words, _ in test]
    words_per_second, runs = {}, {}
    for size in INFERENCE_BATCH_SIZES if measure_speed else ():
        predict = functools.partial(
            _predict, model, tokenizer, batch_size=size, device=torch_device, max_length=max_length
        )
        words_per_second[str(size)], runs[size] = _timed(predict, test_words, size, torch_device)
    scored = INFERENCE_BATCH_SIZES[0]  # the batch-32 run, or one untimed pass at that size
    predictions, n_truncated, n_untokenized = runs.get(scored) or _predict(
        model, tokenizer, test_words, scored, torch_device, max_length
    )
    scores = seqeval_scores([tags for _, tags in test], predictions)
    log(f"test P {scores['p']:.4f} R {scores['r']:.4f} F1 {scores['f1']:.4f}; words/s {words_per_second}")

    if save_dir is not None:
        model.save_pretrained(save_dir)
        tokenizer.save_pretrained(save_dir)
    return {
        "test_p": scores["p"],
        "test_r": scores["r"],
        "test_f1": scores["f1"],
        "dev_f1": dev_f1,
        "learn_rate": lr,
        "per_type_f1": {name: row["f1"] for name, row in scores["per_type"].items()},
        "per_type": scores["per_type"],
        "test_predictions": predictions,
        "labels": labels,
        "train_seconds": train_seconds,
        "epoch_seconds": epoch_seconds,
        "words_per_second": words_per_second,
        "peak_gpu_mb": torch.cuda.max_memory_allocated(torch_device) / 2**20 if torch_device.type == "cuda" else None,
        "peak_gpu_mb_train": peak_train,
        "epochs": epochs,
        "n_truncated_words": n_truncated,
        "n_truncated_train_words": n_truncated_train,
        "n_untokenized_words": n_untokenized,
    }


def pipeline_words_per_second(
    model_dir_or_model: Union[str, PreTrainedModel],
    texts: List[str],
    batch_size: int,
    device: str = DEFAULT_DEVICE,
    tokenizer: Optional[PreTrainedTokenizerBase] = None,
    stride: Optional[int] = None,
) -> float:
    """Whitespace words per second of ``pipeline("ner", aggregation_strategy="simple")`` on raw texts.

    This is how a typical user serves the model, so it is the fair point of
    comparison for the spaCy pipeline's inference speed. A model object needs
    its ``tokenizer``; a directory supplies its own. Without ``stride`` the
    pipeline truncates each text at the tokenizer's ``model_max_length``; with
    it, long texts are read in chunks that overlap by ``stride`` pieces.
    """
    if tokenizer is None and isinstance(model_dir_or_model, str):
        tokenizer = AutoTokenizer.from_pretrained(model_dir_or_model)
    torch_device = torch.device(device)
    ner = pipeline(
        "ner",
        model=model_dir_or_model,
        tokenizer=tokenizer,
        aggregation_strategy="simple",
        device=torch_device,
        stride=stride,
    )
    ner(texts[:batch_size], batch_size=batch_size)  # warm-up
    _sync(torch_device)
    start = time.perf_counter()
    ner(texts, batch_size=batch_size)
    _sync(torch_device)
    return sum(len(text.split()) for text in texts) / (time.perf_counter() - start)


if __name__ == "__main__":
    raise SystemExit("hf_token_classification.py is a module of run.py: python scripts/run.py "
                     "--system hf_token_classification (see run.py --help)")
