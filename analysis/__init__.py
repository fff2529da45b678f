"""Reading, plotting and comparing causeway result files (see README.md)."""

from .loader import Axis, Experiment, ResultFile, ResultFileError, load_results
from .xarray_view import to_xarray

__all__ = ["Axis", "Experiment", "ResultFile", "ResultFileError", "load_results", "to_xarray"]
