"""Entity-level scores shared by every benchmark system.

seqeval's default (conlleval-compatible) mode is used on purpose: it is what
the published JNLPBA/BC5CDR/NCBI numbers and the Hugging Face ``run_ner.py``
recipe report, so our figures stay comparable with theirs.
"""
from typing import Any, Dict, List

from seqeval.metrics import classification_report, f1_score, precision_score, recall_score


def seqeval_scores(gold: List[List[str]], pred: List[List[str]]) -> Dict[str, Any]:
    """Micro P/R/F1 and per-type P/R/F1/support over IOB2 tag sequences."""
    report = classification_report(gold, pred, output_dict=True, zero_division=0)
    per_type = {
        name: {
            "p": float(row["precision"]),
            "r": float(row["recall"]),
            "f1": float(row["f1-score"]),
            "support": int(row["support"]),
        }
        for name, row in report.items()
        if not name.endswith(" avg")
    }
    return {
        "p": float(precision_score(gold, pred, zero_division=0)),
        "r": float(recall_score(gold, pred, zero_division=0)),
        "f1": float(f1_score(gold, pred, zero_division=0)),
        "per_type": per_type,
    }
