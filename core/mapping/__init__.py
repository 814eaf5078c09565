"""Mapping: prospectivity maps read window by window, ensembles, anomaly classes and targets."""
