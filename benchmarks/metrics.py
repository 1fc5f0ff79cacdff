"""Entity-level scores shared by every benchmark system.

The implementation lives in the package (spacy_bioner.evaluation), so that the
project's `evaluate` command and the benchmarks score in the same way:
seqeval's default (conlleval-compatible) mode, as the published
JNLPBA/BC5CDR/NCBI numbers and the Hugging Face ``run_ner.py`` recipe do.
"""

from spacy_bioner.evaluation import seqeval_scores

__all__ = ["seqeval_scores"]
