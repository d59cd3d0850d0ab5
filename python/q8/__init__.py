"""q8: an INT8 inference engine for CNNs exported to ONNX, from Python.

From a PyTorch module to an int8 session::

    import q8
    fp32 = q8.from_torch(net, torch.randn(1, 3, 224, 224))  # torch.onnx.export, in memory
    int8 = q8.quantize(fp32, loader)                         # a DataLoader of (images, labels)
    session = q8.Session(int8, threads=4)
    logits = session.run(images)["output"]

The module is a thin layer over q8's C++ API: models, files, numbers and error messages are the
q8 program's own (``q8 quantize`` and ``q8.quantize`` write the same bytes). Every failure is a
``q8.Error`` (a ``RuntimeError``) carrying the one line the program prints after ``q8: error:``.

- ``Model.load(path)``, ``model.save(path)``, ``model.inputs``, ``model.outputs``, ``model.info()``
- ``quantize(model, calib, ...)``: calibrate and return the int8 model
- ``Session(model, threads=1)``: ``session.run(inputs)`` -> ``{name: numpy array}``, ``session.profile()``
- ``analyze(model, calib, ...)``: per-layer SQNR, clipping, int8/fp32 time and advice
- ``from_torch(module, example_inputs)``: export a PyTorch module and load it
"""
import io
import os
import sys

from ._q8 import (
    Analysis,
    Error,
    Model,
    Session,
    TensorInfo,
    __version__,
    active_isa,
    cpu_description,
    supported_isas,
)
from . import _q8

__all__ = [
    "Analysis",
    "Error",
    "Model",
    "Session",
    "TensorInfo",
    "active_isa",
    "analyze",
    "cpu_description",
    "from_torch",
    "quantize",
    "supported_isas",
]

for _cls in (Analysis, Error, Model, Session, TensorInfo):
    _cls.__module__ = __name__
del _cls


def _progress_bar(stream):
    """The q8 program's calibration progress bar, drawn on `stream`."""

    def draw(done, total):
        width = 30
        filled = width * done // max(total, 1)
        stream.write(f"\rcalibrating [{'#' * filled}{' ' * (width - filled)}] {done}/{total}")
        if done == total:
            stream.write("\n")
        stream.flush()

    return draw


def _progress_callback(progress):
    if progress is None:
        stream = sys.stderr
        isatty = getattr(stream, "isatty", None)
        return _progress_bar(stream) if stream is not None and isatty is not None and isatty() else None
    if progress is True:
        return _progress_bar(sys.stderr)
    if progress is False:
        return None
    if callable(progress):
        return progress
    raise TypeError("progress must be None, True, False or a callable(done, total)")


def _numpy(x):
    """An array-like as numpy sees it; a PyTorch tensor is detached and moved to the CPU first
    (without importing torch)."""
    if hasattr(x, "detach") and hasattr(x, "cpu") and hasattr(x, "numpy"):
        return x.detach().cpu().numpy()
    return x


def _is_array(x):
    return hasattr(x, "__array__") or hasattr(x, "__array_interface__") or hasattr(x, "__array_struct__")


def _batch_arrays(item, names):
    """The model's input arrays in one calibration item: an array (a one-input model), a dict
    {input name: array}, or a tuple or list whose first len(names) entries are the inputs (the
    rest, such as a DataLoader's labels, is ignored)."""
    if isinstance(item, dict):
        missing = [n for n in names if n not in item]
        if missing:
            raise Error(f"calibration item has no entry for input '{missing[0]}' (inputs: {', '.join(names)})")
        return [_numpy(item[n]) for n in names]
    if isinstance(item, (tuple, list)) and not _is_array(item):
        if len(item) < len(names):
            raise Error(f"calibration item holds {len(item)} value(s); the model has {len(names)} input(s) "
                        f"({', '.join(names)})")
        return [_numpy(x) for x in item[: len(names)]]
    if len(names) != 1:
        raise Error(f"the model has {len(names)} inputs ({', '.join(names)}): give each calibration item "
                    "as a tuple of arrays in input order or a dict")
    return [_numpy(item)]


def _calibration(model, calib, max_samples, size, mean, std):
    """Calibration data for `model` from any form quantize() accepts."""
    if isinstance(calib, (str, bytes, os.PathLike)):
        return _q8._load_calibration(model, calib, max_samples or 0, _pair(size), _floats(mean), _floats(std))
    if size is not None or mean is not None or std is not None:
        raise TypeError("size, mean and std apply to a folder of images; calib here is arrays")
    names = [t.name for t in model.inputs]
    builder = _q8._CalibrationBuilder(model, max_samples or 0)
    items = [calib] if (_is_array(calib) or isinstance(calib, dict) or hasattr(calib, "detach")) else calib
    try:
        iterator = iter(items)
    except TypeError:
        raise TypeError(f"calib must be an array, an iterable of arrays or (array, label) pairs, or a path; "
                        f"got {type(calib).__name__}") from None
    for item in iterator:
        if builder.add(_batch_arrays(item, names)):
            break
    return builder.finish()


def _pair(size):
    if size is None:
        return []
    if isinstance(size, int):
        return [size, size]
    return [int(v) for v in size]


def _floats(v):
    if v is None:
        return []
    if isinstance(v, (int, float)):
        return [float(v)]
    return [float(x) for x in v]


def _model(model):
    return model if isinstance(model, Model) else Model.load(model)


def _names(exclude):
    if isinstance(exclude, str):
        return [n for n in exclude.split(",") if n]
    return list(exclude)


def quantize(model, calib, method="percentile", per_channel=True, exclude=(), fallback=None, min_sqnr=20.0, *,
             percentile=None, threads=1, max_samples=None, size=None, mean=None, std=None, progress=None):
    """Calibrate an fp32 model and return it in int8 (what ``q8 quantize`` writes, byte for byte).

    model        a q8.Model (fp32), or a path to an ONNX file.
    calib        the calibration samples, in any of these forms:
                 - a numpy array (or a CPU tensor) holding N samples along axis 0 (one-input model);
                 - an iterable of batches: a list of arrays, a generator, a PyTorch DataLoader. Each
                   batch is an array, a dict {input name: array}, or a tuple/list whose first
                   entries are the model's inputs in order (so DataLoader's ``(images, labels)``
                   pairs work as they are; the labels are ignored). A batch holds several samples
                   along axis 0, or one sample without the batch axis;
                 - a path: an .npy file, a folder of .npy files, or a folder of PNG/JPEG/BMP images
                   (resized to ``size``, scaled to [0, 1], then ``(x - mean) / std`` per channel).
                 Arrays are float32 (float64, int64, int32, uint8 and int8 are converted), C order.
    method       'minmax', 'percentile' (default), 'entropy' or 'mse': how activation ranges are chosen.
    per_channel  int8 weights per output channel (default) or one scale per tensor (False).
    exclude      node names to keep in fp32 (an iterable, or one comma-separated string).
    fallback     None or 'none'; 'auto' keeps in fp32 the nodes that are slower in int8 on this CPU
                 or whose own SQNR is below ``min_sqnr`` dB (``q8 quantize --fallback auto``).
    percentile   for method='percentile': the share of values (50, 100] the range keeps;
                 None: the library's default, 99.99.
    threads      threads for calibration; the result does not depend on it.
    max_samples  use only the first N samples (an iterable is not read further).
    progress     None: a progress bar on stderr when it is a terminal; True/False: always/never;
                 or a callable(done, total) called after each calibration run.

    Returns the int8 q8.Model. Results do not depend on sample order or batching. Raises
    q8.Error for empty or non-finite data, data that does not fit the model, or a model that is
    already quantized.
    """
    model = _model(model)
    fallback = "none" if fallback is None else fallback
    data = _calibration(model, calib, max_samples, size, mean, std)
    return _q8._quantize(model, data, method, percentile, bool(per_channel), _names(exclude), int(threads),
                         fallback, float(min_sqnr), _progress_callback(progress))


def analyze(model, calib, inputs=None, method="percentile", per_channel=True, exclude=(), *, percentile=None,
            threads=1, iterations=20, min_sqnr=20.0, max_samples=16, calib_max_samples=None, size=None, mean=None,
            std=None):
    """Explain, layer by layer, where int8 loses precision and time (``q8 analyze``).

    Quantizes ``model`` on ``calib`` as quantize() would (same calib forms and options), then
    measures every Conv, Gemm, MatMul (and Add or pool run in int8) on ``inputs``: its own SQNR
    (the node alone in int8, fed the fp32 network's values), the cumulative SQNR, the share of
    results clipped, int8 and fp32 time on this CPU, and advice.

    inputs       samples to measure on: an array (one-input model), a list of arrays in input
                 order, or a dict {input name: array}, samples along axis 0. Default: the first
                 ``max_samples`` (16) calibration samples.
    iterations   profiled runs per model for the times (median per step).
    min_sqnr     own SQNR (dB) below which a row gets accuracy advice.
    calib_max_samples  use only the first N calibration samples.

    Returns a q8.Analysis: ``.layers`` (a list of dicts), ``.summary`` (a dict), ``.text`` and
    ``.json`` (what ``q8 analyze`` and ``q8 analyze --json`` print), ``.to_html()`` and
    ``.save_html(path)`` (``--report``), ``.fallback_nodes(min_sqnr)``.
    """
    model = _model(model)
    data = _calibration(model, calib, calib_max_samples, size, mean, std)
    return _q8._analyze(model, data, inputs, method, percentile, bool(per_channel), _names(exclude),
                        int(threads), int(iterations), float(min_sqnr), int(max_samples))


def from_torch(module, example_inputs, opset=17, dynamic_batch=True, input_names=None, output_names=None):
    """Export a PyTorch module to ONNX in memory (``torch.onnx.export``) and load it as a q8.Model.

    module          a ``torch.nn.Module``; it is exported in eval mode.
    example_inputs  a tensor (or numpy array), or a tuple of them, as the module's forward takes them.
    opset           the ONNX opset to export with (q8 reads 11 to 21).
    dynamic_batch   mark axis 0 of every input and output as dynamic, so the model runs any batch.
    input_names     names of the graph's inputs; default 'input' (or 'input0', 'input1', ...).
    output_names    names of the graph's outputs; default 'output' (or 'output0', ...).

    torch is imported here only: ``import q8`` does not need it. Raises ImportError when PyTorch
    is missing, q8.Error when q8 cannot run the exported graph (naming the node and op).
    """
    try:
        import torch
    except ImportError as e:
        raise ImportError(
            "q8.from_torch needs PyTorch, which is not installed (Debian: apt-get install python3-torch; "
            "or pip install torch). Without it, export with torch.onnx.export elsewhere and use q8.Model.load."
        ) from e
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"from_torch takes a torch.nn.Module, got {type(module).__name__}")
    args = tuple(example_inputs) if isinstance(example_inputs, (tuple, list)) else (example_inputs,)
    args = tuple(torch.from_numpy(a) if not isinstance(a, torch.Tensor) and _is_array(a) else a for a in args)
    if input_names is None:
        input_names = ["input"] if len(args) == 1 else [f"input{i}" for i in range(len(args))]
    if output_names is None:
        with torch.no_grad():
            was_training = module.training
            module.eval()
            try:
                out = module(*args)
            finally:
                module.train(was_training)
        n = len(out) if isinstance(out, (tuple, list)) else 1
        output_names = ["output"] if n == 1 else [f"output{i}" for i in range(n)]
    dynamic_axes = None
    if dynamic_batch:
        dynamic_axes = {name: {0: "batch"} for name in list(input_names) + list(output_names)}
    buffer = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(module, args, buffer, opset_version=int(opset), input_names=list(input_names),
                          output_names=list(output_names), dynamic_axes=dynamic_axes, do_constant_folding=True)
    return Model.load_from_memory(buffer.getvalue(), f"<torch {type(module).__name__}>")
