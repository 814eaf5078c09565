"""One parameter vocabulary across the algorithms and the pipelines: the main output is OUTPUT, a key means one
thing everywhere, known synonyms never come back, enums store names, and every pipeline step uses real keys."""

from collections import defaultdict

from deepprospect.compat import MODEL_SOURCE_STATIC
from qgis.core import QgsProcessingDestinationParameter, QgsProcessingModelAlgorithm, QgsProcessingParameterEnum

# keys retired for the key that says the same thing elsewhere
SYNONYMS = {
    "EXCLUSION_DISTANCE": "EXCLUSION_BUFFER", "BACKGROUND_RATIO": "NEGATIVE_RATIO", "N_REPEATS": "REPEATS",
    "N_TREES": "TREES", "N_FOLDS": "FOLDS", "N_EPOCHS": "EPOCHS", "N_MEMBERS": "MEMBERS", "N_CLASSES": "CLASSES",
    "METRICS": "OUTPUT", "RANDOM_SEED": "SEED", "GPU": "DEVICE", "CUTOFF": "THRESHOLD", "PATCH": "PATCH_SIZE",
    "WINDOW_SIZE": "PATCH_SIZE", "BUFFER_DISTANCE": "RADIUS", "MEMBER_MAPS": "MAPS",
}


def split_algorithms(provider):
    algorithms = provider.algorithms()
    return ([a for a in algorithms if not isinstance(a, QgsProcessingModelAlgorithm)],
            [a for a in algorithms if isinstance(a, QgsProcessingModelAlgorithm)])


def test_the_main_output_is_output(deepprospect_provider):
    for algorithm in split_algorithms(deepprospect_provider)[0]:
        destinations = algorithm.destinationParameterDefinitions()
        if destinations:
            assert destinations[0].name() == "OUTPUT", algorithm.id()
        else:  # writes no file (the package installer): its first output is still OUTPUT
            assert algorithm.outputDefinitions()[0].name() == "OUTPUT", algorithm.id()


def test_keys_are_upper_case_and_never_a_retired_synonym(deepprospect_provider):
    for algorithm in split_algorithms(deepprospect_provider)[0]:
        for parameter in algorithm.parameterDefinitions():
            key = parameter.name()
            assert key == key.upper() and " " not in key, (algorithm.id(), key)
            assert key not in SYNONYMS, f"{algorithm.id()}: {key} is called {SYNONYMS.get(key)} elsewhere"
            assert not key.startswith(("N_", "NUM_")), f"{algorithm.id()}: {key} (a count is its plural noun)"


def test_a_key_has_one_kind_of_value_everywhere(deepprospect_provider):
    """An input key is one parameter type in every algorithm (and DEVICE the same choices); so is an output key
    other than OUTPUT, which is whatever each algorithm mainly makes."""
    kinds = defaultdict(set)
    for algorithm in split_algorithms(deepprospect_provider)[0]:
        for parameter in algorithm.parameterDefinitions():
            output = isinstance(parameter, QgsProcessingDestinationParameter)
            if parameter.name() != "OUTPUT":
                options = tuple(parameter.options()) if parameter.name() == "DEVICE" else ()
                kinds[(parameter.name(), output)].add((parameter.type(), options))
    assert {key: found for key, found in kinds.items() if len(found) > 1} == {}


def test_enums_store_names(deepprospect_provider):
    for algorithm in split_algorithms(deepprospect_provider)[0]:
        for parameter in algorithm.parameterDefinitions():
            if isinstance(parameter, QgsProcessingParameterEnum):
                assert parameter.usesStaticStrings(), f"{algorithm.id()} {parameter.name()}"


def test_pipeline_steps_use_real_keys_and_values(deepprospect_provider):
    for model in split_algorithms(deepprospect_provider)[1]:
        for child in model.childAlgorithms().values():
            algorithm = child.algorithm()
            for key, sources in child.parameterSources().items():
                parameter = algorithm.parameterDefinition(key)
                assert parameter is not None, f"{model.name()} {child.childId()}: no parameter {key}"
                if isinstance(parameter, QgsProcessingParameterEnum) and parameter.usesStaticStrings():
                    for source in sources:
                        if source.source() == MODEL_SOURCE_STATIC:
                            value = source.staticValue()  # None: not set (the default)
                            values = value if isinstance(value, list) else [value] if value is not None else []
                            assert set(values) <= set(parameter.options()), f"{child.childId()} {key}: {value}"
            outputs = {output.name() for output in algorithm.outputDefinitions()}
            for output in child.modelOutputs().values():
                assert output.childOutputName() in outputs, f"{child.childId()}: {output.childOutputName()}"
