"""Scale benchmark: the whole workflow through qgis_process on a national-size grid, time and peak RSS per step.

usage: python bench/bench_scale.py [--cells 10000] [--points 1000000] [--fields 40] [--epochs 3]
                                   [--gdal-cache MB] [--only STEP,...] [--out DIR]

A seeded (42) synthetic survey is generated first: ``--points`` uniform sample points with ``--fields`` log-normal
element fields (every fourth field carries a halo around the deposits, the others are background with a regional
trend), random-walk faults, and deposits lying mostly near the faults (a quarter of them marked ``split = test``).
It is written as one GeoPackage (layers ``samples``, ``faults``, ``deposits``, ``deposits_train``) in EPSG:32650.
Then each step runs through ``scripts/qgis_process.sh``, one process per step, as a user would run them:

  idwgridding (log10, 12 nearest) on ``--cells`` × ``--cells`` cells of 50 m → evidencestack (z-score) →
  elementscreening (the selected bands go on) → traininglabels (patch 32) → trainmodel (LeNet, ``--epochs``) →
  predict → evaluate (held-out deposits) → anomalyclasses

Each step's wall time and peak RSS are printed against the target (every step under 3 GB). The peak RSS is the
``ru_maxrss`` that ``os.wait4`` reports for the step's process tree (the shell script and the ``qgis_process``
it runs; the larger of the two). This launcher imports nothing but the standard library and makes the survey in
a child of its own, so that its own RSS (which Linux carries into a child's peak across fork and exec) stays
small; it is printed. ``--gdal-cache`` sets ``GDAL_CACHEMAX`` (MB) for the steps; by default each step caps the
block cache of rasterio's GDAL at 256 MB (GDAL's own default, 5 % of the machine's memory, fills up when large
rasters are read window by window).

A benchmark, not a test: it exits 0 whether the targets are met or not. The full size (10^8 cells × 40 fields
from 10^6 points) takes long; try ``--cells 2000 --points 100000 --fields 10`` first. Inputs, outputs and each
step's log (``logs/<step>.log``) go to ``--out`` (default: bench_output/scale under the repo, git-ignored).
``--only`` reruns some steps on the survey and outputs an earlier run left in ``--out`` (same size options).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QGIS_PROCESS = ROOT / "scripts" / "qgis_process.sh"

SEED = 42
EPSG = 32650
X0, Y0 = 400000.0, 3300000.0
PIXEL_M = 50.0
TARGET_BYTES = 3 * 10**9  # 3 GB
HALO_EVERY = 4  # every HALO_EVERY-th field carries a deposit halo
CELLS_PER_DEPOSIT = 500_000  # one deposit per this many cells (200 on 10^8 cells), at least MIN_DEPOSITS
MIN_DEPOSITS = 30
HELD_OUT_SHARE = 0.25
CSV_CHUNK = 100_000  # sample rows generated and written at a time


# ------------------------------------------------------------------------------------------ the survey (child)


def field_names(fields: int) -> list[str]:
    return [f"E{j:02d}" for j in range(fields)]


def make_survey(folder: Path, cells: int, points: int, fields: int) -> None:
    """Write survey.gpkg: samples (through a CSV and ogr2ogr, fast for 10^6 rows), faults and deposits."""
    import numpy as np
    from scipy.spatial import cKDTree

    rng = np.random.default_rng(SEED)
    side = cells * PIXEL_M
    faults = random_faults(rng, side, count=max(4, cells // 500))
    deposits = deposits_near(rng, faults, side, max(MIN_DEPOSITS, cells * cells // CELLS_PER_DEPOSIT))
    held_out = rng.permutation(len(deposits)) < round(HELD_OUT_SHARE * len(deposits))
    radius = rng.uniform(10, 30, len(deposits)) * PIXEL_M  # halo radius of each deposit
    strength = rng.uniform(0.6, 1.2, len(deposits))
    tree = cKDTree(deposits)
    names = field_names(fields)
    medians = 10 ** rng.uniform(-1, 3, fields)
    csv = folder / "samples.csv"
    with open(csv, "w") as out:
        out.write(",".join(["x", "y", *names]) + "\n")
        for start in range(0, points, CSV_CHUNK):
            n = min(CSV_CHUNK, points - start)
            xy = rng.uniform(0, side, (n, 2)) + np.array([X0, Y0])
            trend = 0.2 * np.sin(2 * np.pi * (xy[:, 0] - X0) / side) * np.cos(np.pi * (xy[:, 1] - Y0) / side)
            distance, index = tree.query(xy, k=min(4, len(deposits)))
            halo = (strength[index] * np.exp(-((distance / radius[index]) ** 2))).sum(axis=1)
            log10 = rng.normal(0.0, 0.25, (n, fields)) + np.log10(medians) + trend[:, None]
            log10[:, ::HALO_EVERY] += halo[:, None]
            np.savetxt(out, np.column_stack([xy, 10**log10]), fmt="%.3f,%.3f" + ",%.6g" * fields)
    csv.with_suffix(".csvt").write_text(",".join(["Real"] * (2 + fields)) + "\n")
    gpkg = folder / "survey.gpkg"
    subprocess.run(["ogr2ogr", "-q", "-f", "GPKG", str(gpkg), str(csv), "-nln", "samples", "-a_srs",
                    f"EPSG:{EPSG}", "-oo", "X_POSSIBLE_NAMES=x", "-oo", "Y_POSSIBLE_NAMES=y",
                    "-oo", "KEEP_GEOM_COLUMNS=NO"], check=True)
    csv.unlink()
    csv.with_suffix(".csvt").unlink()
    write_small_layers(gpkg, faults, deposits, held_out)


def random_faults(rng, side: float, count: int) -> list:
    """Random-walk polylines of 200 m steps across the square, headings around one regional strike."""
    import numpy as np

    strike = rng.uniform(0, np.pi)
    faults = []
    for _ in range(count):
        heading = strike + rng.normal(0, 0.3)
        steps = int(rng.uniform(0.2, 0.8) * side / 200.0) + 2
        headings = heading + np.cumsum(rng.normal(0, 0.05, steps))
        path = np.cumsum(200.0 * np.column_stack([np.cos(headings), np.sin(headings)]), axis=0)
        path += rng.uniform(0.1, 0.9, 2) * side - path[steps // 2]
        inside = np.all((path > 0) & (path < side), axis=1)
        if inside.sum() >= 2:
            faults.append(path[inside] + (X0, Y0))
    return faults


def deposits_near(rng, faults: list, side: float, count: int):
    """Deposits: 85 % within a few hundred metres of a fault vertex, the rest anywhere; 5 cells from the edge."""
    import numpy as np

    vertices = np.concatenate(faults)
    near = vertices[rng.integers(0, len(vertices), count)] + rng.normal(0, 250.0, (count, 2))
    anywhere = rng.uniform(0, side, (count, 2)) + np.array([X0, Y0])
    chosen = np.where((rng.random(count) < 0.85)[:, None], near, anywhere)
    margin = 5 * PIXEL_M
    return np.clip(chosen, (X0 + margin, Y0 + margin), (X0 + side - margin, Y0 + side - margin))


def write_small_layers(gpkg: Path, faults: list, deposits, held_out) -> None:
    from osgeo import ogr, osr

    source = ogr.Open(str(gpkg), update=1)
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(EPSG)
    layer = source.CreateLayer("faults", srs, ogr.wkbLineString)
    for path in faults:
        line = ogr.Geometry(ogr.wkbLineString)
        for x, y in path:
            line.AddPoint_2D(float(x), float(y))
        feature = ogr.Feature(layer.GetLayerDefn())
        feature.SetGeometry(line)
        layer.CreateFeature(feature)
    for name, keep in (("deposits", None), ("deposits_train", False)):
        layer = source.CreateLayer(name, srs, ogr.wkbPoint)
        layer.CreateField(ogr.FieldDefn("split", ogr.OFTString))
        for (x, y), test in zip(deposits, held_out):
            if keep is not None and test != keep:
                continue
            feature = ogr.Feature(layer.GetLayerDefn())
            feature.SetField("split", "test" if test else "train")
            feature.SetGeometry(ogr.CreateGeometryFromWkt(f"POINT ({x!r} {y!r})"))
            layer.CreateFeature(feature)
    source = None


# ------------------------------------------------------------------------------------------------ the steps


@dataclass
class Result:
    step: str
    seconds: float
    peak_bytes: int
    returncode: int


def steps(out: Path, cells: int, fields: int, epochs: int) -> list[tuple[str, list[str]]]:
    """(step, qgis_process arguments) in the order they run; each step reads what the one before wrote."""
    gpkg = out / "survey.gpkg"
    side = cells * PIXEL_M
    extent = f"{X0:.0f},{X0 + side:.0f},{Y0:.0f},{Y0 + side:.0f} [EPSG:{EPSG}]"
    train, every = f"{gpkg}|layername=deposits_train", f"{gpkg}|layername=deposits"
    selected = out / "selected_stack.tif"

    def run(algorithm: str, *params: str) -> list[str]:
        return ["run", f"deepprospect:{algorithm}", "--", *params]

    return [
        ("idwgridding", run("idwgridding", f"INPUT={gpkg}|layername=samples", "FIELDS=" + ";".join(field_names(fields)),
                            "LOG10=true", f"EXTENT={extent}", f"PIXEL_SIZE={PIXEL_M}", f"OUTPUT={out / 'grids.tif'}")),
        ("evidencestack", run("evidencestack", f"INPUTS={out / 'grids.tif'}", "NORMALISE=z-score",
                              f"OUTPUT={out / 'stack.tif'}")),
        ("elementscreening", run("elementscreening", f"STACK={out / 'stack.tif'}", f"DEPOSITS={train}",
                                 f"SEED={SEED}", f"OUTPUT={out / 'screening.csv'}", f"SELECTED_STACK={selected}",
                                 f"CHART={out / 'screening.png'}")),
        ("traininglabels", run("traininglabels", f"STACK={selected}", f"DEPOSITS={train}", "PATCH_SIZE=32",
                               f"SEED={SEED}", f"OUTPUT={out / 'training_set.npz'}",
                               f"SAMPLES={out / 'training_samples.gpkg'}")),
        ("trainmodel", run("trainmodel", f"TRAINING_SET={out / 'training_set.npz'}", "ARCHITECTURE=lenet",
                           f"EPOCHS={epochs}", "DEVICE=cpu", f"SEED={SEED}", f"OUTPUT={out / 'model.onnx'}",
                           f"CURVES={out / 'curves.png'}")),
        ("predict", run("predict", f"MODEL={out / 'model.onnx'}", f"STACK={selected}", "DEVICE=cpu",
                        f"OUTPUT={out / 'prospectivity.tif'}")),
        ("evaluate", run("evaluate", f"MAP={out / 'prospectivity.tif'}", f"DEPOSITS={every}", "SPLIT_FIELD=split",
                         "HELD_OUT_VALUES=test", f"OUTPUT={out / 'evaluation.csv'}",
                         f"REPORT={out / 'evaluation.html'}")),
        ("anomalyclasses", run("anomalyclasses", f"MAP={out / 'prospectivity.tif'}", f"DEPOSITS={every}",
                               f"OUTPUT={out / 'anomaly_classes.tif'}", f"CLASS_TABLE={out / 'anomaly_classes.csv'}",
                               f"TARGETS={out / 'targets.gpkg'}")),
    ]


def measured(command: list[str], log: Path, env: dict[str, str]) -> tuple[float, int, int]:
    """Run ``command`` with stdout and stderr to ``log``: wall seconds, peak RSS (bytes) of its tree, exit code.

    ``os.wait4`` reports the child's rusage including its waited-for descendants, and ``ru_maxrss`` (KiB on
    Linux) is the largest of them.
    """
    start = time.perf_counter()
    with open(log, "w") as sink:
        child = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait for it again
    return seconds, usage.ru_maxrss * 1024, child.returncode


def reported(out: Path, step: str, key: str) -> str:
    """The value qgis_process printed for output ``key`` in ``step``'s log ("?" when absent)."""
    log = out / "logs" / f"{step}.log"
    lines = log.read_text(errors="replace").splitlines() if log.exists() else []
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith(f"{key}:")), "?")


def fmt_mib(size: int) -> str:
    return f"{size / 2**20:,.0f}"


def print_table(results: list[Result], skipped: list[str]) -> None:
    print(f"\n{'step':18}{'time (s)':>10}{'peak RSS (MiB)':>16}  target < 3 GB ({fmt_mib(TARGET_BYTES)} MiB)")
    for r in results:
        verdict = "met" if r.peak_bytes < TARGET_BYTES else "NOT met"
        if r.returncode:
            verdict = f"failed (exit {r.returncode}): see logs/{r.step}.log"
        print(f"{r.step:18}{r.seconds:>10.1f}{fmt_mib(r.peak_bytes):>16}  {verdict}")
    for step in skipped:
        print(f"{step:18}{'—':>10}{'—':>16}  not run (an earlier step failed)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=10_000, help="cells per side of the grid (50 m cells)")
    parser.add_argument("--points", type=int, default=1_000_000, help="sample points")
    parser.add_argument("--fields", type=int, default=40, help="element fields per sample")
    parser.add_argument("--epochs", type=int, default=3, help="LeNet training epochs")
    parser.add_argument("--gdal-cache", type=int, help="GDAL_CACHEMAX for the steps (MB; default: a 256 MB cap)")
    parser.add_argument("--only", help="rerun only these steps (comma-separated) on an earlier run's --out")
    parser.add_argument("--out", type=Path, default=ROOT / "bench_output" / "scale")
    parser.add_argument("--make-survey", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    out = args.out.resolve()
    if args.make_survey:
        make_survey(out, args.cells, args.points, args.fields)
        return 0

    if out.exists() and not args.only:
        shutil.rmtree(out)
    (out / "logs").mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    if args.gdal_cache is not None:
        env["GDAL_CACHEMAX"] = str(args.gdal_cache)
    print(f"Survey: {args.points:,} points × {args.fields} fields, grid {args.cells:,} × {args.cells:,} cells "
          f"({args.cells**2:,} cells of {PIXEL_M:.0f} m; a float32 stack of {args.fields} bands is "
          f"{args.fields * args.cells**2 * 4 / 2**30:.1f} GiB), LeNet {args.epochs} epochs, GDAL_CACHEMAX "
          f"{env.get('GDAL_CACHEMAX', '256 MB cap')}; output in {out}")
    if not args.only:
        make = [sys.executable, __file__, "--make-survey", "--cells", str(args.cells), "--points",
                str(args.points), "--fields", str(args.fields), "--out", str(out)]
        seconds, peak, code = measured(make, out / "logs" / "survey.log", env)
        print(f"survey generated in {seconds:.1f} s, peak RSS {fmt_mib(peak)} MiB (not a step of the workflow)")
        if code:
            print(f"making the survey failed (exit {code}): see {out / 'logs' / 'survey.log'}")
            return 0
    print(f"this launcher's own peak RSS: {fmt_mib(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)} MiB")

    results: list[Result] = []
    plan = steps(out, args.cells, args.fields, args.epochs)
    if args.only:
        wanted = args.only.split(",")
        unknown = set(wanted) - {step for step, _ in plan}
        if unknown:
            parser.error(f"unknown step(s) {', '.join(sorted(unknown))}; the steps: {', '.join(s for s, _ in plan)}")
        plan = [(step, arguments) for step, arguments in plan if step in wanted]
    for step, arguments in plan:
        print(f"running {step}...", flush=True)
        seconds, peak, code = measured([str(QGIS_PROCESS), *arguments], out / "logs" / f"{step}.log", env)
        results.append(Result(step, seconds, peak, code))
        if code:
            break
    skipped = [step for step, _ in plan[len(results):]]
    print_table(results, skipped)
    print(f"\nscreening kept {reported(out, 'elementscreening', 'SELECTED_COUNT')} of {args.fields} bands "
          f"({reported(out, 'elementscreening', 'SELECTED_BANDS')}); LeNet test AUC "
          f"{reported(out, 'trainmodel', 'TEST_AUC')}; map ROC AUC on held-out deposits "
          f"{reported(out, 'evaluate', 'ROC_AUC')}")
    done = [r for r in results if not r.returncode]
    under = sum(r.peak_bytes < TARGET_BYTES for r in done)
    largest = max(results, key=lambda r: r.peak_bytes)
    print(f"\n{len(done)} of {len(plan)} steps ran, {under} of them under 3 GB; largest peak RSS "
          f"{fmt_mib(largest.peak_bytes)} MiB ({largest.step}); total {sum(r.seconds for r in results):.0f} s. "
          f"Target (all {len(plan)} steps run, each under 3 GB): "
          f"{'met' if under == len(plan) else 'not met'}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
