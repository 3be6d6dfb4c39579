"""Integrity checks: one shard (:func:`verify_shard`) or a whole dataset (:func:`verify_dataset`)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


from neuroemu.dataset.format import SHARDS_DIR, TMP_SUFFIX, DatasetConfig, file_sha256, shard_index, shard_relpath
from neuroemu.dataset.manifest import load_manifest
from neuroemu.dataset.shard import check_trial, read_shard, shard_summary
from neuroemu.errors import DatasetError


def verify_shard(path: str | Path, *, expected_sha256: str | None = None, expected_config_json: str | None = None,
                 expected_index: int | None = None, n_exc: int | None = None,
                 n_inh: int | None = None) -> dict[str, Any]:
    """Check one shard completely; return its manifest-style summary or raise :class:`DatasetError` naming it.

    Checks: the file hash (when ``expected_sha256`` is given), that HDF5 opens, every array's content hash,
    shapes and channel ranges, and (when given) the trial index, channel counts and the config it was made with.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: shard file is missing")
    sha = file_sha256(path)
    if expected_sha256 is not None and sha != expected_sha256:
        raise DatasetError(f"{path}: file hash differs from the manifest (corrupt or modified shard)")
    trial = read_shard(path, dend=True, check=True)
    a = trial.attrs
    if expected_index is not None and trial.index != int(expected_index):
        raise DatasetError(f"{path}: holds trial {trial.index}, expected trial {expected_index}")
    if expected_config_json is not None and a.get("config_json") != expected_config_json:
        raise DatasetError(f"{path}: was made with a different dataset config")
    for name, want in (("n_exc", n_exc), ("n_inh", n_inh)):
        if want is not None and int(a.get(name, -1)) != int(want):
            raise DatasetError(f"{path}: {name} = {a.get(name)}, expected {want}")
    check_trial(trial, int(a.get("n_exc", 0)), int(a.get("n_inh", 0)), trial.duration_ms, where=str(path))
    return shard_summary(path, trial, sha)


@dataclass
class VerifyReport:
    """Outcome of :func:`verify_dataset`."""

    path: Path
    n_expected: int
    ok: list[int] = field(default_factory=list)
    missing: list[int] = field(default_factory=list)
    bad: list[tuple[str, str]] = field(default_factory=list)   # (shard path, reason)
    unlisted: list[str] = field(default_factory=list)          # shard files the manifest does not list
    leftovers: list[str] = field(default_factory=list)         # *.tmp files of an interrupted run

    @property
    def passed(self) -> bool:
        """True when every shard the manifest lists is intact (an unfinished dataset can pass)."""
        return not self.bad

    @property
    def complete(self) -> bool:
        """True when no trial is missing."""
        return not self.missing

    def summary(self) -> str:
        """A human-readable report."""
        lines = [f"{self.path}: {len(self.ok)}/{self.n_expected} trials verified"]
        for p, why in self.bad:
            lines.append(f"  BAD  {p}: {why}")
        if self.missing:
            shown = ", ".join(str(i) for i in self.missing[:20]) + (" ..." if len(self.missing) > 20 else "")
            lines.append(f"  missing trials ({len(self.missing)}): {shown} -- rerun the same simulate command "
                         "to finish them")
        if self.unlisted:
            lines.append(f"  {len(self.unlisted)} shard file(s) not in the manifest (a rerun adopts them)")
        if self.leftovers:
            lines.append(f"  {len(self.leftovers)} unfinished .tmp file(s) (a rerun removes them)")
        if not self.passed:
            lines.append("FAILED")
        else:
            lines.append("OK" if self.complete else f"OK (incomplete: {len(self.missing)} trial(s) to simulate)")
        return "\n".join(lines)


def verify_dataset(path: str | Path, progress: bool = False) -> VerifyReport:
    """Check every shard of a dataset against the manifest (file hash) and its own content hashes."""
    path = Path(path)
    m = load_manifest(path)
    n_expected = int(m["config"].get("n_trials", len(m["shards"])))
    rep = VerifyReport(path=path, n_expected=n_expected)
    try:
        cfg_json = DatasetConfig.from_dict(m["config"]).trial_config_json()
    except Exception as e:  # noqa: BLE001 - a manifest from an incompatible version
        raise DatasetError(f"{path / 'dataset.json'}: config cannot be read ({e})") from None
    listed = {}
    for e in m["shards"]:
        listed[int(e["index"])] = e
    entries = sorted(listed.items())
    it = entries
    if progress:
        from tqdm import tqdm

        it = tqdm(entries, unit="shard", desc="verify")
    for idx, e in it:
        p = path / e.get("file", shard_relpath(idx))
        try:
            verify_shard(p, expected_sha256=e.get("sha256"), expected_config_json=cfg_json, expected_index=idx,
                         n_exc=int(m["n_exc"]), n_inh=int(m["n_inh"]))
            rep.ok.append(idx)
        except DatasetError as err:
            msg = str(err)
            prefix = f"{p}: "
            rep.bad.append((str(p), msg[len(prefix):] if msg.startswith(prefix) else msg))
    bad_idx = {shard_index(Path(p).name) for p, _ in rep.bad}
    rep.missing = [i for i in range(n_expected) if i not in listed and i not in bad_idx]
    sdir = path / SHARDS_DIR
    if sdir.is_dir():
        for p in sorted(sdir.iterdir()):
            if p.name.endswith(TMP_SUFFIX):
                rep.leftovers.append(str(p))
            else:
                idx = shard_index(p.name)
                if idx is not None and idx not in listed:
                    rep.unlisted.append(str(p))
    return rep
