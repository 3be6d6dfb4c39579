"""Learning curves and the model families through every command: train, resume, evaluate, predict, sweep."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from neuroemu.cli import main
from neuroemu.errors import CheckpointError, ConfigError
from neuroemu.models.emulator import Emulator
from neuroemu.study.learning_curve import LEARNING_CURVE_COLUMNS, LearningCurveConfig, run_learning_curve


@pytest.fixture(scope="module")
def iaf_data(tmp_path_factory):
    from neuroemu.dataset.format import DatasetConfig
    from neuroemu.dataset.runner import build_dataset

    out = tmp_path_factory.mktemp("iaf") / "data"
    build_dataset(DatasetConfig(cell={"kind": "iaf"}, n_trials=16, duration_ms=1000, seed=3), out, workers=1,
                  progress=False)
    return out


def _lc_config(**kw) -> LearningCurveConfig:
    base = dict(models=["tcn:1x2x20", "branch-elm:2@routing=sequential", "lstm:3"], fractions=[0.5, 1.0],
                budget_steps=20, split="stratified", split_fractions=[0.6, 0.2, 0.2],
                training={"window_ms": 300, "min_end_ms": 300})
    base.update(kw)
    return LearningCurveConfig(**base)


@pytest.mark.e2e
def test_learning_curve_trains_every_model_on_nested_fractions(iaf_data, tmp_path, benchmark_script, capsys):
    out = tmp_path / "lc"
    doc = run_learning_curve(iaf_data, _lc_config(), out, workers=1, threads=1, log=lambda m: None)
    assert doc["status"] == "complete" and len(doc["rows"]) == 6
    assert set(LEARNING_CURVE_COLUMNS) <= set(doc["rows"][0])
    by = {(r["model"], r["fraction"]): r for r in doc["rows"]}
    assert {r["family"] for r in doc["rows"]} == {"tcn", "branch-elm", "lstm"}
    assert by[("lstm:3", 0.5)]["train_trials"] < by[("lstm:3", 1.0)]["train_trials"]
    assert all(r["n_params"] > 0 and r["flops_per_ms"] > 0 for r in doc["rows"])
    with open(out / "learning_curve.csv", newline="") as f:
        assert csv.DictReader(f).fieldnames == LEARNING_CURVE_COLUMNS
    assert (out / "figures" / "learning_curve.png").is_file()
    # the smaller fraction's training trials are among the larger one's; validation and test are shared
    runs = {f: json.loads((out / "fractions" / f"f{f:g}" / "runs" / "lstm_3" / "run.json").read_text())["split"]
            for f in (0.5, 1.0)}
    assert set(runs[0.5]["train"]) < set(runs[1.0]["train"])
    assert runs[0.5]["val"] == runs[1.0]["val"] and runs[0.5]["test"] == runs[1.0]["test"]
    again = run_learning_curve(iaf_data, _lc_config(), out, workers=1, threads=1, log=lambda m: None)
    assert [r["spike_auc"] for r in again["rows"]] == [r["spike_auc"] for r in doc["rows"]]  # resumed, not redone
    with pytest.raises(ConfigError, match="budget_steps"):
        run_learning_curve(iaf_data, _lc_config(budget_steps=21), out, log=lambda m: None)
    # benchmarks/lc_paired.py: paired differences on the shared test traces, one row per training-set size
    lc_paired, paired_runs = benchmark_script("lc_paired"), benchmark_script("paired_runs")
    export_pretrained = benchmark_script("export_pretrained")
    n_test = by[("lstm:3", 1.0)]["n_test_traces"]
    capsys.readouterr()
    assert lc_paired.main([f"{out}:lstm:3", f"{out}:tcn:1x2x20", "--level", "0.3", "--boot", "50"]) == 0
    table = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("| ") and ln[2].isdigit()]
    assert [int(ln.split("|")[1]) for ln in table] == sorted({r["train_trials"] for r in doc["rows"]})
    assert all(ln.rstrip(" |").endswith(str(n_test)) for ln in table)
    # benchmarks/paired_runs.py re-evaluates two runs and finds the same paired difference
    last = table[-1].split("|")[4].split()[0]
    runs = out / "fractions" / "f1" / "runs"
    assert paired_runs.main([str(runs / "lstm_3"), str(runs / "tcn_1x2x20"), "--level", "0.3", "--boot", "50"]) == 0
    assert f"A - B: {last} " in capsys.readouterr().out
    # a CI level the few test traces cannot support is a clear error, not a traceback
    assert lc_paired.main([f"{out}:lstm:3", f"{out}:tcn:1x2x20"]) == 2
    assert "too few" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="no finished run"):
        lc_paired.main([f"{out}:lstm:99", f"{out}:tcn:1x2x20"])
    # benchmarks/export_pretrained.py --learning-curve: a curve's whole-set run becomes a pretrained emulator
    dest = tmp_path / "pretrained"
    assert export_pretrained.main(["--learning-curve", str(out), "--model", "lstm:3", "--dest", str(dest)]) == 0
    card = json.loads((dest / "builtin-iaf" / "card.json").read_text())
    assert card["learning_curve"]["model"] == "lstm:3" and card["family"] == "lstm"
    assert card["train_trials"] == by[("lstm:3", 1.0)]["train_trials"]
    assert card["test"]["spike_auc"] == by[("lstm:3", 1.0)]["spike_auc"]
    assert card["test"]["spike_auc_ci"] is None and "too few" in card["test"]["ci_note"]  # 3 test traces
    assert Emulator.load(dest / "builtin-iaf").n_channels == card["n_exc"] + card["n_inh"]
    assert export_pretrained.main(["--learning-curve", str(out), "--model", "elm:9", "--dest", str(dest)]) == 2


@pytest.mark.parametrize("fractions,message", [("0,1", "outside"), ("1.5", "outside"), ("0.01", "leaves no training")])
def test_learning_curve_refuses_bad_fractions(iaf_data, tmp_path, capsys, fractions, message):
    rc = main(["learning-curve", "--data", str(iaf_data), "--out", str(tmp_path / "lc"), "--models", "tcn:1x2x20",
               "--fractions", fractions])
    assert rc == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "lc").exists()  # nothing half-written


def test_learning_curve_refuses_an_unknown_family(iaf_data, tmp_path, capsys):
    rc = main(["learning-curve", "--data", str(iaf_data), "--out", str(tmp_path / "lc"), "--models", "gru:3"])
    assert rc == 2 and "unknown model family 'gru'" in capsys.readouterr().err


def test_branch_elm_routing_must_fit_the_dataset(iaf_data, tmp_path, capsys):
    rc = main(["train", "--data", str(iaf_data), "--out", str(tmp_path / "r"), "--model", "branch-elm",
               "--max-steps", "1"])
    err = capsys.readouterr().err
    assert rc == 2 and "routing" in err and "80" in err and not (tmp_path / "r").exists()


@pytest.mark.parametrize("model,extra", [("branch-elm:2@routing=sequential", []), ("lstm", ["--hidden", "3"]),
                                         ("elm:2", [])])
def test_every_family_through_train_resume_evaluate_predict(iaf_data, tmp_path, capsys, model, extra):
    run = tmp_path / "run"
    common = ["--window-ms", "300", "--val-every", "5", "--no-progress", "--threads", "1"]
    assert main(["train", "--data", str(iaf_data), "--out", str(run), "--model", model, *extra,
                 "--max-steps", "6", *common]) == 0
    assert main(["train", "--resume", str(run), "--max-steps", "10"]) == 0
    assert json.loads((run / "run.json").read_text())["family"] == model.partition(":")[0].partition("@")[0]
    assert main(["evaluate", "--run", str(run), "--out", str(run / "m.json"), "--drop-first-ms", "250",
                 "--no-progress"]) == 0
    m = json.loads((run / "m.json").read_text())
    assert m["family"] == json.loads((run / "run.json").read_text())["family"]
    assert m["n_params"] > 0 and m["flops_per_ms"] > 0
    inp = tmp_path / "in.npz"
    np.savez(inp, exc_spikes=np.array([[1, 5], [3, 40]]), inh_spikes=np.array([[0, 20]]))
    assert main(["predict", "--run", str(run), "--inputs", str(inp), "--out", str(tmp_path / "p.npz")]) == 0
    assert np.load(tmp_path / "p.npz")["spike_prob"].shape == (41,)


def test_a_checkpoint_of_one_family_is_not_loaded_as_another(iaf_data, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for run, spec in ((a, "lstm:3"), (b, "tcn:1x2x20")):
        assert main(["train", "--data", str(iaf_data), "--out", str(run), "--model", spec, "--max-steps", "2",
                     "--window-ms", "300", "--no-progress", "--threads", "1"]) == 0
    (a / "checkpoints" / "best.pt").write_bytes((b / "checkpoints" / "last.pt").read_bytes())
    with pytest.raises(CheckpointError, match="another run"):
        Emulator.load(a)


def test_training_seeds_on_a_learning_curve_and_the_depth_gain_script(iaf_data, tmp_path, benchmark_script, capsys):
    """train_seeds: 2 trains every model twice per fraction (runs <name>_s1, seeds 0 and 1), the CSV says which
    replicate a row is, and benchmarks/lc_depth_gain.py averages the paired depth gain over both seeds."""
    cfg = _lc_config(models=["tcn:1x2x20", "tcn:2x2x20"], fractions=[1.0], budget_steps=4, train_seeds=2)
    out = tmp_path / "lc"
    doc = run_learning_curve(iaf_data, cfg, out, workers=1, threads=1, log=lambda m: None)
    assert sorted((r["model"], r["replicate"], r["train_seed"]) for r in doc["rows"]) == [
        ("tcn:1x2x20", 0, 0), ("tcn:1x2x20", 1, 1), ("tcn:2x2x20", 0, 0), ("tcn:2x2x20", 1, 1)]
    assert (out / "fractions" / "f1" / "runs" / "tcn_2x2x20_s1" / "result.json").is_file()
    capsys.readouterr()
    assert benchmark_script("lc_depth_gain").main([str(out), "--level", "0.3", "--boot", "50"]) == 0
    line = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("| ") and ln[2].isdigit()][0]
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert cells[5] == "2" and len(cells[6].split(",")) == 2


def test_lc_figure_merges_curves_of_one_test_set_and_refuses_two(tmp_path, benchmark_script, capsys):
    lc_figure = benchmark_script("lc_figure")

    def doc(name, test, model, aucs):
        rows = [{"model": model, "train_hours": h, "spike_auc": a, "spike_auc_sd": 0.003, "status": "done"}
                for h, a in aucs]
        p = tmp_path / f"{name}.json"
        p.write_text(json.dumps({"test_data": test, "rows": rows}))
        return str(p)

    a = doc("a", "x/nmda_test", "elm", [(0.1, 0.95), (0.3, 0.96)])
    b = doc("b", "y/nmda_test", "tcn:3x32", [(0.3, 0.95)])
    c = doc("c", "y/ampa_test", "lstm:50", [(0.3, 0.94)])
    assert lc_figure.main([str(tmp_path / "all.png"), a, b]) == 0
    assert (tmp_path / "all.png").stat().st_size > 0 and "3 runs of 2 models" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="different test data"):
        lc_figure.main([str(tmp_path / "bad.png"), a, c])
    assert not (tmp_path / "bad.png").exists()
