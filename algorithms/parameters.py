"""Parameter helpers shared by the algorithms: enums stored by name and one-sentence help."""

from __future__ import annotations

from collections.abc import Sequence

from qgis.core import QgsProcessingParameterDefinition, QgsProcessingParameterEnum, QgsProcessingParameterString

from ..compat import FLAG_ADVANCED

DEVICE_HELP = "auto = an NVIDIA GPU (CUDA) when it works, else the CPU (the log says which and why); cpu; cuda."
DASK_SCHEDULER = "DASK_SCHEDULER"


def named_enum(key: str, label: str, names: Sequence[str], default: str | list[str] | None = None,
               multiple: bool = False, optional: bool = False) -> QgsProcessingParameterEnum:
    """An enum of stable names (registry keys): a saved pipeline stores the name, so a longer list never shifts it.

    Read it with ``parameterAsEnumString`` (or ``parameterAsEnumStrings`` when ``multiple``).
    """
    parameter = QgsProcessingParameterEnum(key, label, list(names), allowMultiple=multiple,
                                           defaultValue=names[0] if default is None else default, optional=optional)
    parameter.setUsesStaticStrings(True)
    return parameter


def explained(parameter: QgsProcessingParameterDefinition, text: str,
              advanced: bool = False) -> QgsProcessingParameterDefinition:
    """``parameter`` with a one-sentence help (shown in the dialog and by ``qgis_process help``)."""
    parameter.setHelp(text)
    if advanced:
        parameter.setFlags(parameter.flags() | FLAG_ADVANCED)
    return parameter


def explain(algorithm, texts: dict[str, str]) -> None:
    """Set the help of ``algorithm``'s already added parameters from {key: sentence}."""
    for key, text in texts.items():
        algorithm.parameterDefinition(key).setHelp(text)


def name_list(pairs: Sequence[tuple[str, str]]) -> str:
    """'name = meaning; …' for the help of an enum of names."""
    return "; ".join(f"{name} = {meaning}" for name, meaning in pairs) + "."


def add_scheduler_parameter(algorithm) -> None:
    """Declare the optional, advanced DASK_SCHEDULER address of a tiled algorithm."""
    from ..core.tiles import SCHEDULER_ENV  # rasterio: only tiled algorithms, which need it anyway, get here

    algorithm.addParameter(explained(
        QgsProcessingParameterString(DASK_SCHEDULER, "Dask scheduler address (optional)", optional=True),
        "e.g. tcp://host:8786: the tiles are computed by the workers of that dask.distributed cluster, with the same "
        "result; they need DeepProspect's Python packages, the folder holding the plugin folder on their "
        f"PYTHONPATH and the input files at the same paths. Empty: the environment variable {SCHEDULER_ENV} if "
        "set, else this computer.", advanced=True))


def scheduler_parameter(algorithm, parameters, context) -> str | None:
    """The DASK_SCHEDULER address given to a run, None when empty (the core then reads the environment)."""
    return algorithm.parameterAsString(parameters, DASK_SCHEDULER, context).strip() or None
