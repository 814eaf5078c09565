"""The bad-input battery: messy real data and hurried users, against every algorithm through processing.run.

Every case ends one of two ways: a clear QgsProcessingException (the message says what is wrong), or a complete
and correct output set. Either way no input file changes, and after a failure no output (nor a temporary) is
left. The terminal summary prints the count of cases tried and handled, by algorithm (see conftest.py).
"""

from __future__ import annotations

import hashlib
import importlib
import itertools
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import rasterio
from layer_factory import point_layer, wkt_layer
from qgis.core import QgsProcessingException, QgsVectorLayer

DEMO = Path(__file__).resolve().parents[2] / "resources" / "demo" / "demo_survey.gpkg"
P = "deepprospect:"


@dataclass
class Workspace:
    """A small, complete chain of inputs on the demo survey (1 km cells), made once by the plugin itself."""

    folder: Path
    files: dict[str, str] = field(default_factory=dict)

    def __getitem__(self, key: str) -> str:
        return self.files[key]

    def layer(self, name: str) -> str:
        return f"{self.folder / 'survey.gpkg'}|layername={name}"

    def fingerprint(self) -> dict[str, str]:
        """Content hash of every input file (GeoPackages by their features: SQLite may touch its header)."""
        prints = {}
        for path in sorted(self.folder.iterdir()):
            if path.name.endswith(".aux.xml"):
                continue  # QGIS's GDAL provider caches band statistics beside a raster it opens (QGIS Desktop too)
            if path.suffix == ".gpkg":
                layers = [QgsVectorLayer(f"{path}|layername={name}", name, "ogr") for name in _layer_names(path)]
                prints[path.name] = repr([(layer.name(), sorted(str(f.attributes()) + f.geometry().asWkt(3)
                                                                for f in layer.getFeatures())) for layer in layers])
            else:
                prints[path.name] = hashlib.md5(path.read_bytes()).hexdigest()
        return prints


def _layer_names(path: Path) -> list[str]:
    from osgeo import ogr

    source = ogr.Open(str(path))
    return [source.GetLayerByIndex(i).GetName() for i in range(source.GetLayerCount())]


# The files of the workspace, by key.
FILES = {"grids": "grids.tif", "density": "density.tif", "stack": "stack.tif", "training": "training.npz",
         "samples_out": "samples.gpkg", "model": "model.onnx", "map": "map.tif", "forest": "forest.tif",
         "ensemble": "ensemble.tif", "pair_model": "pair.onnx"}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, run_alg_module) -> Workspace:
    folder = tmp_path_factory.mktemp("battery") / "inputs"
    folder.mkdir()
    shutil.copy(DEMO, folder / "survey.gpkg")
    ws = Workspace(folder)
    files = ws.files
    files.update({key: str(folder / name) for key, name in FILES.items()})
    run_alg_module(P + "idwgridding", {"INPUT": ws.layer("samples"), "FIELDS": ["Cu", "Zn", "As"],
                                       "PIXEL_SIZE": 1000, "OUTPUT": files["grids"]})
    run_alg_module(P + "bufferdensity", {"INPUT": ws.layer("faults"), "RADIUS": 2000, "TEMPLATE": files["grids"],
                                         "OUTPUT": files["density"]})
    run_alg_module(P + "evidencestack", {"INPUTS": [files["grids"], files["density"]], "OUTPUT": files["stack"]})
    run_alg_module(P + "traininglabels", {"STACK": files["stack"], "DEPOSITS": ws.layer("deposits"),
                                          "BARREN": ws.layer("barren_holes"), "PATCH_SIZE": 1, "NEGATIVE_RATIO": 4,
                                          "OUTPUT": files["training"], "SAMPLES": files["samples_out"]})
    run_alg_module(P + "trainmodel", {"TRAINING_SET": files["training"], "ARCHITECTURE": "mlp", "EPOCHS": 2,
                                      "OUTPUT": files["model"], "CURVES": None, "DEVICE": "cpu"})
    run_alg_module(P + "predict", {"MODEL": files["model"], "STACK": files["stack"], "OUTPUT": files["map"]})
    run_alg_module(P + "trainmodel", {"TRAINING_SET": files["training"], "ARCHITECTURE": "ppf_cnn1d", "EPOCHS": 1,
                                      "MAX_PAIRS": 300, "OUTPUT": files["pair_model"], "CURVES": None,
                                      "DEVICE": "cpu"})
    run_alg_module(P + "baseline", {"TRAINING_SET": files["training"], "STACK": files["stack"], "TREES": 20,
                                    "OUTPUT": files["forest"], "IMPORTANCE": str(folder / "importance.csv")})
    run_alg_module(P + "ensemble", {"MAPS": [files["map"], files["forest"]], "OUTPUT": files["ensemble"]})
    _write_bad_rasters(ws)
    return ws


def _write_bad_rasters(ws: Workspace) -> None:
    """Maps that are not probability maps: 0–100 values, two bands, a geographic CRS, all nodata."""
    with rasterio.open(ws["map"]) as src:
        profile, values = src.profile, src.read(1)
    variants = {"percent": (values * 100.0)[None], "two_bands": np.stack([values, values]),
                "empty": np.full((1, *values.shape), profile["nodata"], dtype=values.dtype)}
    for name, bands in variants.items():
        ws.files[name] = str(ws.folder / f"{name}.tif")
        with rasterio.open(ws.files[name], "w", **{**profile, "count": len(bands)}) as dst:
            dst.write(bands.astype(profile["dtype"]))
    ws.files["geographic"] = str(ws.folder / "geographic.tif")
    transform = rasterio.transform.from_origin(117.0, 30.0, 0.01, 0.01)
    with rasterio.open(ws.files["geographic"], "w", **{**profile, "crs": "EPSG:4326", "transform": transform}) as dst:
        dst.write(values[None].astype(profile["dtype"]))


@dataclass(frozen=True)
class Case:
    """One bad (or awkward) input: the parameters over the algorithm's valid ones, and the expected end."""

    algorithm: str
    name: str
    parameters: Callable[[Workspace, Path], dict]
    error: str | None  # a regex the message must match; None: the run must succeed with every output written
    check: Callable[[Workspace, dict], None] | None = None

    @property
    def id(self) -> str:
        return f"{self.algorithm}-{self.name}"


def lines_layer(ws):
    return ws.layer("faults")


def no_crs_points(ws):
    return point_layer([(405000.0, 3305000.0), (410000.0, 3310000.0)], {"Cu": [1.0, 2.0]}, crs="")


def unwritable(path: Path, name: str) -> str:
    return str(path / "no such folder" / name)


# The valid parameters of each algorithm, outputs in the case's own folder.
VALID: dict[str, Callable[[Workspace, Path], dict]] = {
    "idwgridding": lambda ws, out: {"INPUT": ws.layer("samples"), "FIELDS": ["Cu", "Zn"], "PIXEL_SIZE": 1000,
                                    "OUTPUT": str(out / "grids.tif")},
    "bufferdensity": lambda ws, out: {"INPUT": ws.layer("faults"), "RADIUS": 2000, "TEMPLATE": ws["grids"],
                                      "OUTPUT": str(out / "density.tif")},
    "evidencestack": lambda ws, out: {"INPUTS": [ws["grids"], ws["density"]], "OUTPUT": str(out / "stack.tif")},
    "elementscreening": lambda ws, out: {"STACK": ws["stack"], "DEPOSITS": ws.layer("deposits"),
                                         "BARREN": ws.layer("barren_holes"), "OUTPUT": str(out / "screening.csv"),
                                         "SELECTED_STACK": str(out / "selected.tif"), "CHART": str(out / "z.png")},
    "traininglabels": lambda ws, out: {"STACK": ws["stack"], "DEPOSITS": ws.layer("deposits"),
                                       "BARREN": ws.layer("barren_holes"), "PATCH_SIZE": 1, "NEGATIVE_RATIO": 4,
                                       "OUTPUT": str(out / "training.npz"), "SAMPLES": str(out / "samples.gpkg")},
    "trainmodel": lambda ws, out: {"TRAINING_SET": ws["training"], "ARCHITECTURE": "mlp", "EPOCHS": 1, "DEVICE": "cpu",
                                   "OUTPUT": str(out / "model.onnx"),
                                   "CURVES": str(out / "curves.png")},
    "baseline": lambda ws, out: {"TRAINING_SET": ws["training"], "STACK": ws["stack"], "TREES": 10,
                                 "OUTPUT": str(out / "forest.tif"), "IMPORTANCE": str(out / "importance.csv")},
    "spatialcv": lambda ws, out: {"STACK": ws["stack"], "DEPOSITS": ws.layer("deposits"),
                                  "MODEL_TYPES": ["random_forest"], "ENSEMBLES": [], "FOLDS": 3, "REPEATS": 1,
                                  "OUTPUT": str(out / "cv.csv"), "OUT_OF_FOLD": str(out / "oof.tif"),
                                  "CHART": str(out / "cv.png"), "REPORT": str(out / "cv.html")},
    "predict": lambda ws, out: {"MODEL": ws["model"], "STACK": ws["stack"], "OUTPUT": str(out / "map.tif")},
    "dualwindow": lambda ws, out: {"MODEL": ws["pair_model"], "STACK": ws["stack"], "INNER": 1, "OUTER": 3,
                                   "DEVICE": "cpu", "OUTPUT": str(out / "anomaly.tif")},
    "ensemble": lambda ws, out: {"MAPS": [ws["map"], ws["forest"]], "OUTPUT": str(out / "ensemble.tif"),
                                 "UNCERTAINTY": str(out / "uncertainty.tif")},
    "ensemblecompare": lambda ws, out: {"MAPS": [ws["map"], ws["forest"]], "ENSEMBLE_MAPS": [ws["ensemble"]],
                                        "DEPOSITS": ws.layer("deposits"), "BARREN": ws.layer("barren_holes"),
                                        "OUTPUT": str(out / "compare.csv")},
    "evaluate": lambda ws, out: {"MAP": ws["ensemble"], "DEPOSITS": ws.layer("deposits"),
                                 "BARREN": ws.layer("barren_holes"), "OUTPUT": str(out / "metrics.csv"),
                                 "REPORT": str(out / "evaluation.html"), "ROC_PLOT": str(out / "roc.png")},
    "anomalyclasses": lambda ws, out: {"MAP": ws["ensemble"], "DEPOSITS": ws.layer("deposits"),
                                       "OUTPUT": str(out / "classes.tif"), "CLASS_TABLE": str(out / "classes.csv"),
                                       "TARGETS": str(out / "targets.gpkg")},
    "report": lambda ws, out: {"MAP": ws["ensemble"], "DEPOSITS": ws.layer("deposits"), "MODELS": [ws["model"]],
                               "OUTPUT": str(out / "report.html")},
}


OVERWRITES = r"would overwrite the input"
SHARED = r"are both set to"
NOT_POINTS = r"must be points"
NO_FIELD = r"has no field"
NO_CRS = r"has no (valid )?CRS"
EXTENSION = r"Give a file name ending in"
CANNOT_CREATE = r"folder does not exist|Could not create"


def _mean_is_a_concentration(ws, result):
    with rasterio.open(result["OUTPUT"]) as src:
        band = src.read(1, masked=True)
    assert band.min() >= 0, "missing-value codes were gridded as concentrations"


def _density_is_not_negative(ws, result):
    with rasterio.open(result["OUTPUT"]) as src:
        assert src.read(1, masked=True).min() >= 0, "missing-value codes were taken as weights"


def _coded_samples(ws):
    """The demo samples with Cu = -9999 at every tenth sample (a laboratory's missing-value code)."""
    layer = QgsVectorLayer(ws.layer("samples"), "samples", "ogr")
    xy = np.array([(f.geometry().asPoint().x(), f.geometry().asPoint().y()) for f in layer.getFeatures()])
    cu = np.array([f["Cu"] for f in layer.getFeatures()], dtype=float)
    cu[::10] = -9999.0
    return point_layer(xy, {"Cu": list(cu)}, crs="EPSG:32650")


def _coded_faults(ws):
    return wkt_layer(["LINESTRING(402000 3302000, 418000 3318000)", "LINESTRING(402000 3318000, 418000 3302000)"],
                     geometry="LineString", crs="EPSG:32650", fields={"w": ["1", "-9999"]})


CASES: list[Case] = [
    # An output path equal to an input path (the input must survive untouched).
    Case("predict", "output is the model file", lambda ws, out: {"OUTPUT": ws["model"]}, OVERWRITES),
    Case("predict", "output is the stack", lambda ws, out: {"OUTPUT": ws["stack"]}, OVERWRITES),
    Case("traininglabels", "output is the stack", lambda ws, out: {"OUTPUT": ws["stack"]}, OVERWRITES),
    Case("traininglabels", "samples are the deposits", lambda ws, out: {"SAMPLES": str(ws.folder / "survey.gpkg")},
         OVERWRITES),
    Case("evaluate", "report is the map", lambda ws, out: {"REPORT": ws["ensemble"]}, OVERWRITES),
    Case("report", "report is the map", lambda ws, out: {"OUTPUT": ws["ensemble"]}, OVERWRITES),
    Case("idwgridding", "output is the template", lambda ws, out: {"TEMPLATE": ws["grids"], "PIXEL_SIZE": None,
                                                                  "OUTPUT": ws["grids"]}, OVERWRITES),
    Case("idwgridding", "output is the samples GeoPackage",
         lambda ws, out: {"OUTPUT": str(ws.folder / "survey.gpkg")}, OVERWRITES),
    Case("evidencestack", "output is an input", lambda ws, out: {"OUTPUT": ws["grids"]}, OVERWRITES),
    Case("elementscreening", "selected stack is the stack", lambda ws, out: {"SELECTED_STACK": ws["stack"]},
         OVERWRITES),
    Case("baseline", "output is the stack", lambda ws, out: {"OUTPUT": ws["stack"]}, OVERWRITES),
    Case("baseline", "importance is the training set", lambda ws, out: {"IMPORTANCE": ws["training"]},
         OVERWRITES),
    Case("anomalyclasses", "classes are the map", lambda ws, out: {"OUTPUT": ws["ensemble"]}, OVERWRITES),
    Case("bufferdensity", "output is the template", lambda ws, out: {"OUTPUT": ws["grids"]}, OVERWRITES),
    Case("ensemble", "output is a member", lambda ws, out: {"OUTPUT": ws["map"]}, OVERWRITES),
    Case("trainmodel", "model is the training set", lambda ws, out: {"OUTPUT": ws["training"]},
         OVERWRITES),
    Case("spatialcv", "out-of-fold map is the stack", lambda ws, out: {"OUT_OF_FOLD": ws["stack"]}, OVERWRITES),
    # Two outputs of one run on one path.
    Case("ensemble", "uncertainty is the output", lambda ws, out: {"UNCERTAINTY": str(out / "ensemble.tif")}, SHARED),
    Case("evaluate", "three plots on one path", lambda ws, out: {"ROC_PLOT": str(out / "p.png"),
                                                                 "RATE_PLOT": str(out / "p.png"),
                                                                 "PA_PLOT": str(out / "p.png")}, SHARED),
    Case("anomalyclasses", "table and targets on one path",
         lambda ws, out: {"CLASS_TABLE": str(out / "t.gpkg"), "TARGETS": str(out / "t.gpkg")}, SHARED),
    # A format that does not match the extension.
    Case("predict", "map named .png", lambda ws, out: {"OUTPUT": str(out / "map.png")}, EXTENSION),
    # A model applied by the wrong algorithm.
    Case("predict", "a pixel-pair model", lambda ws, out: {"MODEL": ws["pair_model"]}, r"Dual-window anomaly"),
    Case("dualwindow", "a prospectivity model", lambda ws, out: {"MODEL": ws["model"]}, r"not a pixel-pair model"),
    Case("dualwindow", "sweep table without deposits", lambda ws, out: {"SWEEP_TABLE": str(out / "sweep.csv")},
         r"deposit"),
    Case("idwgridding", "grid named .asc", lambda ws, out: {"OUTPUT": str(out / "grids.asc")}, EXTENSION),
    Case("evaluate", "report named .tif", lambda ws, out: {"REPORT": str(out / "report.tif")}, EXTENSION),
    Case("report", "report named .txt", lambda ws, out: {"OUTPUT": str(out / "report.txt")}, EXTENSION),
    # Lines where points are expected.
    *[Case(algorithm, f"{key.lower()} are lines", lambda ws, out, key=key: {key: lines_layer(ws), **(
        {"FIELDS": ["fault_id"]} if key == "INPUT" else {})}, NOT_POINTS)
      for algorithm, key in (("elementscreening", "DEPOSITS"), ("elementscreening", "BARREN"),
                             ("traininglabels", "DEPOSITS"), ("traininglabels", "BARREN"), ("evaluate", "DEPOSITS"),
                             ("evaluate", "BARREN"), ("anomalyclasses", "DEPOSITS"), ("report", "DEPOSITS"),
                             ("spatialcv", "DEPOSITS"), ("idwgridding", "INPUT"))],
    # Fields that do not exist.
    Case("evaluate", "split field missing", lambda ws, out: {"SPLIT_FIELD": "no_such_field"}, NO_FIELD),
    Case("report", "split field missing", lambda ws, out: {"SPLIT_FIELD": "no_such_field"}, NO_FIELD),
    Case("traininglabels", "hole field missing",
         lambda ws, out: {"STUDY_AREA": wkt_layer(["POLYGON((401000 3301000, 419000 3301000, 419000 3319000, "
                                                   "401000 3319000, 401000 3301000))"]),
                          "HOLE_FIELD": "no_such_field"}, NO_FIELD),
    Case("idwgridding", "field missing", lambda ws, out: {"FIELDS": ["Cu", "no_such_field"]}, NO_FIELD),
    Case("bufferdensity", "weight field missing", lambda ws, out: {"WEIGHT": "no_such_field"}, NO_FIELD),
    Case("spatialcv", "fold field missing", lambda ws, out: {"FOLD_METHOD": "field", "FOLD_FIELD": "no_such_field"},
         NO_FIELD),
    # Sinks that cannot be created: an error, and the outputs written before them gone too.
    Case("evaluate", "metrics in a missing folder", lambda ws, out: {"OUTPUT": unwritable(out, "m.csv")},
         CANNOT_CREATE),
    Case("anomalyclasses", "class table in a missing folder",
         lambda ws, out: {"CLASS_TABLE": unwritable(out, "t.csv")}, CANNOT_CREATE),
    Case("elementscreening", "table in a missing folder", lambda ws, out: {"OUTPUT": unwritable(out, "s.csv")},
         CANNOT_CREATE),
    Case("traininglabels", "samples in a missing folder",
         lambda ws, out: {"SAMPLES": unwritable(out, "s.gpkg")}, CANNOT_CREATE),
    # Points without a CRS.
    Case("idwgridding", "samples without CRS", lambda ws, out: {"INPUT": no_crs_points(ws), "FIELDS": ["Cu"]},
         NO_CRS),
    Case("elementscreening", "deposits without CRS", lambda ws, out: {"DEPOSITS": no_crs_points(ws)}, NO_CRS),
    Case("traininglabels", "deposits without CRS", lambda ws, out: {"DEPOSITS": no_crs_points(ws)}, NO_CRS),
    Case("evaluate", "deposits without CRS", lambda ws, out: {"DEPOSITS": no_crs_points(ws)}, NO_CRS),
    Case("anomalyclasses", "deposits without CRS", lambda ws, out: {"DEPOSITS": no_crs_points(ws)}, NO_CRS),
    # Numbers out of range name the range.
    Case("idwgridding", "negative power", lambda ws, out: {"POWER": -1}, r"must be at least"),
    Case("traininglabels", "validation fraction 1.5", lambda ws, out: {"VALIDATION_FRACTION": 1.5},
         r"fractions must be"),
    Case("evaluate", "threshold 1.5", lambda ws, out: {"THRESHOLD": 1.5}, r"between 0 and 1"),
    Case("ensemble", "threshold 2", lambda ws, out: {"METHOD": "majority_vote", "THRESHOLD": 2}, r"between 0 and 1"),
    # Missing-value codes are not concentrations nor weights.
    Case("idwgridding", "-9999 codes in a field", lambda ws, out: {"INPUT": _coded_samples(ws), "FIELDS": ["Cu"]},
         None, _mean_is_a_concentration),
    Case("bufferdensity", "-9999 code as a weight", lambda ws, out: {"INPUT": _coded_faults(ws), "WEIGHT": "w",
                                                                     "TEMPLATE": ws["grids"]},
         None, _density_is_not_negative),
    # Maps that are not probability maps.
    Case("evaluate", "map of percentages", lambda ws, out: {"MAP": ws["percent"]}, r"0(–|-| to )1"),
    Case("report", "map of percentages", lambda ws, out: {"MAP": ws["percent"]}, r"0(–|-| to )1"),
    Case("evaluate", "two-band map", lambda ws, out: {"MAP": ws["two_bands"]}, r"band"),
    Case("report", "two-band map", lambda ws, out: {"MAP": ws["two_bands"]}, r"band"),
    Case("evaluate", "geographic map", lambda ws, out: {"MAP": ws["geographic"]}, r"geographic|degrees"),
    Case("ensemble", "an empty member", lambda ws, out: {"MAPS": [ws["map"], ws["empty"]]}, r"nodata|empty"),
    Case("ensemblecompare", "a member of percentages", lambda ws, out: {"MAPS": [ws["map"], ws["percent"]]},
         r"0(–|-| to )1"),
    Case("ensemblecompare", "an empty member", lambda ws, out: {"MAPS": [ws["map"], ws["empty"]]},
         r"no cell where every map has a value"),
    Case("ensemblecompare", "one member", lambda ws, out: {"MAPS": [ws["map"]]}, r"at least two member maps"),
    Case("ensemblecompare", "a geographic member", lambda ws, out: {"MAPS": [ws["map"], ws["geographic"]]},
         r"same evidence stack"),
    Case("ensemblecompare", "deposits without CRS", lambda ws, out: {"DEPOSITS": no_crs_points(ws)}, NO_CRS),
    Case("ensemblecompare", "barren areas are lines", lambda ws, out: {"BARREN_AREAS": lines_layer(ws)},
         r"must be polygons"),
    Case("baseline", "an empty stack", lambda ws, out: {"STACK": ws["empty"]}, r"nodata|empty|band"),
    # A misspelt or renamed key (QGIS alone would ignore it and use the default).
    Case("baseline", "renamed key N_TREES", lambda ws, out: {"N_TREES": 5}, r"has no parameter N_TREES. Did you mean "
                                                                            r"TREES\?"),
    Case("trainmodel", "misspelt key EPOCH", lambda ws, out: {"EPOCH": 5}, r"Did you mean EPOCHS\?"),
    # A training set that could not train anything.
    Case("traininglabels", "no negatives", lambda ws, out: {"NEGATIVE_RATIO": 0, "BARREN": None}, r"negative"),
    # A geographic stack where distances are measured.
    *[Case(algorithm, "geographic stack", lambda ws, out: {"STACK": ws["geographic"]}, r"geographic CRS")
      for algorithm in ("elementscreening", "traininglabels", "spatialcv")],
    # A line layer as study area.
    Case("idwgridding", "lines as study area", lambda ws, out: {"STUDY_AREA": lines_layer(ws)}, r"polygon"),
    Case("traininglabels", "lines as study area", lambda ws, out: {"STUDY_AREA": lines_layer(ws)}, r"polygon"),
    # The runs that must simply work (the valid parameters of every algorithm).
    *[Case(algorithm, "valid inputs", lambda ws, out: {}, None) for algorithm in VALID],
    # Awkward but valid: an empty optional layer, multipoint deposits, an existing output overwritten.
    Case("elementscreening", "empty barren layer",
         lambda ws, out: {"BARREN": point_layer(np.zeros((0, 2)), {}, crs="EPSG:32650")}, None),
    Case("predict", "existing output overwritten", lambda ws, out: _existing(out / "map.tif", {}), None),
]


def _generated_cases() -> list[Case]:
    """For every algorithm, from its valid parameters: each output set to each input file, each pair of outputs
    on one path, and each output in a folder that does not exist."""
    probe = Workspace(Path("/inputs"), {key: f"/inputs/{name}" for key, name in FILES.items()})
    cases = []
    for algorithm, valid in VALID.items():
        parameters = valid(probe, Path("out"))
        values = [v for value in parameters.values() for v in (value if isinstance(value, list) else [value])]
        inputs = sorted({v.split("|")[0][len("/inputs/"):] for v in values
                         if isinstance(v, str) and v.startswith("/inputs/")})
        outputs = [key for key, value in parameters.items() if isinstance(value, str) and value.startswith("out")]
        for key in outputs:
            file = os.path.basename(parameters[key])
            for name in inputs:
                cases.append(Case(algorithm, f"{key} is the input {name}",
                                  lambda ws, out, key=key, name=name: {key: str(ws.folder / name)}, OVERWRITES))
            cases.append(Case(algorithm, f"{key} in a missing folder",
                              lambda ws, out, key=key, file=file: {
                                  key: unwritable(out, file)},
                              CANNOT_CREATE))
        for first, second in itertools.combinations(outputs, 2):
            cases.append(Case(algorithm, f"{first} and {second} on one path",
                              lambda ws, out, first=first, second=second, valid=valid: {
                                  second: valid(ws, out)[first]}, SHARED))
    return cases


def _range_cases() -> list[Case]:
    """Every number parameter of every algorithm, just below its minimum and just above its maximum."""
    from deepprospect.algorithms.provider import ALGORITHMS
    from qgis.core import QgsProcessingParameterNumber

    cases = []
    for module, class_name in ALGORITHMS:
        algorithm = getattr(importlib.import_module(f"deepprospect.algorithms.{module}"), class_name)()
        algorithm.initAlgorithm({})
        for definition in algorithm.parameterDefinitions():
            if not isinstance(definition, QgsProcessingParameterNumber):
                continue
            key = definition.name()
            for value in (definition.minimum() - 1, definition.maximum() + 1):
                if abs(value) < 1e300:
                    cases.append(Case(algorithm.name(), f"{key} = {value:g}",
                                      lambda ws, out, key=key, value=value: {key: value},
                                      rf"\({key}\) must be (at least|at most|between)"))
    return cases


CASES += _generated_cases() + _range_cases()


def _existing(path: Path, overrides: dict) -> dict:
    path.write_bytes(b"an old file")
    return overrides


def _listing(folder: Path) -> set[str]:
    """The files under ``folder``, without the statistics caches QGIS writes beside rasters it opens."""
    return {str(path.relative_to(folder)) for path in folder.rglob("*") if not path.name.endswith(".aux.xml")}


@pytest.mark.parametrize("bad", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_handled(run_alg, workspace, tmp_path, bad):
    out = tmp_path / "out"
    out.mkdir()
    before_inputs, before_listing = workspace.fingerprint(), _listing(workspace.folder)
    parameters = {**VALID[bad.algorithm](workspace, out), **bad.parameters(workspace, out)}
    parameters = {key: value for key, value in parameters.items() if value is not None}
    before_out = _listing(out)
    if bad.error is None:
        result = run_alg(P + bad.algorithm, parameters)
        for key, value in parameters.items():
            if key in result and isinstance(value, str) and value.startswith(str(out)):
                assert os.path.exists(value), f"{key} was not written"
        if bad.check:
            bad.check(workspace, result)
    else:
        with pytest.raises(QgsProcessingException, match=bad.error):
            run_alg(P + bad.algorithm, parameters)
        assert _listing(out) == before_out, "a failed run left output files"
    assert _listing(workspace.folder) == before_listing, "files appeared beside the inputs"
    assert workspace.fingerprint() == before_inputs, "an input changed"


def test_a_raster_crs_overridden_in_qgis_is_refused(run_alg, workspace, tmp_path):
    """DeepProspect reads raster files: a CRS assigned only in QGIS would be silently ignored."""
    from qgis.core import QgsCoordinateReferenceSystem, QgsRasterLayer

    layer = QgsRasterLayer(workspace["ensemble"], "ensemble")
    layer.setCrs(QgsCoordinateReferenceSystem("EPSG:32651"))
    with pytest.raises(QgsProcessingException, match="shown in QGIS in EPSG:32651, but its file says EPSG:32650"):
        run_alg(P + "anomalyclasses", {**VALID["anomalyclasses"](workspace, tmp_path), "MAP": layer})
    assert list(tmp_path.iterdir()) == []
