"""Deposit points split into training and held-out sets (by a field or a second layer), plus barren points.

Shared by the algorithms that score maps against deposits (evaluate, report), so both read the sets alike.
"""

from __future__ import annotations

from contextlib import closing

from qgis.core import (
    NULL,
    QgsFeatureRequest,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterField,
    QgsProcessingParameterString,
)

from ..compat import REQUEST_NO_GEOMETRY, SOURCE_POINT
from ..core.errors import InputError
from .qgis_io import point_parameter, point_xy


class DepositSets:
    """Mixin for a DeepProspectAlgorithm: deposit, held-out and barren parameters and their reading."""

    DEPOSITS, SPLIT_FIELD, HELD_OUT_VALUES = "DEPOSITS", "SPLIT_FIELD", "HELD_OUT_VALUES"
    HELD_OUT_DEPOSITS, BARREN = "HELD_OUT_DEPOSITS", "BARREN"

    def add_deposit_parameters(self) -> None:
        point = [SOURCE_POINT]
        self.addParameter(QgsProcessingParameterFeatureSource(self.DEPOSITS, "Deposits", point))
        self.addParameter(QgsProcessingParameterField(
            self.SPLIT_FIELD, "Split field of the deposits (marks held-out deposits)",
            parentLayerParameterName=self.DEPOSITS, optional=True))
        self.addParameter(QgsProcessingParameterString(
            self.HELD_OUT_VALUES, "Held-out values of the split field (comma-separated)", defaultValue="test"))
        self.addParameter(QgsProcessingParameterFeatureSource(
            self.HELD_OUT_DEPOSITS, "Held-out deposits (instead of a split field)", point, optional=True))
        self.addParameter(QgsProcessingParameterFeatureSource(
            self.BARREN, "Barren points (drilled, no deposit)", point, optional=True))

    def _deposits(self, parameters, context, crs, feedback):
        """(training xy, held-out xy or None, report lines) from the split field or the held-out layer."""
        source = self.parameterAsSource(parameters, self.DEPOSITS, context)
        if source is None or source.featureCount() == 0:
            raise InputError("The deposit layer is missing or has no features; give the known deposits as points.")
        if {"kind", "label"} <= set(source.fields().names()):  # the sample layer of 'Training samples from deposits'
            source = source.materialize(QgsFeatureRequest().setFilterExpression("\"kind\" = 'deposit'"))
            feedback.pushInfo(f"The deposit layer is a training-sample layer: only its {source.featureCount()} "
                              "deposit cell(s) (kind = deposit) are deposits; its negatives and neighbours are not.")
            if source.featureCount() == 0:
                raise InputError("The training-sample layer holds no deposit cell (kind = deposit).")
        field = self.parameterAsString(parameters, self.SPLIT_FIELD, context)
        separate = self._points(parameters, self.HELD_OUT_DEPOSITS, context, crs, feedback)
        name = self._name(parameters, self.DEPOSITS, context)
        if field and separate is not None:
            raise InputError("Give held-out deposits either by a split field or as a separate layer, not both.")
        if separate is not None:
            training = point_xy(source, "deposit", crs, context, feedback)
            return training, separate[0], [("training deposits", f"{name}: {len(training)} point(s)"),
                                           ("held-out deposits", f"{separate[1]}: {len(separate[0])} point(s)")]
        if not field:
            training = point_xy(source, "deposit", crs, context, feedback)
            return training, None, [("deposits", f"{name}: {len(training)} point(s), all training")]
        values = {v.strip().lower() for v in self.parameterAsString(parameters, self.HELD_OUT_VALUES, context)
                  .split(",") if v.strip()}
        if not values:
            raise InputError("A split field is given but no held-out value: type the values that mark held-out "
                             "deposits (e.g. test).")
        held_ids, training_ids = set(), set()
        request = QgsFeatureRequest().setFlags(REQUEST_NO_GEOMETRY).setSubsetOfAttributes([field],
                                                                                                    source.fields())
        with closing(source.getFeatures(request)) as features:
            for feature in features:
                value = feature[field]
                is_held = value is not None and value != NULL and str(value).strip().lower() in values
                (held_ids if is_held else training_ids).add(feature.id())
        if not held_ids:
            feedback.pushWarning(f"No deposit has {field} = {', '.join(sorted(values))}: every deposit is training.")
        sets = [point_xy(source.materialize(QgsFeatureRequest().setFilterFids(list(ids))), "deposit", crs, context,
                         feedback) if ids else None for ids in (training_ids, held_ids)]
        lines = [("training deposits", f"{name}, {field} not in {', '.join(sorted(values))}: "
                                       f"{len(training_ids)} feature(s)"),
                 ("held-out deposits", f"{name}, {field} in {', '.join(sorted(values))}: {len(held_ids)} feature(s)")]
        return sets[0], sets[1], lines

    def _points(self, parameters, key, context, crs, feedback):
        """(xy, layer name) of an optional point layer, or None when unset or empty."""
        name = self._name(parameters, key, context)
        points = point_parameter(self, parameters, key, name, crs, context, feedback)
        return None if points is None else (points, name)

    def _name(self, parameters, key, context) -> str:
        layer = self.parameterAsVectorLayer(parameters, key, context)
        return layer.name() if layer is not None else key.lower()
