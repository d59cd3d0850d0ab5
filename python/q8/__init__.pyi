# Type stubs for the q8 package (the public API of python/q8/__init__.py and its extension q8._q8).
import os
from typing import Any, Callable, Dict, Iterable, List, Literal, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt

__version__: str

PathLike = Union[str, bytes, os.PathLike]
ArrayLike = npt.ArrayLike
# One run's inputs: {input name: array}, arrays in input order, or one array (a one-input model).
Inputs = Union[Mapping[str, ArrayLike], Sequence[ArrayLike], ArrayLike]
# Calibration data: an array (N samples along axis 0), an iterable of batches (arrays, dicts,
# or (array, label, ...) tuples such as a DataLoader yields), or a path (.npy, a folder of .npy
# files or images).
Calibration = Union[ArrayLike, Iterable[Any], PathLike]
Method = Literal["minmax", "percentile", "entropy", "mse"]

class Error(RuntimeError):
    """Every failure q8 reports; str(e) is the q8 program's one-line message."""

class TensorInfo:
    """A model input or output."""
    @property
    def name(self) -> str: ...
    @property
    def shape(self) -> Tuple[Optional[int], ...]:
        """None marks a dimension fixed only at run time (a dynamic batch)."""
    @property
    def dtype(self) -> np.dtype: ...

class Model:
    """A loaded, validated and optimised ONNX model (fp32 or quantized)."""
    @staticmethod
    def load(path: PathLike) -> Model: ...
    @staticmethod
    def load_from_memory(data: Union[bytes, bytearray, memoryview], name: str = "<memory>") -> Model: ...
    def save(self, path: PathLike) -> None: ...
    @property
    def inputs(self) -> List[TensorInfo]: ...
    @property
    def outputs(self) -> List[TensorInfo]: ...
    @property
    def is_quantized(self) -> bool: ...
    @property
    def source(self) -> str: ...
    def info(self, batch: int = 1) -> Dict[str, Any]:
        """What `q8 info` prints: model, quantized, batch, inputs, outputs, nodes (name, op,
        input_shapes, output_shapes, params, macs, kernel), total_macs, cpu, isa."""

class Session:
    """Runs a model; one Session may be called from several threads (calls are serialised)."""
    def __init__(self, model: Union[Model, PathLike], threads: int = 1, isa: Optional[str] = None,
                 extra_outputs: Sequence[str] = ()) -> None: ...
    def run(self, inputs: Inputs) -> Dict[str, np.ndarray]:
        """{output name: float32 array}; C-contiguous float32 inputs are read without a copy."""
    def profile(self, inputs: Inputs, iterations: int = 20) -> List[Dict[str, Any]]:
        """Each plan step's median time: [{'node', 'op', 'ms'}]."""
    @property
    def inputs(self) -> List[TensorInfo]: ...
    @property
    def outputs(self) -> List[TensorInfo]: ...
    @property
    def output_names(self) -> List[str]: ...
    @property
    def model(self) -> Model: ...
    @property
    def threads(self) -> int: ...
    @property
    def isa(self) -> str: ...

class Analysis:
    """Per-layer precision and time of int8 against fp32 (`q8 analyze`)."""
    @property
    def layers(self) -> List[Dict[str, Any]]: ...
    @property
    def summary(self) -> Dict[str, Any]: ...
    @property
    def text(self) -> str: ...
    @property
    def json(self) -> str: ...
    def to_html(self) -> str: ...
    def save_html(self, path: PathLike) -> None: ...
    def fallback_nodes(self, min_sqnr: float = 20.0) -> List[str]: ...

def quantize(model: Union[Model, PathLike], calib: Calibration, method: Method = "percentile",
             per_channel: bool = True, exclude: Union[str, Iterable[str]] = (),
             fallback: Optional[Literal["none", "auto"]] = None, min_sqnr: float = 20.0, *,
             percentile: Optional[float] = None, threads: int = 1, max_samples: Optional[int] = None,
             size: Union[None, int, Tuple[int, int]] = None, mean: Union[None, float, Sequence[float]] = None,
             std: Union[None, float, Sequence[float]] = None,
             progress: Union[None, bool, Callable[[int, int], Any]] = None) -> Model:
    """Calibrate an fp32 model and return it in int8 (`q8 quantize`, byte for byte)."""

def analyze(model: Union[Model, PathLike], calib: Calibration, inputs: Optional[Inputs] = None,
            method: Method = "percentile", per_channel: bool = True, exclude: Union[str, Iterable[str]] = (), *,
            percentile: Optional[float] = None, threads: int = 1, iterations: int = 20, min_sqnr: float = 20.0,
            max_samples: int = 16, calib_max_samples: Optional[int] = None,
            size: Union[None, int, Tuple[int, int]] = None, mean: Union[None, float, Sequence[float]] = None,
            std: Union[None, float, Sequence[float]] = None) -> Analysis:
    """Where int8 loses precision and time, layer by layer (`q8 analyze`)."""

def from_torch(module: Any, example_inputs: Any, opset: int = 17, dynamic_batch: bool = True,
               input_names: Optional[Sequence[str]] = None, output_names: Optional[Sequence[str]] = None) -> Model:
    """Export a torch.nn.Module with torch.onnx.export (in memory) and load it."""

def active_isa() -> str: ...
def supported_isas() -> List[str]: ...
def cpu_description() -> str: ...
