"""q8.quantize: the bytes `q8 quantize` writes, from every form of calibration data; errors."""
import os
import struct
import subprocess
import sys

import numpy as np
import pytest

import q8
from conftest import CALIB_PATH, FP32_PATH, cli_error, file_bytes, run_cli


def saved(model, tmp_path, name):
    path = tmp_path / name
    model.save(path)
    return file_bytes(path)


def cli_quantize(tmp_path, *flags, calib=CALIB_PATH, name="cli.onnx"):
    out = tmp_path / name
    run_cli("quantize", FP32_PATH, "--calib", calib, "--output", out, *flags)
    return file_bytes(out)


def test_array_gives_the_cli_bytes(tmp_path, fp32, calib, cli_int8):
    int8 = q8.quantize(fp32, calib)
    assert int8.is_quantized and not fp32.is_quantized
    assert saved(int8, tmp_path, "py.onnx") == file_bytes(cli_int8)


def test_path_and_model_path_give_the_cli_bytes(tmp_path, cli_int8):
    assert saved(q8.quantize(FP32_PATH, CALIB_PATH), tmp_path, "py.onnx") == file_bytes(cli_int8)


def test_dataloader_gives_the_cli_bytes(tmp_path, fp32, calib, cli_int8):
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    labels = torch.arange(len(calib)) % 10
    loader = DataLoader(TensorDataset(torch.from_numpy(calib), labels), batch_size=24)  # 256 = 10 x 24 + 16
    seen = []

    class Counting:
        def __iter__(self):
            for batch in loader:
                seen.append(len(batch[0]))
                yield batch

    int8 = q8.quantize(fp32, Counting())
    assert seen == [24] * 10 + [16]
    assert saved(int8, tmp_path, "py.onnx") == file_bytes(cli_int8)


def test_list_generator_dict_and_single_samples_give_the_cli_bytes(tmp_path, fp32, calib, cli_int8):
    want = file_bytes(cli_int8)
    batches = [calib[i:i + 50] for i in range(0, len(calib), 50)]
    assert saved(q8.quantize(fp32, batches), tmp_path, "list.onnx") == want
    assert saved(q8.quantize(fp32, (b for b in batches)), tmp_path, "gen.onnx") == want
    assert saved(q8.quantize(fp32, [{"input": b, "label": 0} for b in batches]), tmp_path, "dict.onnx") == want
    assert saved(q8.quantize(fp32, [(b, np.zeros(len(b))) for b in batches]), tmp_path, "pairs.onnx") == want
    singles = [calib[i, :, :, :] for i in range(len(calib))]  # one sample each, no batch axis
    assert singles[0].shape == (1, 28, 28)
    assert saved(q8.quantize(fp32, singles), tmp_path, "singles.onnx") == want
    # Order does not matter either (the library's promise, kept through the binding).
    assert saved(q8.quantize(fp32, batches[::-1]), tmp_path, "reversed.onnx") == want


def test_float64_calibration_converts_as_the_cli_does(tmp_path, fp32, calib):
    c64 = calib.astype(np.float64) * (1 + 1e-9)
    np.save(tmp_path / "c64.npy", c64)
    assert saved(q8.quantize(fp32, c64), tmp_path, "py.onnx") == cli_quantize(tmp_path, calib=tmp_path / "c64.npy")


@pytest.mark.parametrize("kwargs,flags", [
    ({"method": "minmax"}, ["--method", "minmax"]),
    ({"method": "entropy", "per_channel": False}, ["--method", "entropy", "--per-tensor"]),
    ({"method": "mse", "exclude": ["/7/Gemm"]}, ["--method", "mse", "--exclude", "/7/Gemm"]),
    ({"method": "percentile", "percentile": 99.9, "exclude": "/0/Conv"}, ["--percentile", "99.9", "--exclude", "/0/Conv"]),
    ({"max_samples": 40, "threads": 2}, ["--max-samples", "40", "--threads", "2"]),
])
def test_options_give_the_cli_bytes(tmp_path, fp32, calib, kwargs, flags):
    py = saved(q8.quantize(fp32, calib, **kwargs), tmp_path, "py.onnx")
    assert py == cli_quantize(tmp_path, *flags)


def test_options_change_the_result(tmp_path, fp32, calib, cli_int8):
    # Not vacuous: the options above do reach the library.
    default = file_bytes(cli_int8)
    assert saved(q8.quantize(fp32, calib, method="minmax"), tmp_path, "a.onnx") != default
    assert saved(q8.quantize(fp32, calib, per_channel=False), tmp_path, "b.onnx") != default
    assert saved(q8.quantize(fp32, calib, max_samples=40), tmp_path, "c.onnx") != default
    kept = q8.quantize(fp32, calib, exclude=["/7/Gemm"]).info()["nodes"]
    assert any(n["name"] == "/7/Gemm" and n["op"] == "Gemm" for n in kept)


def test_max_samples_stops_reading_an_iterable(tmp_path, fp32, calib):
    taken = []

    def batches():
        for i in range(0, len(calib), 10):
            taken.append(i)
            yield calib[i:i + 10]

    py = saved(q8.quantize(fp32, batches(), max_samples=25), tmp_path, "py.onnx")
    assert taken == [0, 10, 20]
    assert py == cli_quantize(tmp_path, "--max-samples", "25")


def test_npy_folder_gives_the_cli_bytes(tmp_path, fp32, calib):
    folder = tmp_path / "calib"
    folder.mkdir()
    for i in range(0, 64, 16):
        np.save(folder / f"{i:03d}.npy", calib[i:i + 16])
    py = saved(q8.quantize(fp32, str(folder)), tmp_path, "py.onnx")
    assert py == cli_quantize(tmp_path, calib=folder)
    assert py == saved(q8.quantize(fp32, calib[:64]), tmp_path, "same.onnx")


def write_bmp(path, gray):
    """A 24-bit BMP of a uint8 grayscale image."""
    h, w = gray.shape
    row = (w * 3 + 3) & ~3
    pixels = b"".join(
        bytes(np.repeat(gray[y], 3)) + b"\0" * (row - 3 * w) for y in range(h - 1, -1, -1))
    header = struct.pack("<2sIHHI", b"BM", 54 + len(pixels), 0, 0, 54)
    info = struct.pack("<IiiHHIIiiII", 40, w, h, 1, 24, 0, len(pixels), 2835, 2835, 0, 0)
    path.write_bytes(header + info + pixels)


def test_image_folder_gives_the_cli_bytes(tmp_path, fp32):
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(3)
    for i in range(12):
        write_bmp(folder / f"img{i:02d}.bmp", rng.integers(0, 256, (32, 30), dtype=np.uint8))
    py = saved(q8.quantize(fp32, folder, size=(28, 28), mean=0.286, std=0.353), tmp_path, "py.onnx")
    assert py == cli_quantize(tmp_path, "--size", "28,28", "--mean", "0.286", "--std", "0.353", calib=folder)
    other = saved(q8.quantize(fp32, folder, size=28, mean=[0.5], std=[0.25]), tmp_path, "other.onnx")
    assert other != py


def test_fallback_auto_is_the_cli_fallback(tmp_path, fp32, calib):
    # Which nodes --fallback auto keeps depends on timings on this CPU (int8 slower than fp32),
    # so two runs may see a borderline node differently: up to three tries for the CLI and
    # Python to agree. Whatever the CLI keeps, excluding those nodes gives its bytes.
    for attempt in range(3):
        out = tmp_path / f"cli{attempt}.onnx"
        _, stdout, _ = run_cli("quantize", FP32_PATH, "--calib", CALIB_PATH, "--output", out, "--fallback", "auto")
        kept = [line.split("fp32 (fallback): ", 1)[1] for line in stdout.splitlines() if "fp32 (fallback): " in line]
        assert saved(q8.quantize(fp32, calib, exclude=kept), tmp_path, "excl.onnx") == file_bytes(out)
        auto = saved(q8.quantize(fp32, calib, fallback="auto"), tmp_path, f"py{attempt}.onnx")
        if auto == file_bytes(out):
            break
    assert auto == file_bytes(out)


def test_fallback_everything_is_the_cli_error(fp32, calib):
    # With min_sqnr 99 dB every layer falls back, and the error says the exclusions took every node.
    with pytest.raises(q8.Error) as e:
        q8.quantize(fp32, calib, fallback="auto", min_sqnr=99.0)
    assert str(e.value) == cli_error("quantize", FP32_PATH, "--calib", CALIB_PATH, "--output", "/tmp/unused.onnx",
                                     "--fallback", "auto", "--min-sqnr", "99")
    assert "nothing left to quantize" in str(e.value) and "are excluded" in str(e.value)


def test_progress(fp32, calib, capsys):
    calls = []
    q8.quantize(fp32, calib[:10], progress=lambda done, total: calls.append((done, total)))
    assert calls == [(i, 20) for i in range(1, 21)]  # two passes over 10 samples
    q8.quantize(fp32, calib[:4], progress=True)
    err = capsys.readouterr().err
    assert err.startswith("\rcalibrating [") and err.endswith("] 8/8\n") and "#" * 30 in err
    q8.quantize(fp32, calib[:4])  # stderr is not a terminal here: no bar
    assert capsys.readouterr().err == ""


def test_keyboard_interrupt_stops_calibration(fp32, calib):
    import _thread

    calls = []

    def interrupt(done, total):
        calls.append(done)
        if done == 3:
            _thread.interrupt_main()

    with pytest.raises(KeyboardInterrupt):
        q8.quantize(fp32, calib[:50], progress=interrupt)
    assert calls[-1] < 100  # stopped long before the 100 runs


def test_progress_bar_on_a_terminal():
    # A child process whose stderr is a pseudo-terminal draws the bar without being asked.
    import pty

    code = f"import numpy as np, q8; q8.quantize({FP32_PATH!r}, np.load({CALIB_PATH!r})[:5])"
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(q8.__file__)))
    master, slave = pty.openpty()
    p = subprocess.run([sys.executable, "-c", code], stderr=slave, stdout=subprocess.DEVNULL, env=env, timeout=120)
    os.close(slave)
    data = b""
    try:
        while True:
            chunk = os.read(master, 4096)
            if not chunk:
                break
            data += chunk
    except OSError:
        pass
    os.close(master)
    assert p.returncode == 0
    assert b"calibrating [" in data and b"10/10" in data


# ---- Errors -------------------------------------------------------------------------------------


def test_already_quantized_is_the_cli_message(int8, cli_int8, calib):
    with pytest.raises(q8.Error) as e:
        q8.quantize(int8, calib)
    cli = cli_error("quantize", cli_int8, "--calib", CALIB_PATH, "--output", "/tmp/unused.onnx")
    assert str(e.value) == cli


def test_wrong_shape_is_the_cli_message(tmp_path, fp32):
    bad = np.zeros((4, 3, 28, 28), np.float32)
    np.save(tmp_path / "bad.npy", bad)
    cli = cli_error("quantize", FP32_PATH, "--calib", tmp_path / "bad.npy", "--output", tmp_path / "o.onnx")
    with pytest.raises(q8.Error) as e:
        q8.quantize(fp32, str(tmp_path / "bad.npy"))
    assert str(e.value) == cli
    with pytest.raises(q8.Error) as e:
        q8.quantize(fp32, bad)
    assert "shape [4,3,28,28] does not fit input 'input' [?,1,28,28] (samples along axis 0)" in str(e.value)


def test_non_finite_is_the_cli_message(tmp_path, fp32, calib):
    bad = calib[:8].copy()
    bad[5, 0, 3, 3] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    with pytest.raises(q8.Error) as e:
        q8.quantize(fp32, bad)
    assert str(e.value) == cli_error("quantize", FP32_PATH, "--calib", tmp_path / "nan.npy", "--output",
                                     tmp_path / "o.onnx")
    assert "calibration sample 5" in str(e.value) and "NaN or Inf" in str(e.value)


def test_missing_calibration_file_is_the_cli_message(tmp_path, fp32):
    missing = tmp_path / "missing.npy"
    with pytest.raises(q8.Error) as e:
        q8.quantize(fp32, missing)
    assert str(e.value) == cli_error("quantize", FP32_PATH, "--calib", missing, "--output", tmp_path / "o.onnx")


def test_bad_options(fp32, calib):
    with pytest.raises(q8.Error) as e:
        q8.quantize(fp32, calib, method="best")
    assert str(e.value) == "calibration method 'best' is not one of minmax, percentile, entropy, mse"
    with pytest.raises(q8.Error) as e:
        q8.quantize(fp32, calib, percentile=30)
    assert "percentile must be in (50, 100]" in str(e.value)
    with pytest.raises(q8.Error) as e:
        q8.quantize(fp32, calib, fallback="sometimes")
    assert "fallback must be" in str(e.value)
    with pytest.raises(q8.Error):
        q8.quantize(fp32, calib, threads=0)
    with pytest.raises(TypeError):
        q8.quantize(fp32, calib, size=(28, 28))  # image options go with a folder
    with pytest.raises(TypeError):
        q8.quantize(fp32, 42)


def test_bad_calibration_data(fp32, calib):
    with pytest.raises(q8.Error) as e:
        q8.quantize(fp32, [])
    assert "the calibration set is empty" in str(e.value)
    with pytest.raises(q8.Error) as e:
        q8.quantize(fp32, [calib[:4], np.ascontiguousarray(calib[:4, :, :14])])
    assert "calibration batch 1" in str(e.value) and "does not fit input 'input'" in str(e.value)
    with pytest.raises(q8.Error) as e:
        q8.quantize(fp32, [calib[:4].astype(np.float16)])
    assert "unsupported dtype '<f2'" in str(e.value)
    with pytest.raises(q8.Error) as e:
        q8.quantize(fp32, [np.asfortranarray(calib[:4])])
    assert "Fortran-order arrays are not supported" in str(e.value)
    with pytest.raises(q8.Error) as e:
        q8.quantize(fp32, [{"image": calib[:4]}])
    assert "no entry for input 'input'" in str(e.value)
    with pytest.raises(q8.Error) as e:
        q8.quantize(fp32, [()])
    assert "holds 0 value(s); the model has 1 input(s)" in str(e.value)
