"""The same battery of checks for every registered activation, plain and with the recipe."""

from __future__ import annotations

import copy
import io
import pickle
import warnings

import pytest
import torch

from zoo_cases import VARIANT_IDS, VARIANTS, make, perturb_

pytestmark = pytest.mark.parametrize(("name", "learnable"), VARIANTS, ids=VARIANT_IDS)

SHAPES = [(), (7,), (4, 3), (2, 3, 5, 4)]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)) or "scalar")
def test_forward_backward_shapes(name, learnable, shape):
    m = make(name, learnable)
    x = (torch.randn(shape) * 2).requires_grad_()
    y = m(x)
    assert y.shape == x.shape
    assert y.dtype == x.dtype
    y.sum().backward()
    assert x.grad is not None and x.grad.shape == x.shape
    assert torch.isfinite(x.grad).all()
    for pname, p in m.named_parameters():
        assert p.grad is not None, f"{pname} got no gradient"
        assert torch.isfinite(p.grad).all(), pname


def test_finite_at_extremes(name, learnable):
    m = make(name, learnable)
    x = torch.tensor([-1e4, -1e3, -30.0, 0.0, 30.0, 1e3, 1e4], requires_grad=True)
    y = m(x)
    assert torch.isfinite(y).all(), y
    y.sum().backward()
    assert torch.isfinite(x.grad).all(), x.grad
    for pname, p in m.named_parameters():
        assert torch.isfinite(p.grad).all(), (pname, p.grad)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=str)
def test_low_precision_keeps_dtype(name, learnable, dtype):
    m = perturb_(make(name, learnable))
    x32 = torch.randn(4, 3, 5) * 2
    x = x32.to(dtype).requires_grad_()
    y = m(x)
    assert y.dtype == dtype
    ref = m(x.detach().float())
    tol = 0.05 if dtype == torch.bfloat16 else 0.01
    torch.testing.assert_close(y.float(), ref, atol=tol, rtol=tol)
    y.float().sum().backward()
    assert x.grad.dtype == dtype
    for p in m.parameters():
        assert p.grad.dtype == p.dtype


def test_float32_keeps_dtype(name, learnable):
    m = make(name, learnable)
    x = torch.randn(6)
    assert m(x).dtype == torch.float32
    assert m.double()(x.double()).dtype == torch.float64


def test_state_dict_round_trip(name, learnable):
    src = perturb_(make(name, learnable), seed=3)
    dst = make(name, learnable)
    dst.load_state_dict(src.state_dict())
    x = torch.randn(3, 4)
    torch.testing.assert_close(dst(x), src(x), rtol=0, atol=0)
    buf = io.BytesIO()
    torch.save(src.state_dict(), buf)
    buf.seek(0)
    dst2 = make(name, learnable)
    dst2.load_state_dict(torch.load(buf, weights_only=True))
    torch.testing.assert_close(dst2(x), src(x), rtol=0, atol=0)


def test_deepcopy_and_pickle(name, learnable):
    src = perturb_(make(name, learnable), seed=4)
    x = torch.randn(3, 4)
    for clone in (copy.deepcopy(src), pickle.loads(pickle.dumps(src))):
        torch.testing.assert_close(clone(x), src(x), rtol=0, atol=0)
        for (n1, p1), (n2, p2) in zip(
            src.named_parameters(), clone.named_parameters(), strict=True
        ):
            assert n1 == n2 and p1 is not p2 and p1.data_ptr() != p2.data_ptr()
    assert repr(copy.deepcopy(src)) == repr(src)


def test_torch_compile_fullgraph(name, learnable):
    # aot_eager runs dynamo capture and AOT autograd (where graph breaks and
    # .item() calls show up) without paying for inductor's C++ compile per case.
    torch._dynamo.reset()
    m = perturb_(make(name, learnable), seed=5)
    compiled = torch.compile(m, backend="aot_eager", fullgraph=True)
    x = torch.randn(2, 3, 4, requires_grad=True)
    y = compiled(x)
    torch.testing.assert_close(y, m(x))
    (gx,) = torch.autograd.grad(y.sum(), x)
    (rx,) = torch.autograd.grad(m(x).sum(), x)
    torch.testing.assert_close(gx, rx)


def test_jit_trace(name, learnable):
    m = perturb_(make(name, learnable), seed=6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(m, torch.randn(2, 3, 4))
    x = torch.randn(2, 3, 4)
    torch.testing.assert_close(traced(x), m(x))


def test_onnx_export_matches(name, learnable, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    m = perturb_(make(name, learnable), seed=7)
    x = torch.randn(2, 3, 4, 5) * 3
    path = tmp_path / "act.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # the TorchScript-based exporter: ~0.1 s per model against ~2 s for the
        # dynamo one, which tests/test_paper.py exercises on the paper's functions
        torch.onnx.export(m, (x,), str(path), dynamo=False, opset_version=18,
                          input_names=["x"], output_names=["y"])
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {"x": x.numpy()})
    with torch.no_grad():
        ref = m(x)
    torch.testing.assert_close(torch.from_numpy(out), ref, atol=1e-5, rtol=1e-4)

