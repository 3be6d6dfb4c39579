"""Figures and HTML reports (neuroemu.report) on small synthetic arrays."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from matplotlib.figure import Figure

from neuroemu.errors import ConfigError
from neuroemu.report import detect_kind, make_report
from neuroemu.report import figures as F
from neuroemu.report._style import REGION_COLORS, as_columns
from neuroemu.report.html import build_html, write_report
from neuroemu.report.run_report import RunReportData, run_metrics, write_run_report

UNITS = ("(ms)", "(s)", "(1-ms bins)", "(mV)", "(Hz", "(spikes/s)", "(layers)", "(a.u.)", "(fraction", "(%)", "(channels")


def _has_unit(label: str) -> bool:
    return any(u in label for u in UNITS)


def _labelled_axes(fig: Figure) -> None:
    assert isinstance(fig, Figure)
    xl = [ax.get_xlabel() for ax in fig.axes if ax.get_xlabel()]
    yl = [ax.get_ylabel() for ax in fig.axes if ax.get_ylabel()]
    assert xl and all(_has_unit(s) for s in xl), xl
    assert yl and all(_has_unit(s) or s in ("synapse", "input channel", "TP rate") or "synapse" in s for s in yl), yl


@pytest.fixture(scope="module")
def io_data():
    rng = np.random.default_rng(1)
    T = 3000
    v = -70 + np.convolve(rng.normal(0, 3, T), np.ones(20) / 5, "same")
    spikes = np.array([700, 1200, 1900, 2500])
    v_raw = v.copy()
    v_raw[spikes] = 20.0
    prob = rng.random(T) * 0.05
    prob[spikes + 2] = 0.95
    prob[spikes + 3] = 0.9   # a 2-bin run counts as one predicted spike
    train = np.zeros(T, np.uint8)
    train[spikes] = 1
    return dict(T=T, v=v_raw, pred=v + rng.normal(0, 1, T), spikes=spikes, prob=prob, train=train, rng=rng)


def test_input_raster(io_data):
    rng = np.random.default_rng(0)
    exc = np.stack([rng.integers(0, 50, 2000), rng.integers(0, 3000, 2000)], 1)
    inh = np.stack([rng.integers(0, 40, 800), rng.integers(0, 3000, 800)], 1)
    fig = F.input_raster(exc, inh, 50, 40, soma_v=io_data["v"], window_ms=(500, 2500))
    _labelled_axes(fig)
    assert fig.axes[-1].get_xlabel() == "time (ms)"
    assert "Hz" in fig.axes[1].get_ylabel()
    raster = fig.axes[0]
    inh_line, exc_line = raster.lines[0], raster.lines[1]
    assert np.min(exc_line.get_ydata()) >= 40 and np.max(inh_line.get_ydata()) < 40  # exc drawn above inh
    assert np.all((exc_line.get_xdata() >= 500) & (exc_line.get_xdata() < 2500))
    with pytest.raises(ConfigError):
        F.input_raster(exc, inh, 50, 40, window_ms=(10, 5))


def test_traces_and_spike_onsets(io_data):
    d = io_data
    onsets = F.spike_onsets(d["prob"], 0.5)
    np.testing.assert_array_equal(onsets, d["spikes"] + 2)
    fig = F.traces(d["v"], d["pred"], d["spikes"], d["prob"], 0.5, zoom=(600, 1300))
    _labelled_axes(fig)
    full, zoom = fig.axes
    assert full.get_xlabel() == "time (s)" and zoom.get_xlabel() == "time (ms)"
    assert zoom.get_xlim() == (600, 1300)
    assert full.get_ylim()[1] >= -55 + 40   # 40-mV spike ticks above the clip are visible
    assert "4 true spikes, 4 predicted" in full.get_title()
    with pytest.raises(ConfigError):
        F.traces(d["v"], d["pred"][:-1], d["spikes"], d["prob"], 0.5)


def test_roc_has_low_fp_inset():
    fpr = np.linspace(0, 1, 200) ** 3
    tpr = np.sqrt(np.linspace(0, 1, 200))
    fig = F.roc(fpr, tpr, 0.9, inset_max_fp=0.05)
    _labelled_axes(fig)
    ax = fig.axes[0]
    assert len(ax.child_axes) == 1
    inset = ax.child_axes[0]
    assert inset.get_xlim()[1] == pytest.approx(5.0) and "%" in inset.get_xlabel()
    assert "AUC = 0.9000" in [t.get_text() for t in ax.get_legend().get_texts()][1]


def test_recall_curve_and_cross_correlation(io_data):
    d = io_data
    shifted = np.roll(d["train"], 3)
    lags, rate, frac = F.recall_curve(d["train"], shifted, 50)
    assert lags[np.argmax(rate)] == 3
    assert frac == pytest.approx(1.0)
    assert rate.sum() == pytest.approx(1000.0)       # normalised to sum 1, in spikes/s
    _, _, frac_far = F.recall_curve(d["train"], np.roll(d["train"], 25), 50)
    assert frac_far == pytest.approx(0.0)
    fig = F.spike_cross_correlation(d["train"][None], shifted[None])
    _labelled_axes(fig)
    assert "100.0% within" in fig.axes[0].get_title()


def test_voltage_scatter(io_data):
    d = io_data
    fig = F.voltage_scatter(np.minimum(d["v"], -55), d["pred"], n=500, seed=3)
    _labelled_axes(fig)
    ax = fig.axes[0]
    assert ax.collections[0].get_offsets().shape[0] == 500
    ident = ax.lines[0]
    np.testing.assert_allclose(ident.get_xdata(), ident.get_ydata())


def _toy_segments():
    rows = []
    for region, (dx, dy) in {"basal": (0, -1), "trunk": (0, 1), "oblique": (1, 0.5), "tuft": (0.3, 1)}.items():
        for i in range(3):
            rows.append(dict(x0=dx * 10 * i, y0=dy * 10 * i + (300 if region == "tuft" else 0), z0=0.0,
                             x1=dx * 10 * (i + 1), y1=dy * 10 * (i + 1) + (300 if region == "tuft" else 0), z1=0.0,
                             region=region, type="basal" if region == "basal" else "apical",
                             path_dist_from_soma_center_um=10.0 * i, diam_um=1.0))
    return rows


def test_morphology_colours_by_region():
    from matplotlib.colors import to_hex

    rows = _toy_segments()
    fig = F.morphology(rows)
    ax = fig.axes[0]
    colours = {c.get_label().split(" (")[0]: to_hex(c.get_colors()[0]) for c in ax.collections}
    assert colours == {"basal": REGION_COLORS["basal"], "oblique + trunk": REGION_COLORS["oblique"],
                       "tuft": REGION_COLORS["tuft"]}
    assert [len(c.get_segments()) for c in ax.collections] == [3, 6, 3]
    assert any("\u00b5m" in t.get_text() for t in ax.texts)  # scale bar in um
    # the same table as columns, as a SegmentTable-like object and as a {"columns", "data"} record dict
    cols = as_columns(rows)
    names = list(cols)
    record = {"columns": names, "data": [[r[k] for k in names] for r in rows]}

    class Table:
        def columns(self):
            return cols

    for table in (cols, Table(), record):
        assert len(F.morphology(table).axes[0].collections) == 3
    with pytest.raises(ConfigError, match="coordinate"):
        F.morphology([{"region": "basal"}])


def test_prepare_kernels():
    k = np.zeros((4, 10))
    k[:2, -1] = 1.0     # last tap = now: excitatory weight at lag 0
    k[2:, -3] = -2.0    # inhibitory at lag 2
    out, flipped = F.prepare_kernels(k, 2, max_lag_ms=5, smooth=False)
    assert out.shape == (4, 5) and not flipped
    assert out[0, 0] == 1.0 and out[2, 2] == -2.0
    out, flipped = F.prepare_kernels(-k, 2, max_lag_ms=5, smooth=True)
    assert flipped and out[0, 0] == pytest.approx(0.5)      # 2-tap smoothing, sign flipped back
    assert F.select_unit(np.stack([k, 3 * k, k])) == 1


def test_first_layer_filters_orders_exc_above_inh():
    rng = np.random.default_rng(0)
    n_exc, W, K = 12, 3, 30
    w = rng.normal(0, 0.01, (W, 2 * n_exc, K))
    w[2, :n_exc] += 1.0      # unit 2: largest norm, exc positive, inh negative
    w[2, n_exc:] -= 0.5
    regions = ["basal"] * 4 + ["oblique"] * 2 + ["trunk"] * 2 + ["tuft"] * 4
    fig = F.first_layer_filters(w, n_exc, regions)
    assert "unit 2 of 3" in fig._suptitle.get_text()
    heat = [ax for ax in fig.axes if ax.images]
    assert len(heat) == 3
    for ax, n_reg in zip(heat, (4, 4, 4)):
        img = np.asarray(ax.images[0].get_array())
        assert img.shape == (2 * n_reg, min(K, 40))
        assert np.all(img[:n_reg].mean(axis=1) > 0) and np.all(img[n_reg:].mean(axis=1) < 0)
        assert ax.get_ylim()[0] > ax.get_ylim()[1]          # row 0 (excitatory) at the top
        assert [t.get_text() for t in ax.get_yticklabels()] == ["exc", "inh"]
    profiles = [ax for ax in fig.axes if ax.get_xlabel() and not ax.images and ax.get_label() != "<colorbar>"]
    assert all(ax.get_xlabel() == "time before present (ms)" for ax in profiles)
    assert profiles[0].get_ylabel() == "weight (a.u.)"
    with pytest.raises(ConfigError, match="regions"):
        F.first_layer_filters(w, n_exc, regions[:-1])


def test_iaf_weights():
    lag = np.arange(80)[::-1]
    w = np.concatenate([np.exp(-lag / 20)[None].repeat(8, 0), -np.exp(-lag / 20)[None].repeat(2, 0)])
    fig = F.iaf_weights(-w[None], 8)      # sign is arbitrary: flipped back so excitation is positive
    _labelled_axes(fig)
    img = np.asarray(fig.axes[0].images[0].get_array())
    assert img.shape == (10, 80) and img[0, 0] == pytest.approx(1.0) and img[9, 0] == pytest.approx(-1.0)


def _sweep_rows():
    rows = []
    for cell, base, gain in (("nmda", 0.95, 0.045), ("ampa", 0.985, 0.01)):
        for d in (1, 2, 3, 5):
            for width in (16, 64):
                auc = base + gain * (1 - np.exp(-d / (3 if cell == "nmda" else 0.5))) + 0.001 * (width == 64)
                rows.append(dict(cell=cell, depth=d, width=width, receptive_field=40 + 20 * d,
                                 n_parameters=1278 * width * 40 + (d - 1) * width * width * 20,
                                 spike_auc=auc, spike_auc_sd=0.001, soma_explained_variance=80 + 100 * (auc - 0.9)))
    return rows


def test_complexity_curve_prunes_as_section_9_7():
    x = [1, 1, 2, 3, 4, 5]
    y = [0.90, 0.95, 0.94, 0.951, 0.97, 0.99]
    c = F.complexity_curve(x, y, [0.1, 0.2, 0.3, 0.4, 0.5, 0.6], min_increase=0.015, y_span=1.0, prune=True)
    # best per x then cumulative max: 0.95 0.95 0.951 0.97 0.99; keep gains > 0.015 over the last kept point
    np.testing.assert_array_equal(c["x"], [1, 4, 5])
    np.testing.assert_allclose(c["y"], [0.95, 0.97, 0.99])
    np.testing.assert_allclose(c["yerr"], [0.2, 0.5, 0.6])   # error bar of the row giving the max
    c = F.complexity_curve(x, y, min_increase=0.05, y_span=1.0)
    np.testing.assert_array_equal(c["x"], [1])               # 0.99 - 0.95 is not > 0.05
    raw = F.complexity_curve(x, y, prune=False)
    np.testing.assert_array_equal(raw["x"], [1, 2, 3, 4, 5])
    np.testing.assert_allclose(raw["y"], [0.95, 0.94, 0.951, 0.97, 0.99])


def test_complexity_and_panels():
    rows = _sweep_rows()
    fig = F.complexity(rows, x="depth", y="spike_auc", yerr="spike_auc_sd", group="cell")
    _labelled_axes(fig)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "depth (layers)"
    assert "cumulative best" in ax.get_title()
    assert sorted(t.get_text() for t in ax.get_legend().get_texts()) == ["ampa", "nmda"]
    fig = F.complexity(rows, x="width", group=["cell", "depth"], prune=False)
    assert "no pruning" in fig.axes[0].get_title()
    fig = F.complexity_panels(rows)
    assert len(fig.axes) == 6
    with pytest.raises(ConfigError, match="missing column"):
        F.complexity(rows, y="nope")


def test_study_summary_marks_smallest_network():
    rows = _sweep_rows()
    best = F.smallest_reaching(rows, 0.99)
    assert best["nmda"] is None or best["nmda"]["spike_auc"] >= 0.99
    ampa = best["ampa"]
    assert ampa["spike_auc"] >= 0.99
    cands = [r for r in rows if r["cell"] == "ampa" and r["spike_auc"] >= 0.99]
    assert ampa["n_parameters"] == min(r["n_parameters"] for r in cands)
    assert F.smallest_reaching(rows, 1.5) == {"ampa": None, "nmda": None}
    fig = F.study_summary(rows, target_auc=0.99)
    _labelled_axes(fig)
    ax_a, ax_e = fig.axes
    assert "(%)" in ax_e.get_ylabel()
    labels = [t.get_text() for t in ax_a.get_legend().get_texts()]
    assert any("ampa" in s and "params" in s for s in labels)
    stars = [ln for ln in ax_a.lines if ln.get_marker() == "*"]
    assert len(stars) == sum(v is not None for v in best.values())


def test_html_is_self_contained(tmp_path, io_data):
    fig = F.voltage_scatter(io_data["v"], io_data["pred"], n=200)
    png = F.save_figure(F.roc([0, 0.5, 1], [0, 0.9, 1], 0.7), tmp_path / "roc.png")
    html = build_html("Test <report>", [
        ("Accuracy", "plain & simple\n\nsecond paragraph", [fig, (png, "ROC caption")], [[{"a": 1, "b": 0.12345}]]),
        {"heading": "Raw", "text": "<p><b>bold</b></p>", "tables": [("cap", [{"x": "y", "n": None}])]},
    ])
    assert html.count('src="data:image/png;base64,') == 2
    assert "http://" not in html and "https://" not in html and 'src="file' not in html
    assert "<link" not in html and "<script" not in html
    assert "Test &lt;report&gt;" in html and "plain &amp; simple" in html and "<b>bold</b>" in html
    assert "<td>0.1235</td>" in html and "ROC caption" in html and "<caption>cap</caption>" in html
    index = write_report(tmp_path / "rep", "R", [("S", "", [fig, fig])])
    assert index.name == "index.html" and len(list(index.parent.glob("*.png"))) == 2
    assert index.read_text().count("data:image/png;base64,") == 2
    with pytest.raises(ConfigError, match="does not exist"):
        build_html("x", [("s", "", [tmp_path / "missing.png"])])


def _run_data(kind: str) -> RunReportData:
    rng = np.random.default_rng(2)
    n, T, n_exc = 3, 1500, 10
    train = np.zeros((n, T), np.uint8)
    times = []
    for i in range(n):
        t = np.sort(rng.choice(np.arange(600, T - 60), 3, replace=False))
        train[i, t] = 1
        times.append(t.astype(float))
    soma = -70 + rng.normal(0, 2, (n, T))
    prob = np.clip(0.8 * train + rng.random((n, T)) * 0.3, 0, 1)
    ev = np.stack([rng.integers(0, n_exc, 300), rng.integers(0, T, 300)], 1)
    w = rng.normal(0, 1, (2, 2 * n_exc, 20 if kind == "l5pc" else 80))
    return RunReportData(title="t", cell_kind=kind, n_exc=n_exc, n_inh=n_exc, soma_true=soma,
                         soma_pred=soma + rng.normal(0, 0.5, (n, T)), spike_true=train, spike_prob=prob,
                         spike_times=times, trial_indices=[4, 7, 9], example=1, example_exc=ev, example_inh=ev,
                         first_layer=w, regions=["basal"] * 4 + ["tuft"] * 6,
                         segments=_toy_segments() if kind == "l5pc" else None, run_info={"depth": 2})


@pytest.mark.parametrize("kind", ["l5pc", "iaf"])
def test_run_report_from_arrays(tmp_path, kind):
    data = _run_data(kind)
    m = run_metrics(data)
    assert 0.9 < m["auc"] <= 1.0 and m["n_spikes"] == 9
    index = write_run_report(data, tmp_path / kind)
    html = index.read_text()
    assert ("Learned weights" in html) == (kind == "iaf")
    assert ("First-layer filters" in html) == (kind == "l5pc")
    assert ("Morphology" in html) == (kind == "l5pc")
    assert html.count("data:image/png;base64,") == len(list(index.parent.glob("*.png"))) >= 6


def test_make_report_dispatch(tmp_path):
    with pytest.raises(ConfigError, match="not a run, sweep or study"):
        make_report(tmp_path)
    (tmp_path / "sweep.json").write_text("{}")
    assert detect_kind(tmp_path) == "sweep"


def test_figures_import_without_torch_or_neuron():
    code = ("import sys, neuroemu.report, neuroemu.report.figures, neuroemu.report.html; "
            "bad = [m for m in ('torch', 'neuron', 'matplotlib.pyplot') if m in sys.modules]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.slow
def test_report_of_a_trained_iaf_run(tmp_path):
    """End to end: simulate a tiny I&F dataset, train a few steps, write the run report."""
    from neuroemu.dataset.format import DatasetConfig
    from neuroemu.dataset.runner import build_dataset
    from neuroemu.models.tcn import TCNConfig
    from neuroemu.training.config import TrainingConfig
    from neuroemu.training.loop import train

    build_dataset(DatasetConfig(cell={"kind": "iaf"}, n_trials=10, duration_ms=2000, seed=1), tmp_path / "ds",
                  workers=1, progress=False)
    tc = TrainingConfig.from_preset("modern").replace(max_steps=20, val_every_steps=10, log_every_steps=10,
                                                      batch_size=4, window_ms=500)
    train(tmp_path / "ds", TCNConfig.iaf_network(100), tc, tmp_path / "run")
    index = make_report(tmp_path / "run")
    assert index == tmp_path / "run" / "report" / "index.html"
    html = index.read_text()
    assert "Learned weights" in html and "training log" in html
    pngs = sorted(p.name for p in index.parent.glob("*.png"))
    assert any("iaf-weights" in n for n in pngs) and any("traces" in n for n in pngs)
    assert html.count("data:image/png;base64,") == len(pngs)


def test_morphology_skips_rows_without_coordinates():
    rows = _toy_segments()
    rows[0] = {**rows[0], "x0": float("nan")}
    fig = F.morphology(rows)
    assert sum(len(c.get_segments()) for c in fig.axes[0].collections) == len(rows) - 1
    with pytest.raises(ConfigError, match="no finite"):
        F.morphology([{**r, "x0": float("nan")} for r in rows])
