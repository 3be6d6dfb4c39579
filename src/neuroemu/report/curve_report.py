"""HTML report of a learning-curve directory: the figure, the table, and per model its best data size."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from neuroemu.errors import ConfigError
from neuroemu.io import read_json
from neuroemu.report import figures as F
from neuroemu.report.html import Section, write_report

__all__ = ["curve_sections", "report_learning_curve"]

SHOWN = ("model", "architecture", "n_params", "flops_per_ms", "fraction", "train_trials", "train_hours", "spike_auc",
         "spike_auc_sd", "tp_at_fp_0.0025", "soma_rmse_mv", "soma_explained_variance", "steps", "best_step",
         "train_minutes")


def curve_sections(doc: dict[str, Any]) -> list[Section]:
    """Report sections of one learning curve (the content of ``learning_curve.json``)."""
    rows = list(doc.get("rows") or [])
    done = [r for r in rows if r.get("status") == "done"]
    cfg, ds = doc.get("config") or {}, doc.get("dataset") or {}
    text = (f"Dataset: {ds.get('path')} ({ds.get('n_trials')} trials of {ds.get('duration_ms')} ms); test set: "
            f"{doc.get('test_data') or 'the test split of the same dataset'}. Models {', '.join(cfg.get('models', []))} "
            f"trained on fractions {cfg.get('fractions')} of the training trials "
            f"({doc.get('train_trials_by_fraction')} trials), nested, with the same validation and test trials; "
            f"budget {cfg.get('budget_steps')} steps / {cfg.get('budget_minutes')} min, early stopping after "
            f"{cfg.get('patience')} validations without improvement, preset '{cfg.get('preset')}'; the checkpoint "
            f"with the best validation AUC is scored by the published protocol. {len(done)} of {len(rows)} runs "
            f"finished. Status: {doc.get('status')}.")
    secs = [Section("Learning curve", text)]
    if done:
        secs.append(Section("Test AUC against training data", "Error bars: SD over 12 random 67% subsets of the "
                            "test traces (reference 9.4).", figures=[(F.learning_curve(done), "learning curve")]))
        table = [{k: r.get(k) for k in SHOWN} for r in sorted(done, key=lambda r: (r["model"], r["fraction"]))]
        secs.append(Section("Table", "The same table is in learning_curve.csv and learning_curve.json.",
                            tables=[("every finished run", table)]))
    failed = [r for r in rows if r.get("status") != "done"]
    if failed:
        secs.append(Section("Failed runs", "Rerun the same command to retry them.",
                            tables=[("failed", [{"model": r["model"], "fraction": r["fraction"],
                                                 "status": r["status"]} for r in failed])]))
    return secs


def report_learning_curve(lc_dir: str | Path, out_dir: str | Path | None = None) -> Path:
    """Write the HTML report of a learning-curve directory (default ``<lc_dir>/report``); return ``index.html``."""
    lc_dir = Path(lc_dir)
    doc = read_json(lc_dir / "learning_curve.json", ConfigError, "learning-curve directory")
    out = Path(out_dir) if out_dir is not None else lc_dir / "report"
    return write_report(out, f"Learning curve ({lc_dir.name})", curve_sections(doc),
                        footer=f"neuroemu {doc.get('neuroemu', '')} -- {lc_dir / 'learning_curve.json'}")
