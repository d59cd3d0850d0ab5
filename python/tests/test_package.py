"""The package around the module: type stubs and docstrings, `cmake --install`, the example."""
import ast
import glob
import inspect
import os
import re
import subprocess
import sys

import pytest

import q8
from conftest import BINARY_DIR, SOURCE_DIR

STUB = os.path.join(SOURCE_DIR, "python", "q8", "__init__.pyi")


def stub_tree():
    with open(STUB) as f:
        return ast.parse(f.read())


def public(names):
    return {n for n in names if not n.startswith("_")}


def test_stubs_cover_the_public_api():
    tree = stub_tree()
    top = {node.name: node for node in tree.body if isinstance(node, (ast.FunctionDef, ast.ClassDef))}
    assert set(q8.__all__) <= set(top), set(q8.__all__) - set(top)
    for name, node in top.items():
        runtime = getattr(q8, name)
        if isinstance(node, ast.ClassDef):
            stubbed = {m.name for m in node.body if isinstance(m, ast.FunctionDef)}
            attrs = public(dir(runtime)) - public(dir(RuntimeError if issubclass(runtime, BaseException) else object))
            assert attrs <= stubbed, (name, attrs - stubbed)
            assert public(stubbed) <= attrs | {"__init__"}, (name, public(stubbed) - attrs)
        elif inspect.isfunction(runtime):  # Python functions: the same parameters, in order
            stub_params = [a.arg for a in node.args.args + node.args.kwonlyargs]
            assert stub_params == list(inspect.signature(runtime).parameters), name


def test_docstrings():
    for name in q8.__all__:
        obj = getattr(q8, name)
        assert obj.__doc__ and len(obj.__doc__.strip()) > 20, name
        if inspect.isclass(obj) and not issubclass(obj, BaseException):
            for attr in public(vars(obj)):
                member = getattr(obj, attr)
                assert getattr(member, "__doc__", None), f"{name}.{attr} has no docstring"
    text = q8.quantize.__doc__
    for word in ("calib", "DataLoader", "method", "per_channel", "exclude", "fallback", "min_sqnr", "progress"):
        assert word in text
    assert "run(inputs)" in q8.Session.run.__doc__ and "read in place" in q8.Session.run.__doc__
    assert "thread" in q8.Session.__doc__.lower()


def test_help_renders():
    p = subprocess.run([sys.executable, "-c", "import q8; help(q8)"], capture_output=True, text=True,
                       env=dict(os.environ, PAGER="cat"), timeout=60)
    assert p.returncode == 0, p.stderr
    for name in ("quantize", "Session", "from_torch", "analyze", "Model"):
        assert name in p.stdout


def test_cmake_install_puts_the_module_into_site_packages(tmp_path):
    prefix = tmp_path / "prefix"
    p = subprocess.run(["cmake", "--install", BINARY_DIR, "--prefix", str(prefix), "--component", "python"],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    found = glob.glob(str(prefix / "lib" / "python3*" / "*-packages" / "q8" / "__init__.py"))
    assert len(found) == 1, sorted(glob.glob(str(prefix / "**"), recursive=True))
    site = os.path.dirname(os.path.dirname(found[0]))
    assert re.search(r"lib/python3\.\d+/(site|dist)-packages$", site)
    pkg = os.listdir(os.path.join(site, "q8"))
    assert {"__init__.py", "__init__.pyi", "py.typed"} <= set(pkg) and any(f.startswith("_q8.") for f in pkg)
    code = ("import q8, numpy as np\n"
            f"assert q8.__file__.startswith({str(prefix)!r}), q8.__file__\n"
            f"m = q8.Model.load({os.path.join(SOURCE_DIR, 'models', 'fashion_cnn.onnx')!r})\n"
            "print(q8.Session(m).run(np.zeros((1, 1, 28, 28), np.float32))['output'].shape)\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = site
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "(1, 10)"


def run_example(*args):
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(q8.__file__)))
    p = subprocess.run([sys.executable, os.path.join(SOURCE_DIR, "examples", "pytorch_to_int8.py"), *args],
                       capture_output=True, text=True, env=env, timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr
    rows = {}
    for line in p.stdout.splitlines():
        m = re.match(r"(.+?)\s+(\d+\.\d+)%\s+(-?\d+\.\d+) dB\s+(\d+\.\d+) ms$", line)
        if m:
            rows[m.group(1)] = (float(m.group(2)), float(m.group(3)), float(m.group(4)))
    return p.stdout, rows


def test_example_fashion():
    out, rows = run_example("--iterations", "20")
    names = list(rows)
    assert names[0] == "PyTorch fp32" and names[1].startswith("PyTorch int8 (torch.ao FX, ")
    assert names[2:] == ["q8 fp32", "q8 int8"]
    # The embedded model's fp32 top-1 on these 500 images is 85.20 % (models/README.md).
    assert rows["PyTorch fp32"][0] == pytest.approx(85.2) and rows["q8 fp32"][0] == pytest.approx(85.2)
    assert abs(rows["q8 int8"][0] - 85.2) <= 1.0
    assert rows["q8 fp32"][1] > 80 and 30 < rows["q8 int8"][1] < 99  # SQNR against PyTorch fp32
    assert all(r[2] > 0 for r in rows.values())
    assert "speed-up over PyTorch fp32" in out


def test_example_mobilenet_v2():
    out, rows = run_example("--model", "mobilenet_v2", "--calib-samples", "4", "--test-samples", "4",
                            "--iterations", "2")
    assert list(rows)[2:] == ["q8 fp32", "q8 int8"] and "top-1 agreement with PyTorch fp32" in out
    assert rows["q8 fp32"][1] > 60 and rows["q8 int8"][1] > 15


def test_readme_five_lines():
    # The README's Python section starts with the five lines from a PyTorch module to an int8
    # session; they run here with random weights (nothing is downloaded) and a small loader.
    import numpy as np
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    with open(os.path.join(SOURCE_DIR, "README.md")) as f:
        readme = f.read()
    section = readme[readme.index("## Python\n"):]
    code = section[section.index("```python\n") + 10:section.index("```\n", section.index("```python\n"))]
    lines = [line for line in code.splitlines() if line.strip()]
    assert len(lines) == 5 and lines[0].startswith("import") and "q8.from_torch" in lines[1]
    code = code.replace('weights="DEFAULT"', "weights=None")
    torch.manual_seed(0)
    images = torch.randn(2, 3, 224, 224)
    loader = DataLoader(TensorDataset(torch.randn(4, 3, 224, 224), torch.zeros(4)), batch_size=2)
    scope = {"loader": loader, "images": images}
    exec(compile(code, "README.md", "exec"), scope)
    assert scope["int8"].is_quantized and scope["session"].threads == 4
    assert isinstance(scope["logits"], np.ndarray) and scope["logits"].shape == (2, 1000)
