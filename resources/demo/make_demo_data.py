"""Write the seeded synthetic survey of ``core/synthetic.py`` to a GeoPackage (the bundled demo data).

Usage: ``python resources/demo/make_demo_data.py OUT.gpkg [--seed N]``

Layers: ``samples`` (sample_id + one Real field per element, NULL where not analysed), ``faults``
(fault_id, name), ``deposits`` (deposit_id, name, commodity) and ``barren_holes`` (hole_id).
The file is written under a temporary name and renamed at the end, so a failure leaves no partial file.
"""

from __future__ import annotations

import argparse
import importlib
import math
import os
import sys
import tempfile
from pathlib import Path

from osgeo import ogr, osr

REPO_ROOT = Path(__file__).resolve().parents[2]


def load_make_survey():
    """Import ``make_survey`` from the plugin package, whatever the repository folder is called."""
    with tempfile.TemporaryDirectory() as parent:
        os.symlink(REPO_ROOT, Path(parent) / "deepprospect", target_is_directory=True)
        sys.path.insert(0, parent)
        try:
            return importlib.import_module("deepprospect.core.synthetic").make_survey
        finally:
            sys.path.remove(parent)


def add_layer(dataset, name: str, geometry_type: int, srs, fields: list[tuple[str, int]]):
    """Create a layer with the given (name, OGR type) fields."""
    layer = dataset.CreateLayer(name, srs, geometry_type)
    for field_name, field_type in fields:
        layer.CreateField(ogr.FieldDefn(field_name, field_type))
    return layer


def add_feature(layer, geometry, attributes: dict) -> None:
    """Add one feature; a NaN attribute is written as NULL."""
    feature = ogr.Feature(layer.GetLayerDefn())
    for key, value in attributes.items():
        if isinstance(value, float) and math.isnan(value):
            feature.SetFieldNull(key)
        else:
            feature.SetField(key, value)
    feature.SetGeometry(geometry)
    layer.CreateFeature(feature)


def point(x: float, y: float):
    """An OGR point."""
    geometry = ogr.Geometry(ogr.wkbPoint)
    geometry.AddPoint_2D(float(x), float(y))
    return geometry


def write_gpkg(survey, path: Path) -> None:
    """Write the survey's four layers to ``path`` (via a temporary file renamed at the end)."""
    srs = osr.SpatialReference()
    srs.SetFromUserInput(survey.crs)
    tmp = path.with_name(path.name + ".part.gpkg")
    tmp.unlink(missing_ok=True)
    dataset = ogr.GetDriverByName("GPKG").CreateDataSource(str(tmp))
    samples = add_layer(
        dataset,
        "samples",
        ogr.wkbPoint,
        srs,
        [("sample_id", ogr.OFTString)] + [(name, ogr.OFTReal) for name in survey.element_names],
    )
    samples.StartTransaction()
    for i, ((x, y), row) in enumerate(zip(survey.sample_xy, survey.values)):
        add_feature(samples, point(x, y), {"sample_id": f"S{i + 1:05d}", **dict(zip(survey.element_names, row))})
    samples.CommitTransaction()
    faults = add_layer(
        dataset, "faults", ogr.wkbLineString, srs, [("fault_id", ogr.OFTInteger), ("name", ogr.OFTString)]
    )
    for i, (line, name) in enumerate(zip(survey.faults, survey.fault_names)):
        geometry = ogr.Geometry(ogr.wkbLineString)
        for x, y in line:
            geometry.AddPoint_2D(float(x), float(y))
        add_feature(faults, geometry, {"fault_id": i + 1, "name": name})
    deposits = add_layer(
        dataset,
        "deposits",
        ogr.wkbPoint,
        srs,
        [("deposit_id", ogr.OFTInteger), ("name", ogr.OFTString), ("commodity", ogr.OFTString)],
    )
    for i, (x, y) in enumerate(survey.deposit_xy):
        add_feature(deposits, point(x, y), {"deposit_id": i + 1, "name": f"Deposit {i + 1}", "commodity": "Au"})
    holes = add_layer(dataset, "barren_holes", ogr.wkbPoint, srs, [("hole_id", ogr.OFTString)])
    for i, (x, y) in enumerate(survey.barren_xy):
        add_feature(holes, point(x, y), {"hole_id": f"DH{i + 1:03d}"})
    del dataset  # closes and flushes the file
    os.replace(tmp, path)


def main() -> None:
    """Parse the command line and write the demo GeoPackage."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="output GeoPackage (.gpkg), replaced if it exists")
    parser.add_argument("--seed", type=int, help="generator seed (default: the generator's, 20241)")
    args = parser.parse_args()
    ogr.UseExceptions()
    osr.UseExceptions()
    make_survey = load_make_survey()
    write_gpkg(make_survey() if args.seed is None else make_survey(seed=args.seed), args.out)
    print(f"Wrote {args.out}")


if __name__ == "__main__":
    main()
