"""qgis_process: deepprospect:bufferdensity turns the real Murchison faults into an evidence band headless."""

import numpy as np
import rasterio


def test_run_buffer_density_of_the_murchison_faults(run_json, data_dir, tmp_path):
    out = tmp_path / "faults_bdd.tif"
    code, result, log = run_json(
        "deepprospect:bufferdensity", INPUT=f"{data_dir / 'murchison' / 'murchison_copper.gpkg'}"
        "|layername=murchison_faults", MODE="bufferdensity", RADIUS=10000, PIXEL_SIZE=5000, OUTPUT=out)
    assert code == 0, log
    assert result["results"]["OUTPUT"] == str(out)
    with rasterio.open(out) as src:
        assert src.descriptions == ("murchison_faults_bufferdensity",) and src.crs.to_epsg() == 20350
        assert src.tags()["KERNEL"] == "triangular"
        values = src.read(1)
    assert np.isfinite(values).all() and values.max() > 0 and values.min() >= 0
