"""Model import, the float graph IR and its reference forward pass, conversion passes, and the
mapping of a converted network onto chip cores.

``load_model(path)`` → :class:`Graph`; ``convert(graph, calibration, method=…, weight_bits=…,
profile=…)`` → :class:`hw_models.network.CoreNetwork`; ``feasibility(graph_or_net, profile)`` →
a report.  Importing this package needs neither ``onnx`` nor ``nir``: they are imported only when
a file of that kind is read.
"""

from .builder import GraphBuilder
from .graph import KINDS, Graph, Layer, infer_shape, same_padding
from .keras_import import load_keras
from .load import load_model
from .nir_import import graph_from_nir, load_nir
from .onnx_import import load_onnx

# ``convert`` is both a submodule and its main function: importing the function here binds the
# package attribute to the function (a later ``import converter.convert`` does not rebind it).
from .convert import convert  # noqa: E402
from .feasibility import FeasibilityReport, feasibility  # noqa: E402
from .mapping import MappingReport, map_to_cores  # noqa: E402

__all__ = ["Graph", "Layer", "KINDS", "infer_shape", "same_padding", "GraphBuilder",
           "load_model", "load_keras", "load_onnx", "load_nir", "graph_from_nir",
           "convert", "feasibility", "FeasibilityReport", "map_to_cores",
           "MappingReport"]
