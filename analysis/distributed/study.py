"""Many runs together: every run's graph computed in one go, then a study table (one row per particle per
bin) as Parquet and CSV, each run's drift and COM tables, and the cross-run figures.

Inputs are run files (condition = the file's stem unless a study TOML says otherwise) or one study TOML::

    [[run]]
    path = "runs/fresh.h5"      # relative to the TOML file
    condition = "fresh"
"""

from __future__ import annotations

import csv
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

import numpy as np

from operascope.analysis.distributed.graph import AnalysisSettings, RunResult, run_graph
from operascope.analysis.distributed.runner import compute
from operascope.analysis.distributed.study_figures import plot_condition_summary, plot_study_com_vs_soc
from operascope.analysis.json_safe import json_safe

log = logging.getLogger(__name__)

TABLE_COLUMNS = ("run", "condition", "particle", "bin", "time_s", "capacity_mAh_g", "soc", "com_distance_nm",
                 "mean_differential", "unreacted_fraction", "drift_dx_nm", "drift_dy_nm")


@dataclass(frozen=True)
class StudyRun:
    """A run of a study and its ageing condition."""

    path: Path
    condition: str

    @property
    def name(self) -> str:
        return self.path.stem


def load_study_toml(path: str | Path) -> list[StudyRun]:
    """The runs listed in a study TOML (``[[run]]`` tables with ``path`` and ``condition``)."""
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{p}: study file cannot be read ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{p}: not valid TOML ({exc})") from None
    entries = data.get("run")
    if not isinstance(entries, list) or not entries:
        raise ValueError(f"{p}: a study TOML needs [[run]] tables with path = \"...\" and condition = \"...\"")
    runs = []
    for i, entry in enumerate(entries, 1):
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
            raise ValueError(f"{p}: [[run]] number {i} needs path = \"<run file>\"")
        condition = entry.get("condition", Path(entry["path"]).stem)
        if not isinstance(condition, str) or not condition:
            raise ValueError(f"{p}: [[run]] number {i}: condition must be a non-empty string")
        run_path = Path(entry["path"])
        runs.append(StudyRun(run_path if run_path.is_absolute() else p.parent / run_path, condition))
    return runs


def study_runs(inputs: Sequence[str | Path]) -> list[StudyRun]:
    """Runs from the command line: one study TOML, or run files (condition = file stem)."""
    paths = [Path(i) for i in inputs]
    if len(paths) == 1 and paths[0].suffix.lower() == ".toml":
        runs = load_study_toml(paths[0])
    elif any(p.suffix.lower() == ".toml" for p in paths):
        raise ValueError("give either one study TOML or run files (.h5), not both")
    else:
        runs = [StudyRun(p, p.stem) for p in paths]
    for run in runs:
        if not run.path.exists():
            raise FileNotFoundError(f"{run.path}: file does not exist")
    names = [r.name for r in runs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"two runs share a file name ({', '.join(duplicates)}); "
                         "rename one so the table can tell them apart")
    return runs


def study_table(runs: Sequence[StudyRun], results: Sequence[RunResult]) -> dict[str, np.ndarray]:
    """One row per particle per bin of every run (columns :data:`TABLE_COLUMNS`)."""
    columns: dict[str, list[np.ndarray]] = {c: [] for c in TABLE_COLUMNS}
    for run, result in zip(runs, results):
        plan = result.plan
        n = plan.n_frames
        for j, particle in enumerate(plan.particles):
            columns["run"].append(np.full(n, run.name, dtype=object))
            columns["condition"].append(np.full(n, run.condition, dtype=object))
            columns["particle"].append(np.full(n, particle.label, dtype=np.int64))
            columns["bin"].append(np.arange(n, dtype=np.int64))
            columns["time_s"].append(plan.time_s)
            columns["capacity_mAh_g"].append(plan.capacity_mAh_g)
            columns["soc"].append(plan.soc)
            columns["com_distance_nm"].append(result.com_nm[j])
            columns["mean_differential"].append(result.mean_differential[j])
            columns["unreacted_fraction"].append(result.unreacted_fraction[j])
            columns["drift_dx_nm"].append(plan.dx_px * plan.pixel_size_nm)
            columns["drift_dy_nm"].append(plan.dy_px * plan.pixel_size_nm)
    return {c: (np.concatenate(v) if v else np.array([], dtype=object if c in ("run", "condition") else float))
            for c, v in columns.items()}


def write_table(table: dict[str, np.ndarray], parquet_path: Path, csv_path: Path) -> None:
    """The study table as Parquet (pyarrow) and CSV, each written to a temporary file then renamed."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrow = pa.table({c: pa.array(list(v)) if v.dtype == object else pa.array(v) for c, v in table.items()})
    tmp = parquet_path.with_name(parquet_path.name + ".part")
    pq.write_table(arrow, tmp)
    os.replace(tmp, parquet_path)
    tmp = csv_path.with_name(csv_path.name + ".part")
    with open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(table.keys())
        writer.writerows(zip(*[[_cell(x) for x in v] for v in table.values()]))
    os.replace(tmp, csv_path)


def _cell(value: Any) -> str:
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.6g}"
    return str(value)


def _run_summary(run: StudyRun, result: RunResult) -> dict[str, Any]:
    plan = result.plan
    particles = []
    for j, p in enumerate(plan.particles):
        com = result.com_nm[j]
        finite = np.isfinite(com)
        particles.append({"label": p.label, "area_px": p.area_px,
                          "com_distance_nm_mean": float(com[finite].mean()) if finite.any() else float("nan"),
                          "com_distance_nm_max": float(com[finite].max()) if finite.any() else float("nan")})
    return {"run": str(run.path), "condition": run.condition, "n_frames": plan.n_frames,
            "pixel_size_nm": plan.pixel_size_nm, "mask_threshold": plan.mask_threshold,
            "n_drift_fits_ok": int(plan.fit_ok.sum()), "particles": particles, "warnings": list(plan.warnings)}


def analyze_study(runs: Sequence[StudyRun], out_dir: str | Path, settings: AnalysisSettings | None = None,
                  workers: int | None = None, scheduler: str | None = None, progress: bool = False,
                  client: Any = None, cache_dir: str | Path | None = "default") -> dict[str, Any]:
    """Analyse every run in parallel; write study.parquet, study.csv, study.json and the two figures to ``out_dir``.

    ``cache_dir``: chunk results are reused from / stored in it ("default": ``out_dir``/cache; None: no cache).
    """
    if not runs:
        raise ValueError("a study needs at least one run file")
    settings = settings or AnalysisSettings()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cache = out / "cache" if cache_dir == "default" else cache_dir
    results = compute([run_graph(r.path, settings, cache) for r in runs], workers, scheduler, progress, client)
    table = study_table(runs, results)
    write_table(table, out / "study.parquet", out / "study.csv")
    figures = [plot_study_com_vs_soc(out / "study_com_vs_soc.png", table),
               plot_condition_summary(out / "study_condition_summary.png", table)]
    summary = {"n_runs": len(runs), "n_rows": int(table["run"].size), "settings": settings.__dict__,
               "n_chunks": sum(r.n_chunks for r in results),
               "n_chunks_from_cache": sum(r.n_chunks_cached for r in results),
               "runs": [_run_summary(r, res) for r, res in zip(runs, results)],
               "files": ["study.parquet", "study.csv"] + [f.name for f in figures]}
    tmp = out / "study.json.part"
    tmp.write_text(json.dumps(json_safe(summary), indent=2))
    os.replace(tmp, out / "study.json")
    return json_safe(summary)
