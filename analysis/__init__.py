"""Reading, plotting and comparing causeway result files (see README.md)."""

from .loader import Axis, Experiment, ResultFile, ResultFileError, load_results

__all__ = ["Axis", "Experiment", "ResultFile", "ResultFileError", "load_results"]
