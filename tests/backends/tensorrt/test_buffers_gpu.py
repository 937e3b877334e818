"""The pycuda side of the TensorRT runtime (buffers, pinned host memory, device views), which needs a
CUDA GPU and pycuda but not TensorRT: it runs on GPU machines whose TensorRT cannot run engines."""
from __future__ import annotations

import numpy as np
import pytest

from netdsl.errors import ShapeError


def _cuda():
    from netdsl.backends.tensorrt import gpu
    devs, why = gpu.devices()
    if not devs:
        pytest.skip(why)
    try:
        import pycuda.driver as cuda
    except ImportError as e:
        pytest.skip(f"pycuda not installed ({e})")
    try:
        import pycuda.autoinit  # noqa: F401
    except Exception as e:  # no driver / no device
        pytest.skip(f"no CUDA GPU usable by pycuda ({type(e).__name__}: {e})")
    return cuda


def test_buffer_grows_and_round_trips_through_pinned_memory():
    cuda = _cuda()
    from netdsl.backends.tensorrt.runtime import _Buffer
    buf = _Buffer(cuda, np.dtype(np.float32))
    rng = np.random.default_rng(0)
    buf.ensure((2, 3))
    first_ptr, first_cap = buf.ptr, buf.capacity
    buf.ensure((1, 3))  # smaller: reused
    assert (buf.ptr, buf.capacity) == (first_ptr, first_cap)
    buf.ensure((4, 5))  # larger: grown
    assert buf.capacity >= 4 * 5 * 4
    x = rng.standard_normal((4, 5)).astype(np.float32)
    host = buf.host_view()
    host[...] = x
    stream = cuda.Stream()
    cuda.memcpy_htod_async(buf.device, buf.host, stream)
    back = np.empty_like(x)
    cuda.memcpy_dtoh_async(back, buf.device, stream)
    stream.synchronize()
    np.testing.assert_array_equal(back, x)


def test_device_view_is_read_by_torch_without_copy():
    cuda = _cuda()
    torch = pytest.importorskip("torch", reason="torch not installed")
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA device")
    from netdsl.backends.tensorrt.runtime import DeviceView, _Buffer, _cai
    buf = _Buffer(cuda, np.dtype(np.float32))
    buf.ensure((3, 4))
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    cuda.memcpy_htod(buf.device, x)
    view = DeviceView(buf.ptr, (3, 4), np.dtype(np.float32), owner=buf)
    t = torch.as_tensor(view, device="cuda")
    assert t.data_ptr() == buf.ptr  # zero copy
    np.testing.assert_array_equal(t.cpu().numpy(), x)
    # and back: a torch tensor as an engine input is taken by pointer
    y = torch.randn(2, 5, device="cuda")
    ptr, shape, dtype = _cai("y", y)
    assert ptr == y.data_ptr() and shape == (2, 5) and dtype == np.float32
    with pytest.raises(ShapeError, match="not C-contiguous"):
        _cai("yt", y.t())
