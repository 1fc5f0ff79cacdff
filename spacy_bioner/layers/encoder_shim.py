"""The encoder's shim: spacy-transformers' HFShim with three training-step options,
and parameter averages that reach the encoder.

- **bfloat16 autocast** (`precision="bfloat16"`). thinc's PyTorchShim only
  autocasts to float16 on CUDA, which needs its gradient scaler: a loop over
  every parameter and a host synchronisation each step to look for overflows.
  bfloat16 has float32's range, so it needs no scaler. The hidden states leave
  the shim as float32 (CuPy has no bfloat16, and the heads' CRF runs in the
  scores' precision).
- **One fused optimizer step** (`fused_update=True`). thinc's shim hands each
  of the encoder's ~100 tensors to the thinc optimizer in turn: per tensor a
  DLPack conversion, a gradient-norm clip and an Adam kernel, all launched from
  Python. Here one `torch.optim.AdamW` step (fused on CUDA, multi-tensor on the
  CPU) updates them all, with the hyperparameters read from the thinc
  optimizer at every step, so the training config stays the one source of
  truth: its learning rate (and schedule), betas, eps, decoupled weight decay
  (`L2` with `L2_is_weight_decay`) and `grad_clip`, applied per tensor as
  thinc does. The update is thinc's Adam's, to rounding (tested). Settings torch's AdamW cannot reproduce (RAdam, plain SGD,
  coupled L2, parameter averages) are refused with a message.

- **Layer-wise learning-rate decay** (`layer_lr_decay`). The top layer
  learns at the optimizer's rate, each layer below at `layer_lr_decay` times
  the rate of the one above, the embeddings last (Howard and Ruder's
  discriminative fine-tuning; ELECTRA's "layerwise LR decay"): the lower,
  more general layers move less. thinc's optimizer takes an `lr_scale` per
  call but the shim it inherits never passes one; the fused step gives each
  depth its own AdamW parameter group.

All are off by default (1.0 is no decay): the first two change how a step is
computed, not the model, and all three are chosen by measurement
(benchmarks/README.md).

**Parameter averages** (`use_averages = true`). thinc's optimizer keeps the
encoder's averages under `(shim id, parameter name)`, but thinc's
`PyTorchShim.use_params` looks for `"pytorch_{id}_{name}"` keys, so under
it `nlp.use_params(optimizer.averages)` (spaCy's evaluation and its saved
pipelines) would average the heads and silently leave the encoder as it is.
`EncoderShim.use_params` reads the optimizer's keys.
"""

import contextlib
import copy
import functools
import math
import re
import warnings
from pathlib import Path
from typing import Any, ContextManager, Dict, Iterator, List, Literal, Optional, Tuple, get_args

import srsly
import torch
from spacy_transformers.data_classes import HFObjects
from spacy_transformers.layers.hf_shim import HFShim
from thinc.api import Optimizer
from thinc.shims import Shim
from thinc.types import ArgsKwargs
from thinc.util import convert_recursive, torch2xp, xp2torch

Precision = Literal["float32", "float16", "bfloat16"]
PRECISIONS = get_args(Precision)


def check_saved_tokenizer(saved_shim: Any) -> None:
    """Refuse a saved HFShim's tokenizer that is not what HFShim.to_bytes writes: files, each
    written under a temporary folder by its saved name as it loads, and the tokenizer's loading
    arguments ({"use_fast": bool}). A crafted pipeline could otherwise write a file anywhere the user
    may ("../x", "/x"), or have its own code run as it loads (trust_remote_code among the arguments,
    a .py file beside). ValueError says which."""
    saved = saved_shim.get("tokenizer") if isinstance(saved_shim, dict) else None
    if not isinstance(saved, dict):
        return
    kwargs = saved.get("kwargs", {})
    if not isinstance(kwargs, dict) or not set(kwargs) <= {"use_fast"} or not all(
            isinstance(value, bool) for value in kwargs.values()):
        raise ValueError(f"the transformer's saved tokenizer is loaded with {kwargs!r}, not what spacy-transformers "
                         "saves ({'use_fast': true}): a damaged or crafted pipeline, not loaded")
    bad = [name for name in saved if name != "kwargs" and (
        not isinstance(name, str) or name in ("", ".", "..") or "\0" in name or "\\" in name
        or Path(name).name != name or name.lower().endswith(".py"))]
    if bad:
        raise ValueError(f"the transformer's saved tokenizer holds a file no tokenizer saves ({bad[0]!r}: a "
                         "name outside its folder, or code): a damaged or crafted pipeline, not loaded")


def has_bfloat16_arithmetic(device: torch.device) -> bool:
    """Whether `device` computes in bfloat16 natively: a GPU that has it (not
    emulated), or a CPU with AVX512-BF16 or AMX (Linux's /proc/cpuinfo flags).
    Elsewhere bfloat16 is emulated, and far slower than float32 (README.md)."""
    if device.type == "cuda":
        # As torch.cuda.is_bf16_supported(including_emulation=False), which torch < 2.3
        # lacks: every ROCm GPU, and NVIDIA's from compute capability 8.0 (Ampere) on.
        return bool(torch.version.hip) or torch.cuda.get_device_capability(device)[0] >= 8
    return device.type == "cpu" and _cpu_has_bfloat16()


@functools.lru_cache(maxsize=None)
def _cpu_has_bfloat16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf8", errors="replace").split()
    except OSError:  # not Linux: no way to tell here, so no
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


class EncoderShim(HFShim):
    """HFShim with bfloat16 autocast and an optional fused optimizer step.

    precision: "float32"; "float16" (thinc's CUDA autocast with its gradient
        scaler, spacy-transformers' `mixed_precision`); or "bfloat16" (autocast
        on the model's device, no scaler).
    fused_update: update the encoder with one torch AdamW step (see the module
        docstring) instead of thinc's per-tensor optimizer calls.
    layer_lr_decay: each layer's learning rate as a fraction of the one above
        (1.0: the optimizer's rate everywhere).
    grad_scaler_config: PyTorchGradScaler's arguments (float16 only).
    """

    def __init__(
        self,
        hf_model: HFObjects,
        *,
        precision: str = "float32",
        fused_update: bool = False,
        layer_lr_decay: float = 1.0,
        grad_scaler_config: dict = {},
    ) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
        if not 0.0 < layer_lr_decay <= 1.0:
            raise ValueError(f"layer_lr_decay must be in (0, 1] (1.0: no decay), not {layer_lr_decay!r}")
        # A copy: HFShim writes its default into the dict it is given.
        super().__init__(
            hf_model, mixed_precision=precision == "float16", grad_scaler_config=dict(grad_scaler_config)
        )
        self.precision = precision
        self.fused_update = fused_update
        self.layer_lr_decay = layer_lr_decay
        self._adamw: Optional[torch.optim.AdamW] = None
        self._fused_aliases: List[torch.Tensor] = []
        self._fused_steps = 0
        self._warned_float32 = False

    def from_bytes(self, bytes_data: bytes) -> "EncoderShim":
        """HFShim's, with the saved tokenizer checked first (`check_saved_tokenizer`). A pipeline of
        spacy-transformers' own TransformerModel loads through HFShim unchecked: `load_pipeline`
        checks every shim of a pipeline folder before spaCy loads it."""
        check_saved_tokenizer(srsly.msgpack_loads(bytes_data))
        return super().from_bytes(bytes_data)

    def copy(self) -> "EncoderShim":
        """A deep copy with an id of its own and no optimizer state. thinc's
        optimizer keys its moments and parameter averages by (shim id, name), and
        Shim.copy is a plain deepcopy that keeps the id: the copy that
        `nlp.replace_listeners` makes would share them with the original."""
        # The optimizer's state is not copied: deepcopy's memo leaves it out.
        memo = {id(self._adamw): None, id(self._fused_aliases): []}
        copied = copy.deepcopy(self, memo)
        with Shim.global_id_lock:
            Shim.global_id += 1
            copied.id = Shim.global_id
        copied._fused_steps = 0
        return copied

    def _bfloat16_autocast(self) -> ContextManager:
        """bfloat16 autocast on the model's device (thinc's float16 autocast is
        CUDA only), where the device has bfloat16 arithmetic; float32 elsewhere,
        said once. The setting travels with a saved pipeline, so one trained in
        bfloat16 on a GPU must not run emulated on the CPU of whoever loads it."""
        if has_bfloat16_arithmetic(self.device):
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        self._warn_float32("bfloat16", "it has no bfloat16 arithmetic (on a CPU: avx512_bf16 or amx_bf16), "
                           "where it would be far slower than float32")
        return contextlib.nullcontext()

    def _warn_float32(self, precision: str, why: str) -> None:
        """Say once that the encoder runs in float32 on this device, not in `precision`."""
        if not self._warned_float32:
            self._warned_float32 = True
            warnings.warn(f"precision {precision!r} on the encoder's device ({self.device.type}): {why}; "
                          "the encoder runs in float32")

    def predict(self, inputs: ArgsKwargs) -> Any:
        """The encoder's outputs in evaluation mode, under the precision's
        autocast (bfloat16 outputs returned in float32).

        Unlike PyTorchShim.predict, the model stays in evaluation mode after
        it: each training pass sets training mode first (`begin_update`), and
        switching the mode walks every module of the encoder, twice a call,
        as much host time as a small pass of windows takes on a GPU.
        """
        if self._model.training:
            self._model.eval()
        if self.precision == "bfloat16":
            autocast = self._bfloat16_autocast()
        elif self.precision == "float16" and self.device.type != "cuda":
            self._warn_float32("float16", "float16 autocast is CUDA's")
            autocast = contextlib.nullcontext()
        else:  # thinc's: float16 on CUDA only
            autocast = torch.autocast(device_type="cuda", enabled=self._mixed_precision)
        with torch.no_grad(), autocast:
            outputs = self._model(*inputs.args, **inputs.kwargs)
        return _float32_outputs(outputs) if self.precision == "bfloat16" else outputs

    def begin_update(self, inputs: ArgsKwargs) -> Tuple[Any, Any]:
        """The outputs and their backprop, under bfloat16 autocast if set."""
        if self.precision == "float16" and self.device.type != "cuda":
            raise ValueError(
                f"precision 'float16' trains on a CUDA GPU only (thinc's autocast and gradient scaler), not "
                f"on {self.device.type}: set the transformer's precision to 'bfloat16' or 'float32' "
                "([components.transformer.model] precision)"
            )
        if self.precision != "bfloat16":
            return super().begin_update(inputs)
        self._model.train()
        with self._bfloat16_autocast():
            output = self._model(*inputs.args, **inputs.kwargs)
        output = _float32_outputs(output)

        def backprop(grads: ArgsKwargs) -> Any:
            torch.autograd.backward(*grads.args, **grads.kwargs)
            return convert_recursive(lambda x: hasattr(x, "grad"), lambda x: x.grad, inputs)

        return output, backprop

    @contextlib.contextmanager
    def use_params(self, params: Dict[Any, Any]) -> Iterator[None]:
        """Use the parameters in `params` (e.g. the optimizer's averages, keyed
        `(shim id, name)`) for the context, then restore the current ones."""
        replacements = {
            name: param for name, param in self._model.named_parameters() if (self.id, name) in params
        }
        if not replacements:
            with super().use_params(params):
                yield
            return
        # In place, so that anything holding the parameters (the fused AdamW) keeps them.
        backup = {name: param.detach().clone() for name, param in replacements.items()}
        with torch.no_grad():
            for name, param in replacements.items():
                param.copy_(xp2torch(params[(self.id, name)], device=param.device))
        try:
            yield
        finally:
            with torch.no_grad():
                for name, param in replacements.items():
                    param.copy_(backup[name])

    def lr_scales(self, names: List[str]) -> Dict[str, float]:
        """Each named parameter's learning rate as a fraction of the optimizer's (layer_lr_decay)."""
        depths = encoder_depths(names)
        top = max(depths.values())
        if self.layer_lr_decay < 1.0 and top == 0:
            raise ValueError(
                f"layer_lr_decay {self.layer_lr_decay}: no parameter of the encoder is named as a layer's "
                "('layer.N.' or 'layers.N.', as in BERT or RoBERTa), so the decay would change nothing; set "
                "layer_lr_decay = 1.0 for this encoder"
            )
        return {name: self.layer_lr_decay ** (top - depth) for name, depth in depths.items()}

    def finish_update(self, optimizer: Optimizer) -> None:
        """One optimizer step over the encoder's parameters: fused, or thinc's per tensor."""
        if self.fused_update:
            check_fusable(optimizer)
        named = [(name, param) for name, param in self._model.named_parameters() if param.requires_grad]
        # A float16 step whose gradients overflowed is skipped, as thinc does.
        if any(param.grad is not None for _, param in named) and not self._grad_scaler.found_inf:
            if self.fused_update:
                self._fused_step(optimizer, named)
            else:
                self._per_tensor_step(optimizer, named)
        for _, param in named:
            param.grad = None
        self._grad_scaler.update()

    def _per_tensor_step(self, optimizer: Optimizer, named: List[Tuple[str, torch.Tensor]]) -> None:
        # thinc's PyTorchShim.finish_update, with each tensor's learning-rate scale.
        lr_scales = self.lr_scales([name for name, _ in named])
        for name, param in named:
            if param.grad is not None:
                data, _ = optimizer(
                    (self.id, name), torch2xp(param.data), torch2xp(param.grad), lr_scale=lr_scales[name]
                )
                param.data = xp2torch(data, requires_grad=True, device=param.device)

    def _fused_step(self, optimizer: Optimizer, named: List[Tuple[str, torch.Tensor]]) -> None:
        params = [param for _, param in named]
        if self._adamw is None or not _aliases_of(self._fused_aliases, params):
            # First step, or the parameters were replaced or moved (loading, to_device):
            # new moments.
            # The optimizer holds `.data` aliases: `nlp.update(sgd=...)` runs the
            # transformer's finish_update between its forward pass and the heads'
            # backward pass into it (spacy train does not), and in-place updates
            # of the parameters themselves would fail autograd's version check
            # there. thinc's shim writes the same storage through DLPack.
            on_cuda = params[0].device.type == "cuda"
            self._fused_aliases = [param.data for param in params]
            lr_scales = self.lr_scales([name for name, _ in named])
            groups: Dict[float, List[torch.Tensor]] = {}
            for (name, _), alias in zip(named, self._fused_aliases):
                groups.setdefault(lr_scales[name], []).append(alias)
            self._adamw = torch.optim.AdamW(
                [{"params": aliases, "lr_scale": scale} for scale, aliases in groups.items()],
                fused=on_cuda,
                foreach=not on_cuda,
            )
            self._fused_steps = 0
        self._fused_steps += 1
        beta2 = float(optimizer.b2)
        for group in self._adamw.param_groups:
            group.update(
                lr=float(optimizer.learn_rate) * group["lr_scale"],
                betas=(float(optimizer.b1), beta2),
                # thinc adds eps to sqrt(v) before the bias correction, torch after it:
                # this eps makes torch's update thinc's. It counts the shim's steps,
                # where thinc and torch count each tensor's: the same for every tensor
                # that has a gradient at every step, as an encoder's do in training.
                eps=float(optimizer.eps) / math.sqrt(1.0 - beta2**self._fused_steps),
                weight_decay=float(optimizer.L2),
            )
        if optimizer.grad_clip:
            clip_per_tensor([param.grad for param in params if param.grad is not None], float(optimizer.grad_clip))
        for alias, param in zip(self._fused_aliases, params):
            alias.grad = param.grad
        self._adamw.step()
        self._adamw.zero_grad(set_to_none=True)


_LAYER_INDEX = re.compile(r"(?:^|\.)layers?\.(\d+)\.")


def encoder_depths(names: List[str]) -> Dict[str, int]:
    """Each parameter's depth in the encoder, from its name: 0 for the
    embeddings (`embeddings.` in BERT, `embed_tokens` in others), i + 1 for
    layer i (`encoder.layer.i.`, `layers.i.`), and the last layer's depth for
    what sits on top (the pooler, a final norm)."""
    indices = {name: _LAYER_INDEX.search(name) for name in names}
    top = max((int(match.group(1)) + 1 for match in indices.values() if match), default=0)
    return {
        name: int(match.group(1)) + 1 if match else 0 if "embed" in name else top
        for name, match in indices.items()
    }


def check_fusable(optimizer: Optimizer) -> None:
    """Raise if the thinc optimizer's update is not torch AdamW's."""
    problems = []
    if getattr(optimizer, "use_radam", False):
        problems.append("RAdam")
    if not (optimizer.b1 > 0 and optimizer.b2 > 0):
        problems.append("an optimizer without both Adam moments (beta1, beta2 > 0)")
    if optimizer.L2 and not optimizer.L2_is_weight_decay:
        problems.append("L2 as a gradient penalty (L2_is_weight_decay = false)")
    if optimizer.averages is not None:
        problems.append("parameter averages (use_averages = true)")
    if problems:
        raise ValueError(
            "The encoder's fused_update is torch's AdamW with decoupled weight decay and "
            f"no parameter averages; [training.optimizer] asks for {' and '.join(problems)}. "
            "Use Adam.v1 with use_averages = false and L2_is_weight_decay = true, "
            "or set fused_update = false."
        )


def clip_per_tensor(grads: List[torch.Tensor], max_norm: float) -> None:
    """Scale each gradient to an L2 norm of at most `max_norm`, in place: thinc's
    per-parameter `clip_gradient`, without a host synchronisation."""
    norms = torch.stack(torch._foreach_norm(grads)).clamp_min_(1e-12)
    factors = norms.clamp(max=max_norm) / norms
    torch._foreach_mul_(grads, list(factors.unbind()))


def _aliases_of(aliases: List[torch.Tensor], params: List[torch.Tensor]) -> bool:
    """Whether `aliases` are the parameters' current storage, in order."""
    return len(aliases) == len(params) and all(
        alias.data_ptr() == param.data_ptr() and alias.shape == param.shape for alias, param in zip(aliases, params)
    )


def _float32_outputs(output: Any) -> Any:
    """The model output with its floating-point tensors in float32 (a ModelOutput or tuple)."""
    if isinstance(output, torch.Tensor):
        return output.float() if output.is_floating_point() else output
    if hasattr(output, "keys"):
        for key in list(output.keys()):
            output[key] = _float32_outputs(output[key])
        return output
    if isinstance(output, (tuple, list)):
        return type(output)(_float32_outputs(item) for item in output)
    return output
