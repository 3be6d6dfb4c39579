"""The published evaluation protocol (reference section 9) and its metrics."""
from neuroemu.evaluation.metrics import (auc_at_fp, calibrate_global, d_prime, roc_auc, soma_metrics, spike_metrics,
                                        tp_at_fp)
from neuroemu.evaluation.protocol import EvaluationConfig, evaluate, evaluate_predictions, overlap_ms

__all__ = ["evaluate", "EvaluationConfig", "evaluate_predictions", "overlap_ms", "roc_auc", "tp_at_fp", "d_prime",
           "auc_at_fp", "calibrate_global", "soma_metrics", "spike_metrics"]
