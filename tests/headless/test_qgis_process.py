"""qgis_process: the provider loads headless and deepprospect:idwgridding writes rasters GDAL opens."""

import os

import rasterio


def test_list_shows_the_provider(qgis_process):
    done = qgis_process("list")
    assert done.returncode == 0, done.stderr
    assert "DeepProspect" in done.stdout
    assert "deepprospect:idwgridding" in done.stdout


def test_help_describes_the_parameters(qgis_process):
    done = qgis_process("help", "deepprospect:idwgridding")
    assert done.returncode == 0, done.stderr
    for key in ("INPUT", "FIELDS", "POWER", "MAX_POINTS", "MIN_POINTS", "RADIUS", "EXTENT", "PIXEL_SIZE",
                "TEMPLATE", "OUTPUT_CRS", "LOG10", "OUTPUT"):
        assert key in done.stdout


def test_run_grids_the_real_colorado_survey(run_json, data_dir, tmp_path):
    out = tmp_path / "colorado.tif"
    code, result, log = run_json(
        "deepprospect:idwgridding", INPUT=data_dir / "colorado_soil" / "colorado_soil_geochem.gpkg",
        FIELDS=["Cu", "Pb", "Zn"], PIXEL_SIZE=10000, OUTPUT_CRS="EPSG:26913", LOG10="true", OUTPUT=out)
    assert code == 0, log
    assert result["results"]["OUTPUT"] == str(out)
    with rasterio.open(out) as src:
        assert src.descriptions == ("Cu", "Pb", "Zn") and src.crs.to_epsg() == 26913
        assert src.read(1, masked=True).count() == src.width * src.height


def test_geographic_input_without_projected_target_fails_cleanly(qgis_process, data_dir, tmp_path):
    out = tmp_path / "never.tif"
    done = qgis_process("run", "deepprospect:idwgridding", "--",
                        f"INPUT={data_dir / 'colorado_soil' / 'colorado_soil_geochem.gpkg'}", "FIELDS=Cu",
                        "PIXEL_SIZE=5000", f"OUTPUT={out}")
    assert done.returncode != 0
    assert "geographic CRS" in done.stdout + done.stderr and "EPSG:326" in done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert os.listdir(tmp_path) == []


def test_run_on_the_demo_survey_writes_a_raster_gdal_opens(run_json, repo_root, tmp_path):
    from osgeo import gdal

    out = tmp_path / "demo.tif"
    survey = repo_root / "resources" / "demo" / "demo_survey.gpkg"
    code, _, log = run_json("deepprospect:idwgridding", INPUT=f"{survey}|layername=samples",
                                 FIELDS=["Au", "As", "Sb"], PIXEL_SIZE=200, MAX_POINTS=12, RADIUS=2000,
                                 MIN_POINTS=3, OUTPUT=out)
    assert code == 0, log
    dataset = gdal.Open(str(out))
    assert dataset.RasterCount == 3
    assert [dataset.GetRasterBand(i).GetDescription() for i in (1, 2, 3)] == ["Au", "As", "Sb"]
    assert dataset.GetRasterBand(1).DataType == gdal.GDT_Float32
    assert dataset.GetMetadataItem("IDW_MAX_POINTS") == "12"
