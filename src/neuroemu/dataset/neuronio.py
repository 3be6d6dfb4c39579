"""Import of the published NeuronIO pickle files (reference reference section 6) into the neuroemu format.

Each published file is a protocol-2 pickle written by Python 2 (loaded here with ``encoding='latin1'``)::

    {'Params': {... 'randomSeed', 'allSegmentsType', 'allSegmentsLength', ...},
     'Results': {'listOfSingleSimulationDicts': [
         {'recordingTimeHighRes': float32 (48000,), 'somaVoltageHighRes': float16, 'nexusVoltageHighRes': float16,
          'recordingTimeLowRes': float32 (6000,), 'somaVoltageLowRes': float16, 'nexusVoltageLowRes': float16,
          'dendriticVoltagesLowRes': float16 (639, 6000),
          'exInputSpikeTimes': {segment: [ms, ...]}, 'inhInputSpikeTimes': {segment: [ms, ...]},
          'outputSpikeTimes': float16}, ...]}}

The stored output spike times are float16 (up to 4 ms off late in a trial, reference 6.1), so spikes are
re-detected from ``somaVoltageHighRes`` on the float32 ``recordingTimeHighRes`` grid with the published rule
(reference 2.4; runs of equal float16 samples at a peak count as one sample). Files without a high-resolution trace
keep ``outputSpikeTimes`` (as float64); the shard attribute ``spike_times_source`` says which was used.
Soma and nexus voltages come from the 1-ms traces (float16 values stored as float32).
"""
from __future__ import annotations

import pickle
import re
import shutil
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from neuroemu.dataset.format import MANIFEST_NAME, SHARDS_DIR, DatasetConfig, file_sha256
from neuroemu.dataset.trial import Trial
from neuroemu.dataset.writer import DatasetWriter
from neuroemu.errors import DatasetError
from neuroemu.inputs.spikes import InputSpikes
from neuroemu.simulation.detection import detect_spikes

SEGMENT_FORMAT = "neuronio.params/1"
_SEGMENT_KEYS = [("type", "allSegmentsType"), ("seg_length_um", "allSegmentsLength"),
                 ("dist_from_soma_um", "allSegments_DistFromSoma"),
                 ("section_dist_from_soma_um", "allSegments_SectionDistFromSoma"),
                 ("section_index", "allSegments_SectionInd")]


def load_neuronio_pickle(path: str | Path) -> dict[str, Any]:
    """Load one published pickle (Python-2 protocol, ``encoding='latin1'``); errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: file not found")
    try:
        with open(path, "rb") as f:
            data = pickle.load(f, encoding="latin1")
    except Exception as e:  # noqa: BLE001 - any unpickling failure means a bad file
        raise DatasetError(f"{path}: not a readable NeuronIO pickle ({type(e).__name__}: {e})") from None
    if not isinstance(data, dict) or "Params" not in data or "Results" not in data:
        raise DatasetError(f"{path}: expected a dict with keys 'Params' and 'Results'")
    res = data["Results"]
    if not isinstance(res, dict) or "listOfSingleSimulationDicts" not in res:
        raise DatasetError(f"{path}: 'Results' lacks 'listOfSingleSimulationDicts'")
    return data


def _events(d: Any, n_seg: int, duration: int, where: str) -> np.ndarray:
    if not isinstance(d, dict):
        raise DatasetError(f"{where}: expected a dict segment -> spike times, got {type(d).__name__}")
    chans, times = [], []
    for seg, ts in d.items():
        t = np.asarray(ts, dtype=np.float64).ravel()
        if t.size == 0:
            continue
        if not np.all(t == np.round(t)):
            raise DatasetError(f"{where}: segment {seg} has non-integer spike times")
        seg = int(seg)
        if not 0 <= seg < n_seg:
            raise DatasetError(f"{where}: segment index {seg} outside 0..{n_seg - 1}")
        chans.append(np.full(t.size, seg, dtype=np.int64))
        times.append(t.astype(np.int64))
    if not chans:
        return np.zeros((0, 2), dtype=np.int32)
    c, t = np.concatenate(chans), np.concatenate(times)
    if t.min() < 0 or t.max() >= duration:
        raise DatasetError(f"{where}: spike times outside 0..{duration - 1} ms")
    order = np.lexsort((c, t))
    return np.stack([c[order], t[order]], axis=1).astype(np.int32)


def _n_segments(params: dict, sims: list, where: str) -> int:
    if "allSegmentsType" in params:
        return len(params["allSegmentsType"])
    for s in sims:
        if "dendriticVoltagesLowRes" in s:
            return int(np.asarray(s["dendriticVoltagesLowRes"]).shape[0])
    raise DatasetError(f"{where}: cannot tell the number of segments (no Params['allSegmentsType'] and no "
                       "dendriticVoltagesLowRes)")


def segment_table_from_params(params: dict) -> dict[str, Any] | None:
    """The segment description of a pickle's Params as ``{"format", "columns", "data"}`` (None if absent)."""
    cols = [(name, params[key]) for name, key in _SEGMENT_KEYS if key in params]
    if not cols:
        return None
    n = len(cols[0][1])
    cols = [(name, list(v)) for name, v in cols if len(v) == n]
    data = [[_py(v[i]) for _, v in cols] for i in range(n)]
    return {"format": SEGMENT_FORMAT, "columns": ["segment_index"] + [c for c, _ in cols],
            "data": [[i] + row for i, row in enumerate(data)]}


def _py(v: Any) -> Any:
    if isinstance(v, bytes):
        return v.decode("latin1")
    if isinstance(v, np.generic):
        return v.item()
    return v


def sim_to_trial(sim: dict, index: int, seed: int, n_seg: int, where: str, dendrites: bool = True) -> Trial:
    """Convert one per-simulation dict into a :class:`Trial` (spikes re-detected from the 0.125-ms trace)."""
    for k in ("exInputSpikeTimes", "inhInputSpikeTimes"):
        if k not in sim:
            raise DatasetError(f"{where}: missing key {k!r}")
    if "somaVoltageLowRes" in sim:
        soma = np.asarray(sim["somaVoltageLowRes"], dtype=np.float32).ravel()
    elif "somaVoltageHighRes" in sim:
        soma = np.asarray(sim["somaVoltageHighRes"], dtype=np.float32).ravel()[::8]
    else:
        raise DatasetError(f"{where}: no somaVoltageLowRes or somaVoltageHighRes")
    duration = soma.shape[0]
    if "nexusVoltageLowRes" in sim:
        nexus = np.asarray(sim["nexusVoltageLowRes"], dtype=np.float32).ravel()
    elif "nexusVoltageHighRes" in sim:
        nexus = np.asarray(sim["nexusVoltageHighRes"], dtype=np.float32).ravel()[::8]
    else:
        nexus = np.full(duration, np.nan, dtype=np.float32)
    if nexus.shape != soma.shape:
        raise DatasetError(f"{where}: nexus trace has {nexus.shape[0]} samples, soma {duration}")
    attrs: dict[str, Any] = {}
    if "somaVoltageHighRes" in sim:
        v = np.asarray(sim["somaVoltageHighRes"]).ravel()
        if "recordingTimeHighRes" in sim:
            t = np.asarray(sim["recordingTimeHighRes"], dtype=np.float64).ravel()
        else:
            t = np.arange(v.shape[0], dtype=np.float64) * (duration / v.shape[0])
        spikes = detect_spikes(v, t, -25.0, allow_plateaus=True)
        attrs["spike_times_source"] = "redetected_from_somaVoltageHighRes"
    elif "outputSpikeTimes" in sim:
        spikes = np.sort(np.asarray(sim["outputSpikeTimes"], dtype=np.float64).ravel())
        attrs["spike_times_source"] = f"outputSpikeTimes_{np.asarray(sim['outputSpikeTimes']).dtype}"
    else:
        raise DatasetError(f"{where}: no somaVoltageHighRes and no outputSpikeTimes")
    dend = None
    if dendrites and "dendriticVoltagesLowRes" in sim:
        dend = np.asarray(sim["dendriticVoltagesLowRes"], dtype=np.float16)
        if dend.shape != (n_seg, duration):
            raise DatasetError(f"{where}: dendriticVoltagesLowRes has shape {dend.shape}, "
                               f"expected ({n_seg}, {duration})")
    exc = _events(sim["exInputSpikeTimes"], n_seg, duration, f"{where} exInputSpikeTimes")
    inh = _events(sim["inhInputSpikeTimes"], n_seg, duration, f"{where} inhInputSpikeTimes")
    return Trial(index=index, seed=seed, inputs=InputSpikes(exc, inh), soma_v_1ms=soma, nexus_v_1ms=nexus,
                 spike_times_ms=spikes, dend_v_1ms=dend, attrs=attrs)


def _seed_of(params: dict, path: Path) -> int:
    if "randomSeed" in params:
        try:
            return int(params["randomSeed"])
        except (TypeError, ValueError):
            pass
    m = re.search(r"randomSeed_(\d+)", path.name)
    return int(m.group(1)) if m else 0


def iter_neuronio_trials(paths: Sequence[str | Path], dendrites: bool = True
                         ) -> Iterator[tuple[Path, int, dict, Trial]]:
    """Yield (file, position in file, Params, Trial) for every simulation, one file in memory at a time.

    Trial indices run on across files in the order given.
    """
    index = 0
    for p in paths:
        p = Path(p)
        data = load_neuronio_pickle(p)
        params = data["Params"] if isinstance(data["Params"], dict) else {}
        sims = data["Results"]["listOfSingleSimulationDicts"]
        n_seg = _n_segments(params, sims, str(p))
        seed = _seed_of(params, p)
        for j, sim in enumerate(sims):
            trial = sim_to_trial(sim, index, seed, n_seg, f"{p} simulation {j}", dendrites)
            trial.attrs.update({"source_file": p.name, "source_simulation": j, "n_segments": n_seg})
            yield p, j, params, trial
            index += 1
        del data, sims


def import_neuronio(paths: Sequence[str | Path], out_dir: str | Path, *, variant: str = "nmda",
                    dendrites: bool = True, overwrite: bool = False, progress: bool = True) -> Path:
    """Convert published NeuronIO pickles into a neuroemu dataset at ``out_dir``.

    variant: which cell variant the files come from (recorded in the config). dendrites: keep the 639
    dendritic voltage traces (float16; about 7.7 MB per trial before compression). The output directory must
    not hold a dataset already unless ``overwrite`` (which deletes it first). Returns ``out_dir``.
    """
    paths = [Path(p) for p in paths]
    if not paths:
        raise DatasetError("import-neuronio: no input files given")
    for p in paths:
        if not p.is_file():
            raise DatasetError(f"{p}: file not found")
    out_dir = Path(out_dir)
    if (out_dir / MANIFEST_NAME).exists() or (out_dir / SHARDS_DIR).exists():
        if not overwrite:
            raise DatasetError(f"{out_dir}: already holds a dataset; choose another directory or overwrite it")
        shutil.rmtree(out_dir / SHARDS_DIR, ignore_errors=True)
        (out_dir / MANIFEST_NAME).unlink(missing_ok=True)
    source = {"kind": "neuronio", "files": [{"name": p.name, "sha256": file_sha256(p)} for p in paths],
              "spike_times": "re-detected from somaVoltageHighRes (reference 2.4 rule) where present"}
    writer = None
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(unit="trial", desc="import")
    n_seg = duration = None
    n = 0
    config = None
    try:
        for p, j, params, trial in iter_neuronio_trials(paths, dendrites):
            file_n_seg = int(trial.attrs["n_segments"])
            if writer is None:
                n_seg, duration = file_n_seg, trial.duration_ms
                config = DatasetConfig(cell={"kind": "l5pc", "variant": variant}, generator=None, n_trials=0,
                                       duration_ms=duration, seed=trial.seed,
                                       record_dendrites=trial.dend_v_1ms is not None, source=source)
                new_writer = DatasetWriter(out_dir, config, n_exc=n_seg, n_inh=n_seg,
                                           segments=segment_table_from_params(params))
                new_writer.prepare()
                writer = new_writer
            if file_n_seg != n_seg:
                raise DatasetError(f"{p}: {file_n_seg} segments, the first file had {n_seg}")
            if trial.duration_ms != duration:
                raise DatasetError(f"{p} simulation {j}: {trial.duration_ms} ms, the first trial had {duration}")
            if dendrites and config.record_dendrites != (trial.dend_v_1ms is not None):
                raise DatasetError(f"{p} simulation {j}: dendritic voltages present in some files only")
            n += 1
            writer.config = config.replace(n_trials=n)
            writer.write(trial)
            if bar is not None:
                bar.update(1)
    finally:
        if writer is not None:
            writer.close()
        if bar is not None:
            bar.close()
    if writer is None:
        raise DatasetError(f"{', '.join(str(p) for p in paths)}: no simulations found")
    return out_dir
