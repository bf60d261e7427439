"""batchpoint: a self-hostable, wire-compatible Azure Machine Learning batch endpoints server."""

__version__ = "0.1.0"
