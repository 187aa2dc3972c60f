"""Build the cellprofiler pipeline's two .cppipe files through the cellprofiler_core API.

Regenerate (from the repository root, with the venv scripts/cellprofiler-venv.sh makes):
    .venv-cellprofiler/bin/python scripts/make_cppipes.py [OUT_DIR]
OUT_DIR defaults to bioinfra/sampledata/data/cellprofiler. Building through the API (not by hand)
keeps the header, the module revisions and every setting's text exactly what CellProfiler
5.0.0.dev784 writes and reads back (see docs/notes/cellprofiler/mkpipe.py).

- illum.cppipe: LoadData (grouped by Metadata_Plate) -> CorrectIlluminationCalculate (all images of
  a group, i.e. one function per plate) -> SaveImages <Plate>_IllumDNA.npy at each plate's last cycle.
- analysis.cppipe: LoadData (DNA + the plate's IllumDNA .npy) -> CorrectIlluminationApply ->
  IdentifyPrimaryObjects Nuclei -> MeasureObjectSizeShape -> MeasureObjectIntensity ->
  ExportToSpreadsheet Image.csv + Nuclei.csv (no prefix).
Both read the data file given by `cellprofiler --data-file`; the one named here is only a fallback.
The settings are tuned to bioinfra/sampledata/screening.py's images: read that module's docstring.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cellprofiler_core.preferences as prefs

prefs.set_headless()

# Imported after set_headless(), as CellProfiler itself does in headless mode.
import cellprofiler.modules.correctilluminationapply as cia  # noqa: E402
import cellprofiler.modules.correctilluminationcalculate as cic  # noqa: E402
import cellprofiler.modules.exporttospreadsheet as ets  # noqa: E402
import cellprofiler.modules.identifyprimaryobjects as ipo  # noqa: E402
import cellprofiler.modules.measureobjectintensity as moi  # noqa: E402
import cellprofiler.modules.measureobjectsizeshape as moss  # noqa: E402
import cellprofiler.modules.saveimages as si  # noqa: E402
from cellprofiler_core.modules.loaddata import LoadData  # noqa: E402
from cellprofiler_core.pipeline import Pipeline  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "bioinfra" / "sampledata" / "data" / "cellprofiler"
DEFAULT_INPUT_FOLDER = "Default Input Folder|"
DEFAULT_OUTPUT_FOLDER = "Default Output Folder|"


def _pipeline(*modules) -> Pipeline:
    pipeline = Pipeline()
    for module in modules:
        module.set_module_num(len(pipeline.modules()) + 1)
        pipeline.add_module(module)
    return pipeline


def _load_data(fallback_csv: str, group_by_plate: bool) -> LoadData:
    module = LoadData()
    module.csv_directory.value = DEFAULT_INPUT_FOLDER
    module.csv_file_name.value = fallback_csv
    module.wants_images.value = True
    # PathName_* values are absolute (plan_batches.py writes them); a relative one would be taken
    # relative to this base, the Default Input Folder (-i), not to the data file.
    module.image_directory.value = DEFAULT_INPUT_FOLDER
    # 8-bit PNGs: divide by 255. The .npy illumination function is never rescaled (CellProfiler
    # special-cases .npy/.mat files).
    module.rescale.value = True
    module.wants_image_groupings.value = group_by_plate
    if group_by_plate:
        module.metadata_fields.value = "Plate"
    return module


def illum_pipeline() -> Pipeline:
    calculate = cic.CorrectIlluminationCalculate()
    calculate.image_name.value = "DNA"
    calculate.illumination_image_name.value = "IllumDNA"
    # Regular (average intensity of the images, then smoothed) matches a multiplicative vignette,
    # which CorrectIlluminationApply then divides out.
    calculate.intensity_choice.value = "Regular"
    # "All": one function from every image of a group (here a plate), computed across its cycles
    # and available at the group's last cycle.
    calculate.each_or_all.value = "All"
    # A median over 40 px (about 3 nucleus diameters, a third of the field) ignores the nuclei, which
    # cover a small part of any window, and follows the vignette. Measured against the generator's
    # vignette: 4% RMS error; "Fit Polynomial" (5%) is pulled up in the middle, where the nuclei are,
    # and "Background" (block minima) is biased by the noise, which is larger where it is brighter.
    calculate.smoothing_method.value = "Median Filter"
    calculate.automatic_object_width.value = "Manually"
    calculate.size_of_smoothing_filter.value = 40
    # Median: the function has median 1, so corrected images keep their grey levels (Yes would
    # scale it to >= 1 and darken everything).
    calculate.rescale_option.value = "Median"

    save = si.SaveImages()
    save.save_image_or_figure.value = "Image"
    save.image_name.value = "IllumDNA"
    save.file_name_method.value = "Single name"
    save.single_file_name.value = r"\g<Plate>_IllumDNA"
    save.file_format.value = "npy"
    save.pathname.value = DEFAULT_OUTPUT_FOLDER
    # Saved once per plate, after the function has seen all of the plate's images.
    save.when_to_save.value = "Last cycle"
    save.overwrite.value = True  # a retried step may find its own earlier file
    return _pipeline(_load_data("load_data.csv", group_by_plate=True), calculate, save)


def analysis_pipeline() -> Pipeline:
    apply = cia.CorrectIlluminationApply()
    image = apply.images[0]
    image.image_name.value = "DNA"
    image.corrected_image_name.value = "CorrDNA"
    image.illum_correct_function_image_name.value = "IllumDNA"
    image.divide_or_subtract.value = "Divide"

    identify = ipo.IdentifyPrimaryObjects()
    identify.x_name.value = "CorrDNA"
    identify.y_name.value = "Nuclei"
    # The generator's nuclei are 8-16 px across (mean radius 4-6.5, axis ratio <= 1.56); noise
    # specks are far smaller than 6 px.
    identify.size_range.min = 6
    identify.size_range.max = 24
    identify.exclude_size.value = True
    identify.exclude_border_objects.value = True
    # Without "advanced settings" CellProfiler ignores the declumping settings and derives them from
    # the minimum diameter, which on these noisy 6-16 px nuclei now and then splits a large one in two.
    # Smoothing over 7 px leaves one intensity peak per nucleus; two nuclei are always >= 14 px apart
    # (centre to centre), so merging peaks closer than 8 px never joins two real ones.
    identify.use_advanced.value = True
    identify.unclump_method.value = "Intensity"
    identify.watershed_method.value = "Intensity"
    identify.automatic_smoothing.value = False
    identify.smoothing_filter_size.value = 7
    identify.automatic_suppression.value = False
    identify.maxima_suppression_size.value = 8

    size_shape = moss.MeasureObjectSizeShape()
    size_shape.objects_list.value = "Nuclei"
    size_shape.calculate_zernikes.value = False  # 30 more columns per nucleus that no step here reads

    intensity = moi.MeasureObjectIntensity()
    # The corrected image is the measurement; the raw one is there to show what the correction did
    # (tests/integration/test_screening_cellprofiler.py compares the two).
    intensity.images_list.value = "DNA, CorrDNA"
    intensity.objects_list.value = "Nuclei"

    export = ets.ExportToSpreadsheet()
    export.delimiter.value = ets.DELIMITER_COMMA
    export.directory.value = DEFAULT_OUTPUT_FOLDER
    export.wants_prefix.value = False  # Image.csv, Nuclei.csv
    export.add_metadata.value = True  # Metadata_Plate/Well/Site in Nuclei.csv too
    export.nan_representation.value = "NaN"
    # Only the per-image and per-nucleus tables: Experiment.csv holds the run's time stamp and the
    # whole pipeline, per batch, which gather.py would have to drop anyway.
    export.wants_everything.value = False
    for index, name in enumerate(("Image", "Nuclei")):
        if index >= len(export.object_groups):
            export.add_object_group()
        group = export.object_groups[index]
        group.name.value = name
        group.previous_file.value = False
        group.wants_automatic_file_name.value = True
    return _pipeline(
        _load_data("load_data_with_illum.csv", group_by_plate=False), apply, identify, size_shape, intensity, export
    )


def write(pipeline: Pipeline, path: Path) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        pipeline.dump(fh, save_image_plane_details=False)
    print(f"wrote {path}")


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else DEFAULT_OUT
    out.mkdir(parents=True, exist_ok=True)
    write(illum_pipeline(), out / "illum.cppipe")
    write(analysis_pipeline(), out / "analysis.cppipe")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
