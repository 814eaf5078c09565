"""Parameter helpers shared by the algorithms: enums stored by name and one-sentence help."""

from __future__ import annotations

from collections.abc import Sequence

from qgis.core import QgsProcessingParameterDefinition, QgsProcessingParameterEnum

from ..compat import FLAG_ADVANCED

DEVICE_HELP = "auto = an NVIDIA GPU (CUDA) when it works, else the CPU (the log says which and why); cpu; cuda."


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
