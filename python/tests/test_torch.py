"""q8.from_torch, and PyTorch data feeding q8: DataLoaders, tensors; torch stays optional."""
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset

import q8

PKG_PARENT = os.path.dirname(os.path.dirname(q8.__file__))


def sqnr_db(ref, y):
    ref = ref.astype(np.float64)
    return 10 * np.log10(np.sum(ref ** 2) / max(np.sum((ref - y) ** 2), 1e-300))


def fashion_net():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Linear(32, 10),
    ).eval()


def python(code):
    env = dict(os.environ, PYTHONPATH=PKG_PARENT)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)


def test_import_q8_does_not_import_torch():
    p = python("import sys, q8; print('torch' in sys.modules)")
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "False"


def test_from_torch_without_torch_says_so():
    p = python("import sys; sys.modules['torch'] = None\n"
               "import q8\n"
               "try:\n    q8.from_torch(object(), None)\n"
               "except ImportError as e:\n    print('ImportError:', e)\n")
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("ImportError: q8.from_torch needs PyTorch, which is not installed")
    assert "python3-torch" in p.stdout


def test_from_torch_matches_pytorch(test_images):
    net = fashion_net()
    model = q8.from_torch(net, torch.randn(1, 1, 28, 28))
    assert not model.is_quantized and model.source == "<torch Sequential>"
    assert [(t.name, t.shape) for t in model.inputs] == [("input", (None, 1, 28, 28))]
    assert [(t.name, t.shape) for t in model.outputs] == [("output", (None, 10))]
    session = q8.Session(model)
    for batch in (1, 5):  # dynamic batch
        x = test_images[:batch]
        with torch.no_grad():
            ref = net(torch.from_numpy(x)).numpy()
        y = session.run(x)["output"]
        assert y.shape == ref.shape
        assert sqnr_db(ref, y) > 80  # fp32 against fp32
    assert not net.training


def test_from_torch_keeps_training_mode_and_accepts_numpy():
    net = fashion_net().train()
    model = q8.from_torch(net, np.zeros((1, 1, 28, 28), np.float32))
    assert net.training
    assert [n["op"] for n in model.info()["nodes"]][0] == "Conv"  # BatchNorm folded in eval mode
    assert "BatchNormalization" not in {n["op"] for n in model.info()["nodes"]}


def test_fixed_batch_and_names(test_images):
    model = q8.from_torch(fashion_net(), torch.zeros(2, 1, 28, 28), dynamic_batch=False, opset=13,
                          input_names=["image"], output_names=["logits"])
    assert [(t.name, t.shape) for t in model.inputs] == [("image", (2, 1, 28, 28))]
    s = q8.Session(model)
    assert s.run({"image": test_images[:2]})["logits"].shape == (2, 10)
    with pytest.raises(q8.Error) as e:
        s.run(test_images[:3])
    assert "has shape [3,1,28,28], the model expects [2,1,28,28]" in str(e.value)


class TwoInTwoOut(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 8, 3, padding=1)
        self.b = nn.Conv2d(3, 8, 1)

    def forward(self, x, y):
        s = torch.relu(self.a(x) + self.b(y))
        return s, torch.flatten(nn.functional.adaptive_avg_pool2d(s, 1), 1)


def test_several_inputs_and_outputs():
    net = TwoInTwoOut().eval()
    x, y = torch.randn(2, 3, 8, 8), torch.randn(2, 3, 8, 8)
    model = q8.from_torch(net, (x, y))
    assert [t.name for t in model.inputs] == ["input0", "input1"]
    assert [t.name for t in model.outputs] == ["output0", "output1"]
    out = q8.Session(model).run({"input0": x.numpy(), "input1": y.numpy()})
    with torch.no_grad():
        r0, r1 = net(x, y)
    assert sqnr_db(r0.numpy(), out["output0"]) > 80 and sqnr_db(r1.numpy(), out["output1"]) > 80
    # Calibration items for two inputs: tuples (x, y, label) from a DataLoader.
    loader = DataLoader(TensorDataset(torch.randn(16, 3, 8, 8), torch.randn(16, 3, 8, 8), torch.zeros(16)), batch_size=4)
    int8 = q8.quantize(model, loader)
    assert int8.is_quantized
    got = q8.Session(int8).run([x.numpy(), y.numpy()])
    assert sqnr_db(r1.numpy(), got["output1"]) > 20
    with pytest.raises(q8.Error) as e:
        q8.quantize(model, [x.numpy()])
    assert "the model has 2 inputs (input0, input1)" in str(e.value)


def test_unsupported_op_names_it():
    class Sine(nn.Module):
        def forward(self, x):
            return torch.sin(x)

    with pytest.raises(q8.Error) as e:
        q8.from_torch(Sine(), torch.zeros(1, 4))
    assert "Sin" in str(e.value) and "<torch Sine>" in str(e.value)


def test_not_a_module():
    with pytest.raises(TypeError):
        q8.from_torch(lambda x: x, torch.zeros(1))


def test_mobilenet_v2_from_dataloader():
    # torchvision's MobileNetV2 with random weights (nothing is downloaded), exported, quantized
    # from a DataLoader of random images, against PyTorch's own fp32 result.
    import torchvision

    torch.manual_seed(0)
    net = torchvision.models.mobilenet_v2(weights=None).eval()
    model = q8.from_torch(net, torch.randn(1, 3, 224, 224))
    gen = torch.Generator().manual_seed(1)
    images = torch.randn(8, 3, 224, 224, generator=gen)
    loader = DataLoader(TensorDataset(images, torch.zeros(8, dtype=torch.long)), batch_size=4)
    int8 = q8.quantize(model, loader)
    x = torch.randn(2, 3, 224, 224, generator=gen)
    with torch.no_grad():
        ref = net(x).numpy()
    fp32_out = q8.Session(model).run(x.numpy())["output"]
    int8_out = q8.Session(int8).run(x)["output"]  # a tensor goes in as it is
    assert sqnr_db(ref, fp32_out) > 60
    assert 20 < sqnr_db(ref, int8_out) < sqnr_db(ref, fp32_out)
    kernels = {n["kernel"] for n in int8.info()["nodes"]}
    assert any(k.startswith("qu8_") for k in kernels)
