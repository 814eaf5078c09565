"""deepprospect:spatialcv — leave-one-fold-out spatial cross-validation of networks and baselines on one stack."""

from __future__ import annotations

import dataclasses
from contextlib import closing

from qgis.core import (
    NULL,
    QgsFeatureRequest,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterField,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
)

from ..compat import SOURCE_POINT
from ..core.errors import InputError
from ..core.evidence.screening import ScreeningSettings
from ..core.evidence.stack import read_stack_recipe
from ..core.raster_io import read_raster
from ..core.scoring.cv_report import write_cv_outputs
from ..core.scoring.spatialcv import FOLD_METHODS, CvSettings, automatic_gap, run_spatial_cv, screening_selector
from ..models.cv_models import CV_MODELS, DEFAULT_MODELS, ENSEMBLE_CHOICES, cv_ensembles, cv_fit_maps
from .base import DOUBLE, INT, DeepProspectAlgorithm
from .parameters import explain, explained, name_list, named_enum
from .qgis_io import crs_from_string, feedback_callbacks, point_parameter, projected_raster
from .styles import StyleOnLoad
from .vector_io import add_study_area_parameters, read_study_area


class SpatialCrossValidation(DeepProspectAlgorithm):
    """Score models on spatially held-out deposits: the figure that says what to expect in unexplored ground."""

    STACK, DEPOSITS, BARREN, FOLD_METHOD, FOLD_FIELD = "STACK", "DEPOSITS", "BARREN", "FOLD_METHOD", "FOLD_FIELD"
    MODEL_TYPES, ENSEMBLES, OUTPUT, OUT_OF_FOLD, CHART = "MODEL_TYPES", "ENSEMBLES", "OUTPUT", "OUT_OF_FOLD", "CHART"
    REPORT, SCREEN = "REPORT", "SCREEN"
    NUMBERS = (
        ("FOLDS", "Number of folds (k-means clusters or blocks)", INT, CvSettings.n_folds, 2, False),
        ("GAP", "Gap between training and held-out cells (map units; −1 = automatic)", DOUBLE, -1.0, -1.0, False),
        ("REPEATS", "Repeats (negative draws)", INT, CvSettings.repeats, 1, False),
        ("POSITIVE_RADIUS", "Positive radius around each deposit (map units; 0 = 3 × 3 cells)", DOUBLE,
         CvSettings.positive_radius, 0.0, True),
        ("EXCLUSION_BUFFER", "Negatives farther than this from every deposit (map units)", DOUBLE,
         CvSettings.exclusion_buffer, 0.0, True),
        ("NEGATIVE_RATIO", "Negatives per positive cell", DOUBLE, CvSettings.negative_ratio, 0.01, True),
        ("BLOCK_SIZE", "Block side for block folds (map units)", DOUBLE, 10000.0, 0.0, True),
        ("SEED", "Random seed (negative draws use SEED … SEED + repeats − 1)", INT, CvSettings.seed, 0, True),
        ("EPOCHS", "Epochs per network (0 = each network's own setting)", INT, 0, 0, True),
    )

    NAME = "spatialcv"
    DISPLAY_NAME = "Spatial cross-validation"
    GROUP = "models"
    TAGS = (
        "cross-validation", "spatial validation", "folds", "model comparison", "AUC", "k-means", "held-out deposits",
    )
    HELP_ANCHOR = "honest-scores-spatial-cross-validation"
    MEMORY_HINT = "Use fewer repeats (REPEATS) or a stack with fewer cells"
    HELP = (
        "Scores prospectivity models the way a geologist will use them: on deposits in ground the model has not "
        "seen. Random splits put a test deposit's neighbours in the training set and score 0.9–0.99 where spatial "
        "folds score 0.6–0.7, so use this to compare models and to choose settings.<br><br>"
        "<b>Cells</b>: stack cells inside the study area (optional) where every band has a value. "
        "<b>Positives</b>: the cells within the positive radius of each deposit (default the deposit cell and its 8 "
        "neighbours; a cell shared by two deposits belongs to the nearer). <b>Negatives</b>: as many cells as "
        "positives (ratio), drawn at random without replacement from cells farther than the exclusion buffer "
        "from every deposit, once per repeat (seeds SEED, SEED+1, …); barren points are negatives in every "
        "repeat.<br>"
        "<b>Folds</b>: k-means on the deposit coordinates (scikit-learn, 10 starts, random_state 0), a fold field "
        "of the deposits, or square blocks dealt to folds at random. Negatives take the fold of the nearest fold "
        "centre (or their block). For each fold, every model trains on the other folds' samples that are at least "
        "the <i>gap</i> from every held-out sample, then maps the study area. The automatic gap is the largest of "
        "the exclusion buffer, the widest model window's half-width and the reach of the evidence recorded in the "
        "stack (an IDW search radius or a density radius; IDW by nearest samples without a radius records none), "
        "which keeps training cells from sharing most of their evidence with held-out ones; give a gap to be "
        "stricter.<br>"
        "<b>Models</b>: the DeepProspect networks and the classical random forest and logistic regression, all on "
        "the same folds, cells and draws. Ensembles: the probability mean or the rank mean of the networks.<br>"
        "<b>Screening inside the folds</b> (optional): element screening by Z_AUC ('Element screening', p &lt; "
        "0.01) is repeated in every fold on the training folds' deposits and evidence only, and every model of "
        "the fold uses the bands it keeps — the honest score of a chain that screens before it trains (screening "
        "on every deposit first would let the held-out deposits choose the bands).<br>"
        "<b>Outputs</b>: a CSV with one row per model and fold (ROC AUC of the held-out positives against the "
        "held-out negatives, mean over repeats) and a summary row per model (mean ± std over folds × repeats; the "
        "share of deposits captured in the top 5 / 15 / 30 % of the study area and the deposit-vs-area AUC, each "
        "deposit scored by the model that did not see it); an out-of-fold map (each cell from the model trained "
        "without its fold, mean over repeats, one band per model); a chart; an HTML section for the study report.<br>"
        "With element-vector models and no recorded evidence reach, the defaults are the project's reference "
        "protocol (5 k-means folds, 2 km gap and buffer, 5 draws), so figures compare with published ones. "
        "Networks expect a normalised (z-score) stack; a warning says when it is not. <i>Epochs</i> overrides the "
        "networks' epochs (fewer: a rough check)."
    )

    def initAlgorithm(self, config=None):  # noqa: N802 - QGIS API name
        self.addParameter(QgsProcessingParameterRasterLayer(self.STACK, "Evidence stack"))
        point = [SOURCE_POINT]
        self.addParameter(QgsProcessingParameterFeatureSource(self.DEPOSITS, "Deposits", point))
        self.addParameter(QgsProcessingParameterFeatureSource(
            self.BARREN, "Barren points (drilled, no deposit)", point, optional=True))
        add_study_area_parameters(self, "Study area (optional)")
        self.addParameter(explained(
            named_enum(self.FOLD_METHOD, "Folds", FOLD_METHODS),
            "kmeans = k-means clusters of the deposits; field = a fold field of the deposits; blocks = square "
            "blocks."))
        self.addParameter(QgsProcessingParameterField(
            self.FOLD_FIELD, "Fold field of the deposits", parentLayerParameterName=self.DEPOSITS, optional=True))
        self.addParameter(explained(
            named_enum(self.MODEL_TYPES, "Models", [key for key, _ in CV_MODELS], list(DEFAULT_MODELS), multiple=True),
            name_list(CV_MODELS)))
        self.addParameter(explained(
            named_enum(self.ENSEMBLES, "Ensembles of the networks", [key for key, _ in ENSEMBLE_CHOICES],
                       [ENSEMBLE_CHOICES[0][0]], multiple=True, optional=True),
            name_list(ENSEMBLE_CHOICES)))
        self.addParameter(QgsProcessingParameterBoolean(
            self.SCREEN, "Repeat element screening (Z_AUC, p < 0.01) inside every fold", False))
        self.add_numbers(self.NUMBERS)
        explain(self, {
            "POSITIVE_RADIUS": "Cells within this distance of a deposit are positives; 0 takes the deposit cell and "
                               "its 8 neighbours.",
            "EXCLUSION_BUFFER": "Random negatives are drawn only farther than this from every deposit.",
            "NEGATIVE_RATIO": "Random negative cells drawn per positive cell in each repeat.",
            "BLOCK_SIZE": "Side of the square blocks when the folds are blocks.",
            "SEED": "Seed of the first negative draw; the next repeats use the following seeds.",
            "EPOCHS": "Overrides every network's epochs (fewer for a quick, rough check); 0 keeps each network's own.",
        })
        self.addParameter(QgsProcessingParameterFileDestination(
            self.OUTPUT, "Scores per fold and model", "CSV files (*.csv)"))
        self.addParameter(QgsProcessingParameterRasterDestination(
            self.OUT_OF_FOLD, "Out-of-fold prospectivity", optional=True))
        self.addParameter(QgsProcessingParameterFileDestination(
            self.CHART, "Chart of the scores", "PNG files (*.png)", optional=True))
        self.addParameter(QgsProcessingParameterFileDestination(
            self.REPORT, "Report section", "HTML files (*.html)", optional=True))

    def compute(self, parameters, context, feedback):
        layer = projected_raster(self, parameters, self.STACK, context)
        stack, grid, band_names = read_raster(layer.source())
        feedback.pushInfo(f"{len(band_names)} band(s): {', '.join(band_names)}.")
        crs = crs_from_string(grid.crs)
        numbers = self.read_numbers(self.NUMBERS, parameters, context)
        method = self.parameterAsEnumString(parameters, self.FOLD_METHOD, context)
        deposit_xy = point_parameter(self, parameters, self.DEPOSITS, "deposit", crs, context, feedback, required=True)
        fold_field = self._fold_values(self.parameterAsSource(parameters, self.DEPOSITS, context), parameters,
                                       context) if method == "field" else None
        barren_xy = point_parameter(self, parameters, self.BARREN, "barren", crs, context, feedback)
        area = read_study_area(self, parameters, context, crs, feedback)
        keys = self.parameterAsEnumStrings(parameters, self.MODEL_TYPES, context)
        if not keys:
            raise InputError("Choose at least one model to cross-validate.")
        fit_maps, widest = cv_fit_maps(keys, numbers.pop("epochs"))
        gap = numbers.pop("gap")
        settings = CvSettings(n_folds=numbers.pop("folds"), fold_method=method, gap=max(gap, 0.0), **numbers)
        recipe = self._recipe(layer.source(), feedback)
        if gap < 0:
            gap, why = automatic_gap(settings, grid, widest, recipe)
            feedback.pushInfo(f"Automatic gap: {gap:g} map units ({why}).")
            settings = dataclasses.replace(settings, gap=gap)
        ensembles = cv_ensembles(self.parameterAsEnumStrings(parameters, self.ENSEMBLES, context), keys)
        screen = self.parameterAsBool(parameters, self.SCREEN, context)
        selector = screening_selector(band_names, ScreeningSettings(seed=settings.seed), feedback.pushInfo) \
            if screen else None
        progress, is_cancelled = feedback_callbacks(feedback)
        result = run_spatial_cv(stack, grid, deposit_xy, fit_maps, settings, select_bands=selector,
                                study_area=None if area is None else area.mask(grid), barren_xy=barren_xy,
                                fold_field=fold_field, ensembles=ensembles, progress=progress,
                                is_cancelled=is_cancelled, log=feedback.pushInfo)
        outputs = {key: self.parameterAsFileOutput(parameters, key, context) or None
                   for key in (self.OUTPUT, self.CHART, self.REPORT)}
        out_of_fold = self.parameterAsOutputLayer(parameters, self.OUT_OF_FOLD, context) or None
        summary = write_cv_outputs(result, grid, outputs[self.OUTPUT], out_of_fold, outputs[self.CHART],
                                   outputs[self.REPORT])
        for row in summary:
            feedback.pushInfo(f"{row['model']}: spatial-CV AUC {row['auc_mean']:.3f} ± {row['auc_std']:.3f}, "
                              f"capture top 15 % {row['capture']['top_15']:.2f}, deposit-vs-area AUC "
                              f"{row['area_auc']:.3f}")
        if out_of_fold:
            StyleOnLoad.attach(context, out_of_fold, "prospectivity.qml")
        return {self.OUTPUT: outputs[self.OUTPUT], self.OUT_OF_FOLD: out_of_fold, self.CHART: outputs[self.CHART],
                self.REPORT: outputs[self.REPORT]}

    @staticmethod
    def _recipe(path: str, feedback) -> dict | None:
        """The stack's DeepProspect recipe, or None (with a word) for a stack built elsewhere."""
        try:
            recipe = read_stack_recipe(path)
        except InputError:
            feedback.pushInfo("The stack has no DeepProspect recipe: no evidence reach is known for the automatic "
                              "gap, and the bands are taken as they are.")
            return None
        if (recipe.get("normalise") or {}).get("method") in (None, "none"):
            feedback.pushWarning("The stack is not normalised: the networks see its raw values (a band in metres "
                                 "outweighs one in log ppm). Build it with z-score normalisation.")
        return recipe

    def _fold_values(self, source, parameters, context) -> list:
        """The fold field's value of every deposit point (one per part of a multipoint), in reading order."""
        field = self.parameterAsString(parameters, self.FOLD_FIELD, context)
        if not field:
            raise InputError("Folds from a field need the fold field of the deposits; choose it.")
        values = []
        with closing(source.getFeatures(QgsFeatureRequest().setSubsetOfAttributes([field], source.fields()))) as it:
            for feature in it:
                geometry = feature.geometry()
                if geometry.isNull() or geometry.isEmpty():
                    continue
                value = feature[field]
                if value is None or value == NULL:
                    raise InputError(f"A deposit has no value in the fold field '{field}'; fill it or choose "
                                     "k-means folds.")
                parts = len(geometry.asMultiPoint()) if geometry.isMultipart() else 1
                values += [str(value)] * parts
        return values
