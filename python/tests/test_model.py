"""q8.Model: load, load_from_memory, save, inputs/outputs, info(), and its errors."""
import os
import pathlib
import re

import numpy as np
import pytest

import q8
from conftest import FP32_PATH, cli_error, file_bytes, run_cli


def test_error_is_a_runtime_error():
    assert issubclass(q8.Error, RuntimeError)
    assert q8.Error.__module__ == "q8"
    assert q8.Error.__doc__ and "q8: error" in q8.Error.__doc__


def test_load_inputs_outputs(fp32):
    assert not fp32.is_quantized
    assert fp32.source == FP32_PATH
    [x] = fp32.inputs
    assert (x.name, x.shape, x.dtype) == ("input", (None, 1, 28, 28), np.dtype(np.float32))
    [y] = fp32.outputs
    assert (y.name, y.shape, y.dtype) == ("output", (None, 10), np.dtype(np.float32))
    assert repr(x) == "TensorInfo(name='input', shape=(None, 1, 28, 28), dtype=float32)"
    assert "fp32" in repr(fp32) and "input [?,1,28,28]" in repr(fp32)


def test_load_accepts_pathlike():
    m = q8.Model.load(pathlib.Path(FP32_PATH))
    assert m.inputs == q8.Model.load(FP32_PATH).inputs


def test_load_from_memory_equals_load(tmp_path, fp32):
    data = file_bytes(FP32_PATH)
    for buf in (data, bytearray(data), memoryview(data)):
        m = q8.Model.load_from_memory(buf, "mem.onnx")
        assert m.source == "mem.onnx" and m.inputs == fp32.inputs and m.outputs == fp32.outputs
    # The same graph: saving either gives the same bytes.
    q8.Model.load_from_memory(data).save(tmp_path / "a.onnx")
    fp32.save(tmp_path / "b.onnx")
    assert file_bytes(tmp_path / "a.onnx") == file_bytes(tmp_path / "b.onnx")


def test_missing_file_is_the_cli_message(tmp_path):
    missing = str(tmp_path / "missing.onnx")
    with pytest.raises(q8.Error) as e:
        q8.Model.load(missing)
    assert str(e.value) == cli_error("info", missing)
    assert "missing.onnx" in str(e.value) and "\n" not in str(e.value)


def test_bad_model_is_the_cli_message(tmp_path):
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x08\x07not a model at all" * 10)
    with pytest.raises(q8.Error) as e:
        q8.Model.load(str(junk))
    assert str(e.value) == cli_error("info", junk)
    with pytest.raises(q8.Error) as e:
        q8.Model.load_from_memory(b"\x08\x07not a model at all" * 10, "junk.onnx")
    assert "junk.onnx" in str(e.value)


def test_save_fp32_and_int8_round_trip(tmp_path, fp32, int8, cli_int8):
    fp32.save(tmp_path / "fp32.onnx")
    assert q8.Model.load(tmp_path / "fp32.onnx").inputs == fp32.inputs
    int8.save(tmp_path / "int8.onnx")
    # Loading and saving the CLI's int8 file gives its bytes back.
    assert file_bytes(tmp_path / "int8.onnx") == file_bytes(cli_int8)
    assert q8.Model.load(tmp_path / "int8.onnx").is_quantized


def test_save_to_missing_folder_is_an_error(tmp_path, fp32):
    with pytest.raises(q8.Error) as e:
        fp32.save(tmp_path / "no" / "such" / "folder" / "m.onnx")
    assert "m.onnx" in str(e.value)


def _cli_info_rows(model_path, batch):
    _, out, _ = run_cli("info", model_path, "--batch", batch)
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("node "))
    end = next(i for i, line in enumerate(lines) if line.startswith("nodes: "))
    return out, [line for line in lines[start + 1:end] if line.strip()]


@pytest.mark.parametrize("which,batch", [("fp32", 1), ("int8", 1), ("int8", 4)])
def test_info_is_what_q8_info_prints(which, batch, fp32, int8, cli_int8):
    model, path = (fp32, FP32_PATH) if which == "fp32" else (int8, cli_int8)
    info = model.info(batch=batch)
    out, rows = _cli_info_rows(path, batch)
    assert info["model"] == path and info["batch"] == batch
    assert info["quantized"] == (which == "int8")
    assert info["inputs"] == [{"name": "input", "shape": [None, 1, 28, 28], "dtype": "float32"}]
    assert info["outputs"] == [{"name": "output", "shape": [None, 10], "dtype": "float32"}]
    assert len(info["nodes"]) == len(rows) > 3
    for node, row in zip(info["nodes"], rows):
        fields = row.split()
        assert fields[0] == node["name"] and fields[1] == node["op"]
        assert row.rstrip().endswith(node["kernel"])
        if node["params"]:
            assert node["params"] in row
        shapes = " ".join("[" + ",".join(map(str, s)) + "]" for s in node["output_shapes"])
        assert shapes in row
    m = re.search(r"total MACs per batch item: .* \((\d+)\)", out)
    assert int(m.group(1)) == info["total_macs"] == sum(n["macs"] for n in info["nodes"]) > 0
    assert f"kernel path: {info['isa']}" in out and f"cpu: {info['cpu']}" in out
    assert info["isa"] == q8.active_isa() and info["isa"] in q8.supported_isas()


def test_info_bad_batch(fp32):
    with pytest.raises(q8.Error):
        fp32.info(batch=0)


def test_empty_model_refused():
    # A default-constructed Model is not reachable from Python except through pickling tricks;
    # Session and quantize refuse non-models by type.
    with pytest.raises(TypeError):
        q8.Session(42)
    with pytest.raises(TypeError):
        q8.Model.load(42)


def test_module_metadata():
    assert re.fullmatch(r"\d+\.\d+\.\d+", q8.__version__)
    assert set(q8.__all__) <= set(dir(q8))
    assert os.path.basename(os.path.dirname(q8.__file__)) == "q8"
