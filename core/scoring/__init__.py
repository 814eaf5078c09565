"""Scoring: metrics, map evaluation, baselines, spatial cross-validation and the report."""
