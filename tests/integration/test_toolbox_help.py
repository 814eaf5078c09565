"""Toolbox search and help: every algorithm's tags (TAGS) and help link (homepage + README section HELP_ANCHOR),
every pipeline's help link, and parameter help where a description alone does not say enough."""

import configparser
import re

from deepprospect.algorithms import provider as provider_module
from qgis.core import QgsProcessingModelAlgorithm, QgsProcessingParameterDefinition


def homepage(repo_root) -> str:
    metadata = configparser.ConfigParser(interpolation=None)
    metadata.read(repo_root / "metadata.txt", encoding="utf-8")
    return metadata["general"]["homepage"]


def readme_anchors(repo_root) -> set[str]:
    """GitHub's anchors of the README headings: lower case, punctuation dropped, spaces to hyphens."""
    headings = re.findall(r"^#+ (.+)$", (repo_root / "README.md").read_text(encoding="utf-8"), re.M)
    return {re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-") for heading in headings}


def python_algorithms(provider):
    return [a for a in provider.algorithms() if not isinstance(a, QgsProcessingModelAlgorithm)]


def test_every_algorithm_has_search_tags_and_a_help_link(deepprospect_provider, repo_root):
    algorithms = python_algorithms(deepprospect_provider)
    assert len(algorithms) == len(provider_module.ALGORITHMS)
    anchors = readme_anchors(repo_root)
    for algorithm in algorithms:
        assert len(algorithm.TAGS) >= 5 and set(algorithm.TAGS) <= set(algorithm.tags()), algorithm.id()
        assert algorithm.HELP_ANCHOR in anchors, algorithm.id()
        assert algorithm.helpUrl() == f"{homepage(repo_root)}#{algorithm.HELP_ANCHOR}", algorithm.id()


def test_every_pipeline_links_to_the_pipelines_section(deepprospect_provider, repo_root):
    assert "pipelines" in readme_anchors(repo_root)
    for model in deepprospect_provider.algorithms():
        if isinstance(model, QgsProcessingModelAlgorithm):
            assert model.helpUrl() == f"{homepage(repo_root)}#pipelines"


def test_advanced_and_enum_parameters_have_help(deepprospect_provider):
    for algorithm in python_algorithms(deepprospect_provider):
        for parameter in algorithm.parameterDefinitions():
            needs_help = parameter.flags() & QgsProcessingParameterDefinition.FlagAdvanced or parameter.type() == "enum"
            if needs_help and not parameter.help():
                raise AssertionError(f"{algorithm.id()} {parameter.name()} has no help")
