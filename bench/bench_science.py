"""Do the deep models beat the random forest on spatially held-out deposits? One table over real and demo data.

Runs the reference spatial cross-validation protocol (core.scoring.spatialcv defaults: 5 k-means folds on the deposits,
3 × 3 positive cells, as many random negatives farther than 2 km from every deposit, 5 draws, a 2 km gap) with
the same folds, cells and draws for every model, on:

* Kolari IOCG (17 occurrences; 22 till elements by IDW + fault distance, 500 m cells) — the reference dataset;
* Murchison gold (255 deposits; fault distance and density, greenstone, contact distance, 1 km cells), all
  deposits and a seeded 20-deposit subsample (few deposits, the usual case);
* the demo survey (24 deposits, 30 barren holes; 18 elements + fault distance and density, 100 m cells).

Prints per dataset and model: spatial-CV ROC AUC mean ± std over folds × draws, its difference to the random
forest, out-of-fold capture of deposits in the top 5 / 15 / 30 % of the area and the deposit-vs-area AUC.
The goal: the default deep model's AUC ≥ the forest's + 0.03 and at least the forest's capture at 15 %.

    .venv/bin/python bench/bench_science.py                      # default networks, RF, LR, every dataset
    .venv/bin/python bench/bench_science.py --models all --datasets kolari
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import science_data
import torch
from deepprospect.core.scoring.spatialcv import CvSettings, run_spatial_cv
from deepprospect.models.cv_models import CV_MODELS, DEFAULT_MODELS, cv_ensembles, cv_fit_maps

DATASETS = {
    "kolari": science_data.kolari,
    "kolari_pipeline": science_data.kolari_pipeline,
    "murchison": science_data.murchison,
    "murchison20": lambda: science_data.murchison(subsample=20, seed=0),
    "demo": science_data.demo,
}
GOAL_MARGIN = 0.03


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS),
                        help=f"keys among {', '.join(k for k, _ in CV_MODELS)}, or 'all'")
    parser.add_argument("--repeats", type=int, default=CvSettings.repeats)
    parser.add_argument("--epochs", type=int, default=0, help="epochs per network (0 = each recipe's own)")
    arguments = parser.parse_args()
    keys = [k for k, _ in CV_MODELS] if arguments.models == ["all"] else arguments.models
    torch.set_num_threads(1)  # small networks: threads cost more than they give, and runs stay comparable
    deep = keys[0]
    print(f"Spatial CV (reference protocol, {arguments.repeats} draws); the default deep model is {deep}.")
    lines = []
    for name in arguments.datasets:
        started = time.perf_counter()
        dataset = DATASETS[name]()
        fit_maps, _ = cv_fit_maps(keys, arguments.epochs)
        result = run_spatial_cv(dataset.stack, dataset.grid, dataset.deposit_xy, fit_maps,
                                CvSettings(repeats=arguments.repeats), study_area=dataset.study_area,
                                barren_xy=dataset.barren_xy, ensembles=cv_ensembles(["rank_all"], keys))
        rows = {row["model"]: row for row in result.summary()}
        forest = rows.get("random_forest")
        header = (f"\n{dataset.name}: {len(result.deposit_fold)} deposits, {len(dataset.band_names)} bands, "
                  f"{int(dataset.study_area.sum())} cells, folds of {[c['deposits'] for c in result.fold_counts]} "
                  f"deposits ({time.perf_counter() - started:.0f} s)")
        print(header)
        print(f"{'model':<28} {'AUC mean ± std':>16} {'Δ vs RF':>8} {'top 5/15/30 %':>16} {'dep-area AUC':>12}  "
              "AUC per fold")
        for model, row in rows.items():
            delta = "" if forest is None else f"{row['auc_mean'] - forest['auc_mean']:+.3f}"
            capture = "/".join(f"{v:.2f}" for v in row["capture"].values())
            folds = " ".join(f"{v:.2f}" for v in row["auc_per_fold"])
            print(f"{model:<28} {row['auc_mean']:>8.3f} ± {row['auc_std']:.3f} {delta:>8} {capture:>16} "
                  f"{row['area_auc']:>12.3f}  {folds}")
        if forest is not None and deep in rows:
            gain = rows[deep]["auc_mean"] - forest["auc_mean"]
            capture_gain = rows[deep]["capture"]["top_15"] - forest["capture"]["top_15"]
            met = gain >= GOAL_MARGIN and capture_gain >= 0
            lines.append(f"{dataset.name}: {deep} − RF = {gain:+.3f} AUC, {capture_gain:+.2f} capture at 15 % → "
                         f"goal {'met' if met else 'NOT met'}")
    if lines:
        print("\nGoal (deep AUC ≥ RF + 0.03 and capture at 15 % ≥ RF's):")
        print("\n".join(lines))
    print(f"\n(numpy {np.__version__}, torch {torch.__version__}; {torch.get_num_threads()} torch thread)")


if __name__ == "__main__":
    main()
