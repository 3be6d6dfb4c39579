"""Complexity sweep, study, quickstart and their CLI (neuroemu.study, neuroemu.cli.study)."""
from __future__ import annotations

import csv
import json
import math
import os
import shutil

import pytest

os.environ.setdefault("NEURON_MODULE_OPTIONS", "-nogui")

from neuroemu.cli import main  # noqa: E402
from neuroemu.errors import ConfigError  # noqa: E402
from neuroemu.study.study import (EXPECTED_DEPTH_NEEDED, SCALES, StudyConfig, findings, run_study,  # noqa: E402
                                  smallest_reaching, study_plan)
from neuroemu.study.sweep import (TABLE_COLUMNS, SweepConfig, kernels_for, run_sweep, select_best,  # noqa: E402
                                  sweep_entries)


@pytest.fixture(scope="module")
def iaf_data(tmp_path_factory):
    from neuroemu.dataset.format import DatasetConfig
    from neuroemu.dataset.runner import build_dataset

    out = tmp_path_factory.mktemp("iaf") / "data"
    build_dataset(DatasetConfig(cell={"kind": "iaf"}, n_trials=12, duration_ms=1000, seed=3), out, workers=1,
                  progress=False)
    return out


@pytest.fixture(scope="module")
def sweep_dir(iaf_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep") / "sweep"
    cfg = SweepConfig(depths=[1, 2], widths=[1, 4], receptive_fields=[20], budget_steps=30)
    doc = run_sweep(iaf_data, cfg, out, workers=1, threads=1, log=lambda m: None)
    return out, cfg, doc


@pytest.mark.parametrize("depth,rf", [(1, 43), (2, 40), (3, 3), (4, 120), (7, 153), (5, 10), (8, 257)])
def test_kernels_for_receptive_field_and_wide_first_layer(depth, rf):
    ks = kernels_for(depth, rf)
    assert len(ks) == depth and all(k >= 1 for k in ks)
    assert sum(k - 1 for k in ks) + 1 == rf
    assert ks[0] >= max(ks[1:], default=0)  # the first layer is the widest in time
    assert max(ks[1:], default=0) - min(ks[1:], default=0) <= 1  # the upper layers share the rest evenly


def test_stratified_split_gives_every_part_spiking_trials():
    from neuroemu.dataset.split import stratified_split

    counts = [0] * 16 + [5, 3, 9, 1]             # 4 spiking trials among 20, as in short L5PC trials
    idx = list(range(100, 120))
    parts = stratified_split(idx, counts, (0.6, 0.2, 0.2), seed=1)
    assert sorted(sum(parts, [])) == idx and [len(p) for p in parts] == [12, 4, 4]
    spiking = {i for i, c in zip(idx, counts) if c}
    assert all(spiking & set(p) for p in parts)
    assert parts == stratified_split(idx, counts, (0.6, 0.2, 0.2), seed=1)
    assert parts != stratified_split(idx, counts, (0.6, 0.2, 0.2), seed=2)  # the seed orders equal counts


def test_sweep_config_rejects_bad_values():
    with pytest.raises(ConfigError, match="depths"):
        SweepConfig(depths=[0, 1])
    with pytest.raises(ConfigError, match="budget"):
        SweepConfig(budget_steps=None, budget_minutes=None)
    with pytest.raises(ConfigError, match="kernels"):
        SweepConfig(model={"kernels": [3]})
    names = [e.name for e in sweep_entries(SweepConfig(depths=[2, 1], widths=[8], receptive_fields=[40, 20]))]
    assert names == ["1x8x20", "1x8x40", "2x8x20", "2x8x40"]
    assert [e.name for e in sweep_entries(SweepConfig(depths=[1, 7], widths=[128]))] == ["1x128x43", "7x128x153"]


def test_sweep_writes_table_with_all_keys(sweep_dir):
    out, cfg, doc = sweep_dir
    assert doc["status"] == "complete"
    assert sorted(doc["trained_now"]) == ["1x1x20", "1x4x20", "2x1x20", "2x4x20"]
    with open(out / "sweep.csv", newline="") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == TABLE_COLUMNS
        rows = list(reader)
    assert [r["name"] for r in rows] == ["1x1x20", "1x4x20", "2x1x20", "2x4x20"]
    js = json.loads((out / "sweep.json").read_text())
    assert js["cell"] == "iaf" and js["config"]["budget_steps"] == 30
    for r in js["rows"]:
        assert set(TABLE_COLUMNS) <= set(r)
        assert r["status"] == "done" and r["train_steps"] == 30 and r["cell"] == "iaf"
        assert r["receptive_field"] == 20 and sum(k - 1 for k in r["kernels"]) + 1 == 20
        assert 0.0 <= r["spike_auc"] <= 1.0 and r["spike_auc_sd"] >= 0.0
        assert math.isfinite(r["soma_explained_variance"]) and r["train_minutes"] > 0
        assert (out / "runs" / r["name"] / "eval_test.json").is_file()
        assert (out / "runs" / r["name"] / "eval_val.json").is_file()
    from neuroemu.models.tcn import TCNConfig

    one = next(r for r in js["rows"] if r["name"] == "2x4x20")
    assert one["n_parameters"] == TCNConfig(n_inputs=100, depth=2, width=4, kernels=one["kernels"]).n_parameters
    for stem in ("complexity_panels", "auc_vs_depth", "auc_vs_parameters"):
        assert (out / "figures" / f"{stem}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    best = select_best(js["rows"], "depth")
    assert [r["depth"] for r in best] == [1, 2]


def test_sweep_resume_keeps_finished_and_checks_settings(sweep_dir, iaf_data):
    out, cfg, _ = sweep_dir
    results = {p.parent.name: p.stat().st_mtime_ns for p in (out / "runs").glob("*/result.json")}
    assert len(results) == 4
    doc = run_sweep(iaf_data, cfg, out, workers=1, threads=1, figures=False, log=lambda m: None)
    assert doc["trained_now"] == []
    assert {p.parent.name: p.stat().st_mtime_ns for p in (out / "runs").glob("*/result.json")} == results
    # an interrupted configuration (no result.json) is finished from its checkpoint; the grid may grow
    (out / "runs" / "2x4x20" / "result.json").unlink()
    # ... but not with train=False: that only tabulates what is finished
    doc = run_sweep(iaf_data, cfg.replace(widths=[1, 2, 4]), out, workers=1, threads=1, figures=False,
                    log=lambda m: None, train=False)
    assert doc["trained_now"] == [] and len(doc["rows"]) == 3
    assert doc["status"] == "incomplete: 3 not trained"
    assert not (out / "runs" / "2x4x20" / "result.json").exists()
    doc = run_sweep(iaf_data, cfg.replace(widths=[1, 2, 4]), out, workers=1, threads=1, figures=False,
                    log=lambda m: None)
    assert sorted(doc["trained_now"]) == ["1x2x20", "2x2x20", "2x4x20"]
    assert len(doc["rows"]) == 6 and doc["status"] == "complete"
    assert (out / "runs" / "1x1x20" / "result.json").stat().st_mtime_ns == results["1x1x20"]
    # changing how configurations are trained would mix incomparable results
    with pytest.raises(ConfigError, match="budget_steps"):
        run_sweep(iaf_data, cfg.replace(budget_steps=31), out, workers=1, log=lambda m: None)


def test_report_cli_on_sweep(sweep_dir, capsys):
    out, _, _ = sweep_dir
    assert main(["report", str(out), "--out", str(out / "rep")]) == 0
    html = (out / "rep" / "index.html").read_text()
    assert "Complexity sweep" in html and "data:image/png;base64," in html and "2x4x20" in html
    assert "index.html" in capsys.readouterr().out


def _row(cell, depth, width, auc, sd=0.002, val=None, params=None, ev=80.0, n_spikes=100):
    return {"cell": cell, "name": f"{depth}x{width}x40", "depth": depth, "width": width, "receptive_field": 40,
            "n_parameters": params or depth * width * 1000, "spike_auc": auc, "spike_auc_sd": sd,
            "n_test_spikes": n_spikes, "n_test_traces": 10,
            "val_spike_auc": auc if val is None else val, "soma_explained_variance": ev,
            "soma_explained_variance_sd": 1.0, "status": "done"}


PUBLISHED_LIKE = [_row("nmda", 1, 8, 0.950), _row("nmda", 1, 32, 0.955), _row("nmda", 3, 32, 0.975),
                  _row("nmda", 5, 32, 0.985), _row("ampa", 1, 8, 0.980), _row("ampa", 3, 32, 0.981),
                  _row("iaf", 1, 1, 0.990), _row("iaf", 2, 4, 0.991)]


def test_findings_reproduce_published_pattern():
    f = findings(PUBLISHED_LIKE, target_auc=0.97, auc_margin=0.005)
    assert f["cells"]["nmda"]["depth_needed"] is True
    assert f["cells"]["nmda"]["best"]["name"] == "5x32x40"
    assert f["cells"]["nmda"]["auc_gain_from_depth"] == pytest.approx(0.030)
    assert f["cells"]["ampa"]["depth_needed"] is False
    assert f["cells"]["iaf"]["single_unit_suffices"] is True
    assert f["cells"]["nmda"]["smallest_reaching_target"]["name"] == "3x32x40"
    assert f["cells"]["nmda"]["min_depth_reaching_target"] == 3 and f["cells"]["ampa"]["min_depth_reaching_target"] == 1
    assert f["reproduced"] is True and f["n_cells_compared"] == 3 and f["verdict"].startswith("reproduced")


def test_findings_gain_within_error_bars_is_not_depth():
    noisy = [_row("nmda", 1, 8, 0.950, sd=0.03), _row("nmda", 5, 32, 0.985, sd=0.03)]
    assert findings(noisy, 0.97)["cells"]["nmda"]["depth_needed"] is False
    assert findings(noisy, 0.97)["reproduced"] is False


def test_findings_uncomparable_cell_is_inconclusive():
    part = findings(PUBLISHED_LIKE[-2:] + [_row("nmda", 1, 8, float("nan"))], 0.97, cells=["nmda", "ampa", "iaf"])
    assert part["reproduced"] is None and part["cells_not_compared"] == ["nmda", "ampa"]


def test_findings_too_few_test_spikes_give_no_verdict():
    few = findings([_row("nmda", 1, 8, 0.6, n_spikes=3), _row("nmda", 2, 8, 0.9, n_spikes=3)], 0.97)
    assert few["reproduced"] is None and few["cells"]["nmda"]["too_few_test_spikes"] == 3
    assert "too few" in few["cells"]["nmda"]["summary"]


def test_findings_weak_single_iaf_unit_contradicts_published():
    bad_unit = findings([_row("iaf", 1, 1, 0.80), _row("iaf", 1, 4, 0.99), _row("iaf", 2, 4, 0.99)], 0.97)
    assert bad_unit["cells"]["iaf"]["single_unit_suffices"] is False and bad_unit["reproduced"] is False


def test_findings_select_on_validation_describe_on_test():
    sel = [_row("ampa", 1, 8, 0.95, val=0.97), _row("ampa", 2, 8, 0.99, val=0.96)]
    assert findings(sel, 0.9)["cells"]["ampa"]["best"]["name"] == "1x8x40"
    assert smallest_reaching(sel, 0.965)["name"] == "2x8x40"  # descriptive, on test (as the figure's star)


def test_findings_compare_somatic_voltage_beside_spikes():
    ev = findings([_row("nmda", 1, 8, 0.95, ev=70.0), _row("nmda", 3, 8, 0.951, ev=85.0),
                   _row("ampa", 1, 8, 0.95, ev=90.0), _row("ampa", 3, 8, 0.951, ev=91.5)], 0.97)
    assert ev["cells"]["nmda"]["depth_needed_for_voltage"] is True
    assert ev["cells"]["nmda"]["ev_gain_from_depth"] == pytest.approx(15.0)
    assert ev["cells"]["nmda"]["ev_gain_sd"] == pytest.approx(math.sqrt(2))
    assert ev["cells"]["ampa"]["depth_needed_for_voltage"] is False  # 1.5 points < 2 SDs
    assert ev["cells"]["nmda"]["depth_needed"] is False and "70.0% -> 85.0%" in ev["cells"]["nmda"]["summary"]
    assert EXPECTED_DEPTH_NEEDED["nmda"] and not EXPECTED_DEPTH_NEEDED["ampa"]


def test_study_scales_and_plan():
    assert set(SCALES) == {"tiny", "small", "medium", "paper"}
    paper = study_plan(StudyConfig.for_scale("paper"))
    assert paper["cells"]["nmda"]["configurations"] == 8 * 5 * 6 + 6 + 2  # + the linear unit per T + 2 Branch-ELMs
    assert paper["cells"]["nmda"]["names"][-3] == "1x1x240_linear"
    assert paper["cells"]["nmda"]["trials"] == 10000 and paper["simulation_core_hours_est"] > 100
    tiny = study_plan(StudyConfig.for_scale("tiny"))
    assert tiny["cells"]["iaf"]["configurations"] == 3 * 3 + 1 + 1 and tiny["simulation_core_hours_est"] < 0.2
    assert tiny["cells"]["iaf"]["names"][-2] == "1x1x40_linear"  # the published single linear unit
    assert tiny["cells"]["iaf"]["names"][-1] == "branch-elm_2_routingsequential"  # another family
    assert tiny["training_runs"] == sum(c["configurations"] for c in tiny["cells"].values()) * 2  # two data sizes
    medium = study_plan(StudyConfig.for_scale("medium"))
    pool_hours = medium["cells"]["nmda"]["trials"] * 0.9 * 6 / 3600  # the training part of the pool
    assert pool_hours >= 1.0 and medium["cells"]["nmda"]["test_trials"] >= 60
    with pytest.raises(ConfigError, match="scale"):
        StudyConfig.for_scale("huge")
    with pytest.raises(ConfigError, match="cells"):
        StudyConfig.for_scale("tiny", cells=["nmda", "gaba"])


def test_scale_description_says_what_was_changed():
    """The preset's prose describes the preset: a config that overrides its numbers says so in the description."""
    preset = StudyConfig.for_scale("medium")
    assert "Changed from" not in preset.description
    assert StudyConfig.for_scale("medium", cells=["ampa"]).description == preset.description
    changed = StudyConfig.for_scale("medium", l5pc_trials=320)
    assert changed.description.startswith(preset.description)
    assert changed.description.endswith("Changed from the 'medium' preset: l5pc_trials=320.")
    assert StudyConfig.for_scale("medium", l5pc_trials=320, description="mine").description == "mine"


@pytest.mark.e2e
def test_study_end_to_end_tiny(tmp_path):
    """Datasets for nmda, ampa (very short L5PC trials) and iaf, three sweeps, findings, figures, report."""
    cfg = StudyConfig.for_scale("tiny", l5pc_trials=4, l5pc_duration_ms=300, iaf_trials=12, iaf_duration_ms=1000,
                                depths=[1, 2], widths=[2], iaf_widths=[1, 2], budget_steps=10, fractions=[1.0],
                                models=[], iaf_models=[])
    out = tmp_path / "study"
    doc = run_study("tiny", out, config=cfg, workers=1, threads=1, sim_workers=1, log=lambda m: None)
    assert doc["status"] == "complete"
    assert set(doc["datasets"]) == {"nmda", "ampa", "iaf"}
    assert doc["datasets"]["nmda"]["n_trials"] == 4 and doc["datasets"]["nmda"]["n_channels"] > 1000
    assert doc["datasets"]["iaf"]["n_channels"] == 100
    assert sorted({r["cell"] for r in doc["rows"]}) == ["ampa", "iaf", "nmda"] and len(doc["rows"]) == 9
    unit = next(r for r in doc["rows"] if r["name"] == "1x1x40_linear")
    assert unit["variant"] == "linear" and unit["n_parameters"] == 100 * 40 + 1 + 2 + 2 * 2  # one unit + BN
    assert set(doc["findings"]["cells"]) == {"ampa", "iaf", "nmda"}
    for name in ("study.json", "study.csv", "figures/summary.png", "figures/complexity_panels.png",
                 "report/index.html"):
        assert (out / name).is_file(), name
    with open(out / "study.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == 9
    # resumable: nothing is simulated or trained again
    doc2 = run_study("tiny", out, config=cfg, workers=1, threads=1, sim_workers=1, report=False,
                     log=lambda m: None)
    assert all(s["trained_now"] == 0 for s in doc2["sweeps"].values())
    # train=False: a finished configuration removed is reported missing, not trained again
    shutil.rmtree(out / "sweeps" / "iaf" / "runs" / "2x2x40")
    doc3 = run_study("tiny", out, config=cfg, report=False, log=lambda m: None, train=False)
    assert doc3["status"].startswith("incomplete") and len(doc3["rows"]) == 8
    assert not (out / "sweeps" / "iaf" / "runs" / "2x2x40").exists()
    with pytest.raises(ConfigError, match="different config"):
        run_study("tiny", out, config=cfg.replace(budget_steps=11), log=lambda m: None)


@pytest.mark.e2e
def test_quickstart_iaf_small_budget(tmp_path):
    from neuroemu.study.quickstart import run_quickstart

    lines = []
    res = run_quickstart(tmp_path / "qs", cell="iaf", sim_minutes=0.02, train_minutes=0.15, duration_ms=1000,
                         min_trials=10, max_trials=10, workers=1, threads=1, log=lines.append)
    assert res["dataset"]["n_trials"] == 10
    assert os.path.isfile(res["report"]) and res["report"].endswith("index.html")
    assert json.loads((tmp_path / "qs" / "quickstart.json").read_text())["report"] == res["report"]
    assert any(line.startswith("[1/4]") for line in lines) and any(line.startswith("[4/4]") for line in lines)
    assert lines[-1].startswith("report: ") and res["training"]["steps"] >= 1
    assert set(res["timings_s"]) == {"simulate", "train", "evaluate", "report", "total"}


@pytest.mark.parametrize("cmd", ["sweep", "study", "quickstart", "report"])
def test_cli_help(cmd, capsys):
    with pytest.raises(SystemExit) as e:
        main([cmd, "--help"])
    assert e.value.code == 0
    assert cmd in capsys.readouterr().out


def test_cli_study_dry_run(capsys):
    assert main(["study", "--scale", "small", "--dry-run"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["config"]["scale"] == "small" and plan["plan"]["cells"]["ampa"]["configurations"] == 11  # 5 depths x 2 widths + the linear unit
    assert main(["study", "--scale", "small", "--cells", "nmda,iaf", "--dry-run"]) == 0
    assert set(json.loads(capsys.readouterr().out)["plan"]["cells"]) == {"nmda", "iaf"}
    assert main(["study", "--scale", "small", "--cells", "nmda,gaba", "--dry-run"]) == 2
    assert "--cells 'nmda,gaba'" in capsys.readouterr().err
    assert main(["study", "--scale", "small", "--budget", "50", "--cells", "ampa", "--dry-run"]) == 0
    config = json.loads(capsys.readouterr().out)["config"]
    assert config["budget_steps"] == 50 and config["cells"] == ["ampa"]
    assert config["description"].endswith("Changed from the 'small' preset: budget_steps=50.")  # flags count too


@pytest.mark.e2e
def test_study_data_axis_with_a_separate_test_set(tmp_path, study_tables):
    """I&F only: a training pool and a separate test set, two data sizes, a Branch-ELM beside the TCN grid; the
    findings hold the data-scaling rows, the paired depth gain at each size with its CI, the fit and the FCI."""
    cfg = StudyConfig.for_scale("tiny", cells=["iaf"], iaf_trials=16, iaf_duration_ms=1000, iaf_test_trials=12,
                                depths=[1, 2], iaf_widths=[2], budget_steps=20, fractions=[0.5, 1.0],
                                split_fractions=[0.8, 0.2, 0.0], ci_level=0.8, n_boot=100,
                                iaf_models=["branch-elm:2@routing=sequential"])
    out = tmp_path / "study"
    doc = run_study("tiny", out, config=cfg, workers=1, threads=1, sim_workers=1, log=lambda m: None)
    assert doc["status"] == "complete" and doc["test_sets"]["iaf"]["traces"] == 12
    assert {r["fraction"] for r in doc["rows"]} == {0.5, 1.0}
    f = doc["findings"]["cells"]["iaf"]
    assert {r["fraction"] for r in f["data_scaling"]} == {0.5, 1.0}
    assert {r["family"] for r in f["data_scaling"]} == {"tcn", "branch-elm"}
    gains = f["depth_gain_by_data"]
    assert [g["fraction"] for g in gains] == [0.5, 1.0]
    assert all(g["ci_low"] <= g["delta_auc"] <= g["ci_high"] and g["n_traces"] >= 10 for g in gains)
    for g in gains:  # an unresolved gain needs more traces than it has, a resolved one fewer (or no estimate at 0)
        need, zero_inside = g["traces_to_resolve"], g["ci_low"] < 0 < g["ci_high"]
        assert (need is None and g["delta_auc"] == 0) or (need > g["n_traces"]) == zero_inside
    assert f["depth_gain_fit"]["extrapolation"]["train_hours"] == 20.0
    assert f["fci_ci"][0] <= f["fci"] <= f["fci_ci"][1]
    for name in ("figures/data_scaling.png", "figures/depth_gain_by_data.png", "report/index.html"):
        assert (out / name).is_file(), name
    status = main(["study", "--scale", "tiny", "--out", str(out), "--status"])
    assert status == 0
    # the README tables of a study come from its files alone (benchmarks/study_tables.py, tests/test_docs.py)
    dest = study_tables.export(out, tmp_path / "exported")
    assert (dest / "study.json").is_file() and (dest / "figures" / "data_scaling.png").is_file()
    iv = json.loads((dest / "intervals.json").read_text())
    assert {k.split("/")[1] for k in iv["runs"]} == {"0.5", "1.0"}
    assert all(v["ci"][0] <= v["auc"] <= v["ci"][1] for v in iv["runs"].values())
    keys = [k.split("/") for k in iv["belm_minus_best_tcn"]]
    assert sorted(k[1] for k in keys) == ["0.5", "1.0"] and all(k[2].startswith("branch-elm_2") for k in keys)
    block = study_tables.render(dest)
    g = f["depth_gain_by_data"][0]
    assert f"{g['delta_auc']:+.4f}" in block and f"{f['fci']:.2f}" in block
    assert block.startswith("<!-- study-tables:begin exported -->") and block.endswith("end exported -->")


def test_study_refuses_a_test_set_too_small_for_the_ci(tmp_path):
    from neuroemu.dataset.format import DatasetConfig
    from neuroemu.dataset.runner import build_dataset
    from neuroemu.study.study import check_test_set

    cfg = StudyConfig.for_scale("tiny", cells=["iaf"], iaf_test_trials=8, ci_level=0.95)
    build_dataset(DatasetConfig(cell={"kind": "iaf"}, n_trials=8, duration_ms=1000, seed=1), tmp_path / "t",
                  workers=1, progress=False)
    with pytest.raises(ConfigError, match="needs at least 40"):
        check_test_set(cfg, "iaf", tmp_path / "t")


def test_sweep_refuses_a_fraction_that_leaves_no_training_trial(iaf_data, tmp_path):
    cfg = SweepConfig(depths=[1], widths=[1], receptive_fields=[20], budget_steps=1, train_fraction=0.01)
    with pytest.raises(ConfigError, match="leaves no training trial"):
        run_sweep(iaf_data, cfg, tmp_path / "sweep", workers=1, log=lambda m: None)
    assert not (tmp_path / "sweep").exists()


def test_status_estimates_unstarted_datasets_at_the_speed_measured_on_the_others(tmp_path):
    from neuroemu.dataset.format import FORMAT_NAME, FORMAT_VERSION
    from neuroemu.study.study import study_status

    cfg = StudyConfig.for_scale("tiny", cells=["nmda", "ampa"], l5pc_trials=10, l5pc_duration_ms=1000,
                                budget_minutes=4)
    shards = [{"index": i, "wall_time_s": 7.0} for i in range(4)]  # 7 s per simulated second, measured
    (tmp_path / "data" / "nmda").mkdir(parents=True)
    (tmp_path / "data" / "nmda" / "dataset.json").write_text(json.dumps(
        {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "config": {}, "n_exc": 1, "n_inh": 1,
         "duration_ms": 1000, "shards": shards}))
    st = study_status(cfg, tmp_path)
    assert st["datasets"]["nmda"]["trials_done"] == 4
    assert st["datasets"]["nmda"]["simulation_s_left_one_core"] == pytest.approx(6 * 7.0)
    assert st["datasets"]["ampa"]["simulation_s_left_one_core"] == pytest.approx(10 * 7.0)  # not the nominal 3.2
    n_runs = sum(s["configurations"] for s in st["sweeps"].values())
    assert st["estimate"]["training_process_hours_left"] == pytest.approx(round(n_runs * 4 / 60, 2))


def test_status_counts_cpu_time_so_a_paused_worker_does_not_inflate_the_estimate(tmp_path):
    from neuroemu.dataset.format import FORMAT_NAME, FORMAT_VERSION
    from neuroemu.study.study import study_status

    cfg = StudyConfig.for_scale("tiny", cells=["nmda"], l5pc_trials=10, l5pc_duration_ms=1000)
    shards = [{"index": 0, "wall_time_s": 530.0, "cpu_time_s": 2.0},  # a worker stopped for minutes
              {"index": 1, "wall_time_s": 2.1, "cpu_time_s": 2.0}]
    (tmp_path / "data" / "nmda").mkdir(parents=True)
    (tmp_path / "data" / "nmda" / "dataset.json").write_text(json.dumps(
        {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "config": {}, "n_exc": 1, "n_inh": 1,
         "duration_ms": 1000, "shards": shards}))
    st = study_status(cfg, tmp_path)
    assert st["datasets"]["nmda"]["simulation_s_left_one_core"] == pytest.approx(8 * 2.0)
    assert st["simulation_s_per_simulated_s_measured"] == pytest.approx(2.0)


def test_a_study_may_add_fractions_in_a_later_sitting_but_not_drop_them(tmp_path):
    from neuroemu.study.study import _check_config

    first = StudyConfig.for_scale("tiny", fractions=[1.0])
    (tmp_path / "study.json").write_text(json.dumps({"config": first.to_dict()}))
    _check_config(tmp_path, first.replace(fractions=[0.5, 1.0]))  # the data axis grows: fine
    (tmp_path / "study.json").write_text(json.dumps({"config": first.replace(fractions=[0.5, 1.0]).to_dict()}))
    with pytest.raises(ConfigError, match="may grow .* but not lose points"):
        _check_config(tmp_path, first)
    with pytest.raises(ConfigError, match="differs in budget_steps"):
        _check_config(tmp_path, first.replace(fractions=[0.5, 1.0], budget_steps=7))
    _check_config(tmp_path, first.replace(fractions=[0.5, 1.0], description="reworded"))  # prose decides nothing


def _write_predictions(run_dir, scores, labels):
    import numpy as np

    run_dir.mkdir(parents=True, exist_ok=True)
    np.savez(run_dir / "test_predictions.npz", logits=scores.astype(np.float32), spikes=labels.astype(np.int8),
             trials=np.arange(labels.shape[0]), config_json=json.dumps({"drop_first_ms": 0, "spike_range": [0, 99]}))


def test_depth_gain_by_data_averages_training_seeds(tmp_path):
    """Rows of two replicates at two data sizes: the gain at each size is the mean of the replicates' paired
    gains (each replicate's deep and one-layer networks selected within it), and the rows say so."""
    import numpy as np

    from neuroemu.study.findings import data_axis, paired_depth_gain

    rng = np.random.default_rng(0)
    y = (rng.random((50, 400)) < 0.02).astype(np.int8)
    rows = []
    for f, hours in ((0.5, 0.1), (1.0, 0.2)):
        for rep, shift_deep in ((0, 2.5), (1, 1.8)):
            for depth, shift in ((1, 1.5), (2, shift_deep)):
                name = f"{depth}x2x20" + (f"_s{rep}" if rep else "")
                run = tmp_path / f"f{f}" / name
                _write_predictions(run, np.round(rng.normal(size=y.shape) + shift * y, 1), y)
                rows.append({"name": name, "cell": "iaf", "depth": depth, "width": 2, "family": "tcn",
                             "fraction": f, "train_hours": hours, "train_trials": 10, "replicate": rep,
                             "spike_auc": 0.9, "val_spike_auc": 0.8 + 0.01 * depth, "run_dir": str(run),
                             "n_parameters": 10 * depth})
    axis = data_axis(rows, n_boot=200, level=0.9)
    gains = axis["depth_gain_by_data"]
    assert [g["n_seeds"] for g in gains] == [2, 2]
    for g in gains:
        assert g["delta_auc"] == pytest.approx(np.mean(g["delta_auc_by_seed"]))
        assert g["delta_auc_by_seed"][0] > g["delta_auc_by_seed"][1]  # seed 0's deep network is the better one
        assert g["ci_low"] <= g["delta_auc"] <= g["ci_high"] and g["deep_by_seed"] == ["2x2x20", "2x2x20_s1"]
    assert axis["depth_gain_fit"]["n_seeds"] == 2
    main_gain = paired_depth_gain([r for r in rows if r["fraction"] == 1.0], n_boot=200, level=0.9)
    assert main_gain["n_seeds"] == 2 and main_gain["delta_auc"] == pytest.approx(gains[1]["delta_auc"])
    one = data_axis([r for r in rows if r["replicate"] == 0], n_boot=200, level=0.9)["depth_gain_by_data"]
    assert [g["n_seeds"] for g in one] == [1, 1] and "delta_auc_by_seed" not in one[0]


def test_sweep_trains_each_configuration_once_per_training_seed(iaf_data, tmp_path):
    cfg = SweepConfig(depths=[1], widths=[2], receptive_fields=[20], budget_steps=3, train_seeds=2, seed=5)
    doc = run_sweep(iaf_data, cfg, tmp_path / "sweep", workers=1, threads=1, figures=False, log=lambda m: None)
    rows = {r["name"]: r for r in doc["rows"]}
    assert set(rows) == {"1x2x20", "1x2x20_s1"}
    assert (rows["1x2x20"]["replicate"], rows["1x2x20"]["train_seed"]) == (0, 5)
    assert (rows["1x2x20_s1"]["replicate"], rows["1x2x20_s1"]["train_seed"]) == (1, 6)
    run = json.loads((tmp_path / "sweep" / "runs" / "1x2x20_s1" / "run.json").read_text())
    assert run["training"]["seed"] == 6
    with pytest.raises(ConfigError, match="train_seeds must be an integer >= 1"):
        SweepConfig(train_seeds=0)


def test_a_study_may_add_training_seeds_but_not_drop_them(tmp_path):
    from neuroemu.study.study import _check_config

    first = StudyConfig.for_scale("tiny")
    (tmp_path / "study.json").write_text(json.dumps({"config": first.to_dict()}))
    _check_config(tmp_path, first.replace(train_seeds=3))
    (tmp_path / "study.json").write_text(json.dumps({"config": first.replace(train_seeds=3).to_dict()}))
    with pytest.raises(ConfigError, match="train_seeds 3.*--train-seeds 3 or more"):
        _check_config(tmp_path, first.replace(train_seeds=2))


def test_per_cell_dataset_seeds_let_a_study_adopt_earlier_datasets():
    from neuroemu.study.study import TEST_SEED_OFFSET, dataset_config_for

    cfg = StudyConfig.for_scale("medium", dataset_seeds={"nmda": 11}, test_seeds={"nmda": 12},
                                record_dendrites=["nmda"])
    pool, test = dataset_config_for(cfg, "nmda"), dataset_config_for(cfg, "nmda", test=True)
    assert (pool.seed, test.seed) == (11, 12)
    assert pool.record_dendrites and not test.record_dendrites  # test sets score the soma only
    ampa = dataset_config_for(cfg, "ampa")
    assert ampa.seed == cfg.seed and not ampa.record_dendrites
    assert dataset_config_for(cfg, "ampa", test=True).seed == cfg.seed + TEST_SEED_OFFSET
    assert StudyConfig.from_dict(cfg.to_dict()) == cfg  # the overrides are stored in study.json
    with pytest.raises(ConfigError, match="dataset_seeds: unknown cell 'gaba'"):
        StudyConfig.for_scale("medium", dataset_seeds={"gaba": 1})
    with pytest.raises(ConfigError, match=r"test_seeds.nmda must be an integer >= 0, got -3"):
        StudyConfig.for_scale("medium", test_seeds={"nmda": -3})
    with pytest.raises(ConfigError, match="would share seed 5"):
        StudyConfig.for_scale("medium", dataset_seeds={"ampa": 5}, test_seeds={"ampa": 5})
    with pytest.raises(ConfigError, match="record_dendrites: 'iaf' is not an L5PC cell"):
        StudyConfig.for_scale("medium", record_dendrites=["iaf"])
    StudyConfig.for_scale("small", dataset_seeds={"ampa": 5}, test_seeds={"ampa": 5})  # no separate test set


def test_a_study_started_before_a_field_existed_resumes_while_the_field_keeps_its_default(tmp_path):
    from neuroemu.study.study import _check_config

    cfg = StudyConfig.for_scale("tiny")
    older = {k: v for k, v in cfg.to_dict().items() if k not in ("dataset_seeds", "test_seeds", "record_dendrites")}
    (tmp_path / "study.json").write_text(json.dumps({"config": older}))
    _check_config(tmp_path, cfg)
    with pytest.raises(ConfigError, match="differs in dataset_seeds"):
        _check_config(tmp_path, cfg.replace(dataset_seeds={"nmda": 3}))


def test_sweeps_run_whole_pools_first_then_the_smallest_fraction():
    from neuroemu.study.study import sweep_order

    cfg = StudyConfig.for_scale("medium")
    order = sweep_order(cfg)
    assert order[:3] == [(1.0, "nmda"), (1.0, "ampa"), (1.0, "iaf")]
    assert order[3:6] == [(0.125, "nmda"), (0.125, "ampa"), (0.125, "iaf")]
    assert [f for f, _ in order[6:]] == [0.5, 0.5, 0.5, 0.25, 0.25, 0.25]
    assert len(order) == len(set(order)) == 4 * 3
    assert sweep_order(cfg.replace(fractions=[1.0], cells=["ampa"])) == [(1.0, "ampa")]
