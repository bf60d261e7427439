"""Scoring scripts batchpoint supplies itself (the MLflow scorer)."""
