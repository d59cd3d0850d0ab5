"""q8.Session: results identical to `q8 run`, input forms, zero-copy input, the GIL, threads, errors."""
import sys
import threading
import time

import numpy as np
import pytest

import q8
from conftest import FP32_PATH, cli_error, run_cli


def cli_run(tmp_path, model_path, x, threads=1, name="x.npy"):
    xp, yp = tmp_path / name, tmp_path / ("y_" + name)
    np.save(xp, x)
    run_cli("run", model_path, "--input", xp, "--output", yp, "--threads", threads)
    return np.load(yp)


@pytest.mark.parametrize("which", ["fp32", "int8"])
@pytest.mark.parametrize("batch,threads", [(1, 1), (7, 2)])
def test_outputs_are_the_cli_bytes(tmp_path, which, batch, threads, fp32, int8, cli_int8, test_images):
    model, path = (fp32, FP32_PATH) if which == "fp32" else (int8, cli_int8)
    x = np.ascontiguousarray(test_images[10:10 + batch])
    out = q8.Session(model, threads=threads).run(x)
    assert list(out) == ["output"]
    y = out["output"]
    assert y.dtype == np.float32 and y.shape == (batch, 10) and y.flags.c_contiguous
    expected = cli_run(tmp_path, path, x, threads)
    assert y.tobytes() == expected.tobytes()
    assert np.abs(y).sum() > 0  # not vacuous: real logits


def test_session_from_path_equals_session_from_model(int8, cli_int8, test_images):
    x = test_images[:3]
    a = q8.Session(cli_int8).run(x)["output"]
    b = q8.Session(int8).run(x)["output"]
    assert a.tobytes() == b.tobytes()


def test_input_forms(int8_session, test_images):
    x = test_images[:2]
    ref = int8_session.run(x)["output"]
    for inputs in ({"input": x}, [x], (x,)):
        assert int8_session.run(inputs)["output"].tobytes() == ref.tobytes()


def test_float64_and_ints_are_converted_as_the_cli_converts(tmp_path, int8_session, cli_int8, test_images):
    x64 = test_images[:2].astype(np.float64) + 1e-9  # not exactly representable in float32
    y = int8_session.run(x64)["output"]
    assert y.tobytes() == cli_run(tmp_path, cli_int8, x64, name="x64.npy").tobytes()
    xi = (test_images[:2] * 3).astype(np.int32)
    y = int8_session.run(xi)["output"]
    assert y.tobytes() == cli_run(tmp_path, cli_int8, xi, name="xi.npy").tobytes()


def test_zero_copy_input(int8_session, test_images):
    x = np.ascontiguousarray(test_images[:4])
    [address] = int8_session._input_addresses(x)
    assert address == x.ctypes.data  # read in place
    [address] = int8_session._input_addresses({"input": x})
    assert address == x.ctypes.data
    ro = x.copy()
    ro.setflags(write=False)
    assert int8_session._input_addresses(ro) == [ro.ctypes.data]
    # A float64 array is converted: a new buffer, not the caller's.
    x64 = x.astype(np.float64)
    [address] = int8_session._input_addresses(x64)
    assert address != x64.ctypes.data
    # A slice along axis 0 of a C-order array is C-contiguous: read in place too.
    part = test_images[5:9]
    assert part.flags.c_contiguous
    assert int8_session._input_addresses(part) == [part.ctypes.data]
    assert int8_session.run(part)["output"].tobytes() == int8_session.run(part.copy())["output"].tobytes()


def test_outputs_own_their_memory(int8_session, test_images):
    a = int8_session.run(test_images[:1])["output"]
    b = int8_session.run(test_images[1:2])["output"]
    assert not np.shares_memory(a, b)
    assert a.base is not None  # the array keeps the session's result alive
    before = a.copy()
    int8_session.run(test_images[2:3])
    assert np.array_equal(a, before)
    a[0, 0] = 123.0  # writable, and ours


def test_batch_change_replans(int8_session, test_images):
    one = [int8_session.run(test_images[i:i + 1])["output"] for i in range(5)]
    five = int8_session.run(test_images[:5])["output"]
    assert five.tobytes() == np.concatenate(one).tobytes()


def test_threads_give_the_same_bytes(int8, test_images):
    x = test_images[:16]
    ref = q8.Session(int8, threads=1).run(x)["output"]
    assert q8.Session(int8, threads=2).run(x)["output"].tobytes() == ref.tobytes()
    assert q8.Session(int8, threads=2).threads == 2


def test_several_threads_call_one_session(int8, test_images):
    session = q8.Session(int8)
    batches = [np.ascontiguousarray(test_images[i:i + 1 + i % 3]) for i in range(24)]
    expected = [q8.Session(int8).run(b)["output"] for b in batches]
    results, errors = {}, []

    def worker(k):
        try:
            for rep in range(6):
                i = (k * 7 + rep * 5) % len(batches)
                results[(k, rep)] = (i, session.run(batches[i])["output"])
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len(results) == 36
    for i, y in results.values():
        assert y.tobytes() == expected[i].tobytes()


def test_run_releases_the_gil(int8, test_images):
    # While one thread runs a large batch, this thread keeps executing Python: it could not if
    # the GIL were held for the whole call.
    session = q8.Session(int8)
    x = np.ascontiguousarray(np.concatenate([test_images] * 2))  # 1000 images
    session.run(x[:2])
    span = {}

    def worker():
        span["t0"] = time.perf_counter()
        session.run(x)
        span["t1"] = time.perf_counter()

    ticks = []
    t = threading.Thread(target=worker)
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-4)
    try:
        t.start()
        while t.is_alive():
            ticks.append(time.perf_counter())
        t.join()
    finally:
        sys.setswitchinterval(old)
    t0, t1 = span["t0"], span["t1"]
    assert t1 - t0 > 0.02, "the batch ran too fast to tell"
    inside = [v for v in ticks if t0 < v < t1]
    assert inside and inside[-1] - inside[0] > 0.5 * (t1 - t0), (len(inside), t1 - t0)


def test_profile(int8_session, test_images):
    steps = int8_session.profile(test_images[:1], iterations=3)
    assert len(steps) >= 4
    assert all(set(s) == {"node", "op", "ms"} and s["ms"] >= 0 for s in steps)
    ops = {s["op"] for s in steps}
    assert "QuantizedConv" in ops or "Conv" in ops
    assert any(s["node"] == "/0/Conv" for s in steps)
    with pytest.raises(q8.Error):
        int8_session.profile(test_images[:1], iterations=0)


def test_extra_outputs(fp32, test_images):
    s = q8.Session(fp32, extra_outputs=["/1/Relu_output_0", "/2/MaxPool_output_0"])
    assert s.output_names == ["output", "/1/Relu_output_0", "/2/MaxPool_output_0"]
    out = s.run(test_images[:2])
    assert list(out) == s.output_names
    relu, pool = out["/1/Relu_output_0"], out["/2/MaxPool_output_0"]
    assert relu.shape == (2, 64, 28, 28) and pool.shape == (2, 64, 14, 14)
    assert relu.min() == 0 and relu.max() > 0
    assert np.array_equal(pool, relu.reshape(2, 64, 14, 2, 14, 2).max(axis=(3, 5)))
    assert out["output"].tobytes() == q8.Session(fp32).run(test_images[:2])["output"].tobytes()
    with pytest.raises(q8.Error) as e:
        q8.Session(fp32, extra_outputs=["nope"])
    assert "no intermediate tensor named 'nope'" in str(e.value)


def test_session_properties(int8_session, int8):
    assert int8_session.inputs == int8.inputs and int8_session.outputs == int8.outputs
    assert int8_session.threads == 1 and int8_session.isa == q8.active_isa()
    assert int8_session.model.source == int8.source


def test_forced_isa(int8, test_images):
    ref = q8.Session(int8).run(test_images[:3])["output"]
    for isa in q8.supported_isas():
        assert q8.Session(int8, isa=isa).run(test_images[:3])["output"].tobytes() == ref.tobytes()
    with pytest.raises(q8.Error):
        q8.Session(int8, isa="no-such-isa")


# ---- Errors: each a q8.Error with the q8 program's message ------------------------------------


def test_wrong_shape_is_the_cli_message(tmp_path, int8_session, cli_int8):
    x = np.zeros((1, 3, 28, 28), np.float32)
    with pytest.raises(q8.Error) as e:
        int8_session.run(x)
    np.save(tmp_path / "x.npy", x)
    assert str(e.value) == cli_error("run", cli_int8, "--input", tmp_path / "x.npy", "--output", tmp_path / "y.npy")
    assert "[1,3,28,28]" in str(e.value)
    assert not (tmp_path / "y.npy").exists()


def _after_name(message):
    # "x.npy: what" and "input 'input': what" name the array differently; what follows is the same.
    return message.split(": ", 1)[1]


@pytest.mark.parametrize("dtype", [np.float16, np.complex64, np.bool_, np.uint16])
def test_wrong_dtype_is_the_cli_message(tmp_path, int8_session, cli_int8, dtype):
    x = np.zeros((1, 1, 28, 28), dtype)
    with pytest.raises(q8.Error) as e:
        int8_session.run(x)
    assert str(e.value).startswith("input 'input': unsupported dtype")
    np.save(tmp_path / "x.npy", x)
    cli = cli_error("run", cli_int8, "--input", tmp_path / "x.npy", "--output", tmp_path / "y.npy")
    assert _after_name(str(e.value)) == _after_name(cli)


def test_big_endian_and_object_are_the_cli_messages(tmp_path, int8_session, cli_int8):
    for x in (np.zeros((1, 1, 28, 28), ">f4"), np.zeros((1, 1, 28, 28), object)):
        with pytest.raises(q8.Error) as e:
            int8_session.run(x)
        np.save(tmp_path / "x.npy", x, allow_pickle=True)
        cli = cli_error("run", cli_int8, "--input", tmp_path / "x.npy", "--output", tmp_path / "y.npy")
        assert _after_name(str(e.value)) == _after_name(cli)


def test_fortran_order_is_refused_as_the_cli_refuses_it(tmp_path, int8_session, cli_int8):
    x = np.asfortranarray(np.ones((2, 1, 28, 28), np.float32))
    with pytest.raises(q8.Error) as e:
        int8_session.run(x)
    assert str(e.value) == "input 'input': Fortran-order arrays are not supported (use np.ascontiguousarray)"
    np.save(tmp_path / "x.npy", x)
    cli = cli_error("run", cli_int8, "--input", tmp_path / "x.npy", "--output", tmp_path / "y.npy")
    assert "Fortran-order arrays are not supported" in cli


def test_non_contiguous_is_refused(int8_session, test_images):
    strided = test_images[::2][:3]  # every other image
    assert not strided.flags.c_contiguous
    with pytest.raises(q8.Error) as e:
        int8_session.run(strided)
    assert str(e.value) == "input 'input': non-contiguous arrays are not supported (use np.ascontiguousarray)"
    y = int8_session.run(np.ascontiguousarray(strided))["output"]
    assert y.shape == (3, 10)


def test_wrong_count_and_names(int8_session, test_images):
    x = test_images[:1]
    with pytest.raises(q8.Error) as e:
        int8_session.run([x, x])
    assert str(e.value).endswith("model takes 1 input(s), got 2")
    with pytest.raises(q8.Error) as e:
        int8_session.run([])
    assert str(e.value).endswith("model takes 1 input(s), got 0")
    with pytest.raises(q8.Error) as e:
        int8_session.run({"image": x})
    assert "'image' is not an input of the model (inputs: input)" in str(e.value)
    with pytest.raises(q8.Error) as e:
        int8_session.run({})
    assert "input 'input' is missing (inputs: input)" in str(e.value)


def test_missing_model_file_is_the_cli_message(tmp_path):
    missing = str(tmp_path / "nope.onnx")
    with pytest.raises(q8.Error) as e:
        q8.Session(missing)
    assert str(e.value) == cli_error("info", missing)


def test_bad_threads(int8):
    for n in (0, 5000):
        with pytest.raises(q8.Error) as e:
            q8.Session(int8, threads=n)
        assert "threads must be between 1 and 1024" in str(e.value)


def test_sessions_on_threads_share_one_model(int8, test_images):
    # The way to run in parallel: one Session per thread, one Model between them.
    x = [np.ascontiguousarray(test_images[i * 8:(i + 1) * 8]) for i in range(4)]
    expected = [q8.Session(int8).run(b)["output"] for b in x]
    got = [None] * 4

    def worker(i):
        s = q8.Session(int8)
        got[i] = [s.run(x[i])["output"] for _ in range(5)]

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(4):
        assert all(y.tobytes() == expected[i].tobytes() for y in got[i])
