"""Fixtures for the q8 Python tests.

Run through ctest (`ctest -R python`), which sets PYTHONPATH to build/python and Q8_CLI to the
q8 program, or by hand from the repository root:
  PYTHONPATH=build/python Q8_CLI=build/q8 /usr/bin/python3 -m pytest -q python/tests
"""
import os
import subprocess
import sys

import numpy as np
import pytest

SOURCE_DIR = os.environ.get("Q8_SOURCE_DIR") or os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BINARY_DIR = os.environ.get("Q8_BINARY_DIR") or os.path.join(SOURCE_DIR, "build")
MODELS = os.path.join(SOURCE_DIR, "models")
FP32_PATH = os.path.join(MODELS, "fashion_cnn.onnx")
CALIB_PATH = os.path.join(MODELS, "fashion_calib_256.npy")
TEST_PATH = os.path.join(MODELS, "fashion_test_500.npy")
LABELS_PATH = os.path.join(MODELS, "fashion_test_500_labels.npy")

import q8  # noqa: E402  (after the paths, so a failing import names the module, not a fixture)


def cli_path():
    path = os.environ.get("Q8_CLI") or os.path.join(BINARY_DIR, "q8")
    if not os.path.exists(path):
        pytest.fail(f"the q8 program is not at {path}: build the q8_cli target or set Q8_CLI")
    return path


def run_cli(*args, check=True):
    """Runs the q8 program; returns (returncode, stdout, stderr)."""
    p = subprocess.run([cli_path(), *map(str, args)], capture_output=True, text=True)
    if check and p.returncode != 0:
        raise AssertionError(f"q8 {' '.join(map(str, args))} exited {p.returncode}: {p.stderr}")
    return p.returncode, p.stdout, p.stderr


def cli_error(*args):
    """The one-line message the q8 program prints for an error (after 'q8: error: ')."""
    rc, _, err = run_cli(*args, check=False)
    assert rc == 1, f"q8 {' '.join(map(str, args))} exited {rc}, expected 1: {err}"
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("q8: error: "), err
    return lines[0][len("q8: error: "):]


def file_bytes(path):
    with open(path, "rb") as f:
        return f.read()


@pytest.fixture(scope="session")
def fp32():
    return q8.Model.load(FP32_PATH)


@pytest.fixture(scope="session")
def calib():
    return np.load(CALIB_PATH)


@pytest.fixture(scope="session")
def test_images():
    return np.load(TEST_PATH)


@pytest.fixture(scope="session")
def cli_int8(tmp_path_factory):
    """The int8 model the q8 program writes with the default options."""
    path = tmp_path_factory.mktemp("cli") / "fashion.int8.onnx"
    run_cli("quantize", FP32_PATH, "--calib", CALIB_PATH, "--output", path)
    return str(path)


@pytest.fixture(scope="session")
def int8(cli_int8):
    return q8.Model.load(cli_int8)


@pytest.fixture(scope="session")
def int8_session(int8):
    return q8.Session(int8)
