"""Processing algorithms: thin adapters between QGIS layers and the compute in core/ and models/."""
