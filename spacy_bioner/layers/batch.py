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
window uncounted and gives every later document its neighbour's rows.
"""

from dataclasses import dataclass
from typing import Dict, List

import torch
from spacy_transformers.data_classes import FullTransformerBatch, TransformerData
from thinc.api import torch2xp
from transformers.file_utils import ModelOutput


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
            if len(doc_spans[0]) == 0:
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
