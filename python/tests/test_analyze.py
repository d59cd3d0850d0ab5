"""q8.analyze: the records, text, JSON and HTML of `q8 analyze`, and its errors."""
import json

import numpy as np
import pytest

import q8
from conftest import CALIB_PATH, FP32_PATH, cli_error, run_cli

# Times, and the advice that depends on them, differ from run to run; everything else is a
# function of the data and options.
TIMED = {"int8_ms", "fp32_ms", "fp32_conversions_ms", "advice"}
TIMED_SUMMARY = {"int8_ms", "fp32_ms", "conversions_ms"}


def cli_json(*flags):
    _, out, _ = run_cli("analyze", FP32_PATH, "--calib", CALIB_PATH, "--json", "--iterations", 2, *flags)
    return json.loads(out)


def untimed(doc):
    return ([{k: v for k, v in layer.items() if k not in TIMED} for layer in doc["layers"]],
            {k: v for k, v in doc["summary"].items() if k not in TIMED_SUMMARY})


@pytest.fixture(scope="module")
def analysis(fp32, calib):
    return q8.analyze(fp32, calib, iterations=2)


def test_json_is_the_cli_json(analysis):
    doc = json.loads(analysis.json)
    assert untimed(doc) == untimed(cli_json())
    assert [layer["name"] for layer in doc["layers"]] == ["/0/Conv", "/3/Conv", "/5/GlobalAveragePool", "/7/Gemm"]


def test_layers_are_the_records(analysis):
    doc = json.loads(analysis.json)
    assert len(analysis.layers) == len(doc["layers"]) == 4
    for record, row in zip(analysis.layers, doc["layers"]):
        assert set(record) == set(row) | {"output_readers"}
        for k, v in row.items():
            if isinstance(v, float):
                assert record[k] == pytest.approx(v, rel=1e-5, abs=1e-6), k
            else:
                assert record[k] == v, k
        assert 20 < record["sqnr_db"] < 99 and isinstance(record["output_readers"], list)
    s = analysis.summary
    assert s["samples"] == 16 and s["method"] == "percentile" and s["per_channel"] is True
    assert s["isa"] == q8.active_isa() and s["threads"] == 1
    assert s["worst"] == doc["summary"]["worst"] and len(s["worst"]) == 3
    assert s["int8_ms"] > 0 and s["fp32_ms"] > 0


def test_text_is_the_cli_table(analysis):
    _, out, _ = run_cli("analyze", FP32_PATH, "--calib", CALIB_PATH, "--iterations", 2)
    ours, theirs = analysis.text.splitlines(), out.splitlines()
    assert str(analysis) == analysis.text
    assert len(ours) == len(theirs) and ours[0] == theirs[0]
    for a, b in zip(ours[1:5], theirs[1:5]):
        assert a.split()[:7] == b.split()[:7]  # node, op, output, MACs, own dB, cum dB, clipped
    assert [line for line in ours if line.startswith(("end-to-end", "worst"))] == \
           [line for line in theirs if line.startswith(("end-to-end", "worst"))]
    assert "4 layers" in repr(analysis)


def test_inputs_and_options_are_the_cli_ones(tmp_path, fp32, calib, test_images):
    x = test_images[:6]
    np.save(tmp_path / "x.npy", x)
    a = q8.analyze(fp32, calib, inputs=x, method="minmax", per_channel=False, exclude=["/7/Gemm"], iterations=2)
    cli = cli_json("--input", tmp_path / "x.npy", "--method", "minmax", "--per-tensor", "--exclude", "/7/Gemm")
    assert untimed(json.loads(a.json)) == untimed(cli)
    assert a.summary["samples"] == 6 and a.summary["per_channel"] is False
    assert [r["int8"] for r in a.layers if r["name"] == "/7/Gemm"] == [False]
    # The same inputs as a dict and a list.
    for inputs in ({"input": x}, [x]):
        b = q8.analyze(fp32, calib, inputs=inputs, method="minmax", per_channel=False, exclude=["/7/Gemm"],
                       iterations=2)
        assert untimed(json.loads(b.json)) == untimed(cli)


def test_dataloader_calibration(fp32, calib, analysis):
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    loader = DataLoader(TensorDataset(torch.from_numpy(calib), torch.zeros(len(calib))), batch_size=64)
    a = q8.analyze(fp32, loader, iterations=2)
    assert untimed(json.loads(a.json)) == untimed(json.loads(analysis.json))


def test_save_html(tmp_path, analysis):
    path = tmp_path / "report.html"
    analysis.save_html(path)
    html = path.read_text()
    assert html == analysis.to_html()
    assert html.lstrip().lower().startswith("<!doctype html") and "</html>" in html
    for layer in analysis.layers:
        assert layer["name"] in html
    assert "<script" not in html.lower()
    with pytest.raises(q8.Error):
        analysis.save_html(tmp_path / "no" / "such" / "dir" / "r.html")


def test_fallback_nodes(analysis):
    rows = {r["name"] for r in analysis.layers}
    readers = {n for r in analysis.layers for n in r["output_readers"]}
    assert set(analysis.fallback_nodes(99.0)) == rows | readers  # every row is below 99 dB
    assert "/2/MaxPool" in readers
    low = set(analysis.fallback_nodes(-99.0))  # none below -99 dB: only timing
    assert low <= rows | readers
    assert analysis.fallback_nodes(99.0) == sorted(analysis.fallback_nodes(99.0))


def test_errors(fp32, int8, cli_int8, calib, test_images):
    with pytest.raises(q8.Error) as e:
        q8.analyze(int8, calib)
    assert str(e.value) == cli_error("analyze", cli_int8, "--calib", CALIB_PATH)
    with pytest.raises(q8.Error) as e:
        q8.analyze(fp32, calib, inputs=np.zeros((2, 1, 27, 28), np.float32), iterations=1)
    assert "has shape [1,1,27,28], the model expects [?,1,28,28]" in str(e.value)
    with pytest.raises(q8.Error) as e:
        q8.analyze(fp32, calib, inputs=[test_images[:2], test_images[:2]], iterations=1)
    assert "model takes 1 input(s), got 2" in str(e.value)
    with pytest.raises(q8.Error):
        q8.analyze(fp32, calib, iterations=0)
    with pytest.raises(q8.Error):
        q8.analyze(fp32, calib, method="nope")
