"""The encoder's output for a batch, split per document without visiting tokens.

spacy-transformers' `FullTransformerBatch.split_by_doc` finds each document's
rows of the alignment by numbering every token of every document in a dict
keyed by Token objects (`get_token_positions`), for every predicted batch
and every training step: host work a GPU cannot take over. The numbering is simple (every token of
each document, documents in the order of their first window), so a
document's rows follow from its windows' token range and the lengths of the
documents before it: `BioTransformerBatch` computes them so. The pieces of
the split are the same as spacy-transformers' (tests compare them), except
where a document's first window is empty: spacy-transformers then leaves the
window uncounted and gives every later document its neighbour's rows. Such a
document gets no data, so the listeners send no gradient for it either:
`unsplit_by_doc` gives its windows zero gradients (spacy-transformers' would
stack the other documents' gradients, a row short for each such window).
"""

from dataclasses import dataclass
from typing import Dict, List, Tuple

import torch
from spacy.tokens import Span
from spacy_transformers.data_classes import FullTransformerBatch, TransformerData
from thinc.api import get_array_module, torch2xp, xp2torch
from thinc.types import FloatsXd
from transformers.utils import ModelOutput


@dataclass
class BioTransformerBatch(FullTransformerBatch):
    """A FullTransformerBatch whose `split_by_doc` computes each document's rows."""

    def split_by_doc(self) -> List[TransformerData]:
        """One TransformerData per document, as FullTransformerBatch.split_by_doc.

        A document with no window, or an empty first one, gets an empty
        TransformerData.
        """
        arrays = _as_arrays(self.model_output)
        first_rows: Dict[int, int] = {}
        n_rows = window = n_pieces = 0
        outputs = []
        for doc_spans in self.spans:
            if not doc_spans:
                outputs.append(TransformerData.empty())
                continue
            doc = doc_spans[0].doc
            if id(doc) not in first_rows:
                first_rows[id(doc)] = n_rows
                n_rows += len(doc)
            end_window = window + len(doc_spans)
            wordpieces = self.wordpieces[window:end_window]
            if not _has_data(doc_spans):
                outputs.append(TransformerData.empty())
            else:
                align = self.align[first_rows[id(doc)] + doc_spans[0].start : first_rows[id(doc)] + doc_spans[-1].end]
                align.data = align.data - n_pieces
                model_output = ModelOutput()
                for key, output in arrays.items():
                    if isinstance(output, list):
                        model_output[key] = [array[window:end_window] for array in output]
                    else:
                        model_output[key] = output[window:end_window]
                outputs.append(TransformerData(wordpieces=wordpieces, model_output=model_output, align=align))
            n_pieces += wordpieces.input_ids.size
            window = end_window
        return outputs

    def unsplit_by_doc(self, arrays: List[List[FloatsXd]]) -> FullTransformerBatch:
        """The batch's gradients from the per-document ones, as
        FullTransformerBatch.unsplit_by_doc: `arrays` holds, for each document
        `split_by_doc` gave data, in order, its gradients (one per output,
        a row per window). The windows of the documents it gave none (an empty
        first window) get zero gradients, so that every row still meets its
        window in the encoder's backward pass.
        """
        rows = self._rows_with_data()
        if len(rows) != len(arrays):
            raise ValueError(f"Gradients of {len(arrays)} documents for a batch of {len(rows)} with data.")
        n_windows = len(self.wordpieces.input_ids)
        if sum(end - start for start, end in rows) == n_windows:
            return super().unsplit_by_doc(arrays)  # every window has its document's gradient
        xp = get_array_module(arrays[0][0])
        model_output = ModelOutput()
        for i, per_doc in enumerate(zip(*arrays)):
            gradient = xp.zeros((n_windows,) + per_doc[0].shape[1:], dtype=per_doc[0].dtype)
            for (start, end), array in zip(rows, per_doc):
                gradient[start:end] = array
            model_output[f"output_{i}"] = xp2torch(gradient)
        return FullTransformerBatch(
            spans=self.spans, wordpieces=self.wordpieces, model_output=model_output, align=self.align
        )

    def _rows_with_data(self) -> List[Tuple[int, int]]:
        """The window rows of each document `split_by_doc` gives data, in order."""
        rows, window = [], 0
        for doc_spans in self.spans:
            if _has_data(doc_spans):
                rows.append((window, window + len(doc_spans)))
            window += len(doc_spans)
        return rows


def _has_data(doc_spans: List[Span]) -> bool:
    """Whether `split_by_doc` gives a document data: it has windows, the first not empty."""
    return bool(doc_spans) and len(doc_spans[0]) > 0


def _as_arrays(model_output: ModelOutput) -> ModelOutput:
    """The outputs split_by_doc splits, as thinc arrays: every tensor, and every
    tuple of tensors with one row per window (the hidden states of all layers)."""
    n_windows = model_output.last_hidden_state.shape[0]
    arrays = ModelOutput()
    for key, output in model_output.items():
        if isinstance(output, torch.Tensor):
            arrays[key] = torch2xp(output)
        elif isinstance(output, tuple) and all(
            isinstance(tensor, torch.Tensor) and tensor.shape[0] == n_windows for tensor in output
        ):
            arrays[key] = [torch2xp(tensor) for tensor in output]
    return arrays
