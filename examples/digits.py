"""README command 1: train a small CNN with a plain NumPy training loop, deploy it with netdsl on OpenVINO.

    python examples/digits.py                 # train, save out/digits.h5, deploy, write out/digits.xml

1. A "custom training framework" (NumPy: im2col convolution, ReLU, max-pool, dense, softmax
   cross-entropy, Adam; real forward and backward passes) trains on scikit-learn's bundled 8x8
   digits (no download) and saves an HDF5 checkpoint with one dataset per weight, named by layer
   (``conv1/weight``, ``conv1/bias``, ...; layouts as netdsl uses them: OIHW, (out, in)).
2. The same network is defined in netdsl, the checkpoint is bound BY NAME from the HDF5 file,
   compiled with OpenVINO (the reference NumPy backend if openvino is missing, with a note),
   evaluated on the held-out split (accuracy must be >= 0.95), timed per image, and written as
   OpenVINO IR (``out/digits.xml`` + ``.bin``).
3. The network is quantized to INT8 (calibrated on 512 training images) and evaluated on OpenVINO and
   ONNX Runtime.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

# (name, shape) of every weight, in the checkpoint and in the netdsl network alike
ARCH = [("conv1/weight", (16, 1, 3, 3)), ("conv1/bias", (16,)),
        ("conv2/weight", (32, 16, 3, 3)), ("conv2/bias", (32,)),
        ("fc1/weight", (64, 128)), ("fc1/bias", (64,)),
        ("fc2/weight", (10, 64)), ("fc2/bias", (10,))]


# =============================================================================================
# 1. The "custom training framework": NumPy forward/backward
# =============================================================================================
def im2col(x: np.ndarray, k: int = 3, pad: int = 1) -> np.ndarray:
    """(N, C, H, W) -> (N*H*W, C*k*k) patches of a stride-1 'same' convolution."""
    n, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    win = sliding_window_view(xp, (k, k), axis=(2, 3))  # N C H W k k
    return win.transpose(0, 2, 3, 1, 4, 5).reshape(n * h * w, c * k * k)


def col2im(dcols: np.ndarray, shape: tuple, k: int = 3, pad: int = 1) -> np.ndarray:
    """Adjoint of :func:`im2col`: scatter-add patch gradients back to the input."""
    n, c, h, w = shape
    d = dcols.reshape(n, h, w, c, k, k)
    dx = np.zeros((n, c, h + 2 * pad, w + 2 * pad), dcols.dtype)
    for i in range(k):
        for j in range(k):
            dx[:, :, i:i + h, j:j + w] += d[:, :, :, :, i, j].transpose(0, 3, 1, 2)
    return dx[:, :, pad:pad + h, pad:pad + w]


def conv_fwd(x, w, b):
    n, _, h, wd = x.shape
    cols = im2col(x)
    y = cols @ w.reshape(w.shape[0], -1).T + b
    return y.reshape(n, h, wd, -1).transpose(0, 3, 1, 2), cols


def conv_bwd(dy, cols, x_shape, w):
    o = w.shape[0]
    dyf = dy.transpose(0, 2, 3, 1).reshape(-1, o)
    dw = (dyf.T @ cols).reshape(w.shape)
    db = dyf.sum(0)
    dx = col2im(dyf @ w.reshape(o, -1), x_shape)
    return dx, dw, db


def pool_fwd(x):
    n, c, h, w = x.shape
    r = x.reshape(n, c, h // 2, 2, w // 2, 2)
    y = r.max(axis=(3, 5))
    mask = r == y[:, :, :, None, :, None]
    mask = mask / mask.sum(axis=(3, 5), keepdims=True)  # ties share the gradient
    return y, mask


def pool_bwd(dy, mask):
    n, c, h2, _, w2, _ = mask.shape
    return (mask * dy[:, :, :, None, :, None]).reshape(n, c, h2 * 2, w2 * 2)


def forward(p: dict, x: np.ndarray, train: bool = False):
    c1, cols1 = conv_fwd(x, p["conv1/weight"], p["conv1/bias"])
    r1 = np.maximum(c1, 0)
    p1, m1 = pool_fwd(r1)
    c2, cols2 = conv_fwd(p1, p["conv2/weight"], p["conv2/bias"])
    r2 = np.maximum(c2, 0)
    p2, m2 = pool_fwd(r2)
    f = p2.reshape(len(x), -1)
    h = f @ p["fc1/weight"].T + p["fc1/bias"]
    hr = np.maximum(h, 0)
    logits = hr @ p["fc2/weight"].T + p["fc2/bias"]
    cache = (x, c1, cols1, m1, p1, c2, cols2, m2, f, h, hr)
    return (logits, cache) if train else logits


def backward(p: dict, cache: tuple, dlogits: np.ndarray) -> dict:
    x, c1, cols1, m1, p1, c2, cols2, m2, f, h, hr = cache
    g = {"fc2/weight": dlogits.T @ hr, "fc2/bias": dlogits.sum(0)}
    dh = (dlogits @ p["fc2/weight"]) * (h > 0)
    g["fc1/weight"], g["fc1/bias"] = dh.T @ f, dh.sum(0)
    dp2 = (dh @ p["fc1/weight"]).reshape(m2.shape[0], m2.shape[1], m2.shape[2], m2.shape[4])
    dc2 = pool_bwd(dp2, m2) * (c2 > 0)
    dp1, g["conv2/weight"], g["conv2/bias"] = conv_bwd(dc2, cols2, p1.shape, p["conv2/weight"])
    dc1 = pool_bwd(dp1, m1) * (c1 > 0)
    _, g["conv1/weight"], g["conv1/bias"] = conv_bwd(dc1, cols1, x.shape, p["conv1/weight"])
    return g


def softmax_xent(logits: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    z = logits - logits.max(1, keepdims=True)
    prob = np.exp(z)
    prob /= prob.sum(1, keepdims=True)
    loss = -np.log(prob[np.arange(len(y)), y] + 1e-12).mean()
    d = prob
    d[np.arange(len(y)), y] -= 1
    return float(loss), d / len(y)


class Adam:
    def __init__(self, params: dict, lr: float = 3e-3, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8):
        self.lr, self.b1, self.b2, self.eps, self.t = lr, b1, b2, eps, 0
        self.m = {k: np.zeros_like(v) for k, v in params.items()}
        self.v = {k: np.zeros_like(v) for k, v in params.items()}

    def step(self, params: dict, grads: dict) -> None:
        self.t += 1
        for k, g in grads.items():
            self.m[k] = self.b1 * self.m[k] + (1 - self.b1) * g
            self.v[k] = self.b2 * self.v[k] + (1 - self.b2) * g * g
            mh = self.m[k] / (1 - self.b1 ** self.t)
            vh = self.v[k] / (1 - self.b2 ** self.t)
            params[k] -= self.lr * mh / (np.sqrt(vh) + self.eps)


def load_data(seed: int = 0):
    from sklearn.datasets import load_digits
    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None]  # (1797, 1, 8, 8) in [0, 1]
    y = d.target.astype(np.int64)
    idx = np.random.default_rng(seed).permutation(len(x))
    n_test = len(x) // 5
    test, train = idx[:n_test], idx[n_test:]
    return x[train], y[train], x[test], y[test]


def train(x: np.ndarray, y: np.ndarray, epochs: int = 12, batch: int = 32, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    params = {}
    for name, shape in ARCH:
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        params[name] = (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32) \
            if len(shape) > 1 else np.zeros(shape, np.float32)
    opt = Adam(params)
    for ep in range(epochs):
        t0 = time.perf_counter()
        order = rng.permutation(len(x))
        losses, correct = [], 0
        for i in range(0, len(x), batch):
            j = order[i:i + batch]
            logits, cache = forward(params, x[j], train=True)
            loss, d = softmax_xent(logits, y[j])
            opt.step(params, backward(params, cache, d.astype(np.float32)))
            losses.append(loss)
            correct += int((logits.argmax(1) == y[j]).sum())
        print(f"  epoch {ep + 1:2d}/{epochs}: loss {np.mean(losses):.4f}  train acc {correct / len(x):.3f}  "
              f"({time.perf_counter() - t0:.2f} s)", flush=True)
    return params


def save_checkpoint(params: dict, path: str) -> None:
    """HDF5: one dataset per weight at ``layer/weight``."""
    import h5py
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with h5py.File(path, "w") as f:
        f.attrs["framework"] = "numpy-sgd (examples/digits.py)"
        for name, _ in ARCH:
            f.create_dataset(name, data=params[name])


# =============================================================================================
# 2. The same network in netdsl, the checkpoint bound by name, deployed
# =============================================================================================
def network(batch: int | str = "N", weights: str | None = None):
    import netdsl as nd
    import netdsl.functional as F

    net = nd.Network("digits_cnn")
    x = net.input("image", (batch, 1, 8, 8))
    w = {name: net.parameter(name, shape) for name, shape in ARCH}
    y = F.max_pool(F.relu(F.conv(x, w["conv1/weight"], w["conv1/bias"], padding=1, name="conv1")), 2, name="pool1")
    y = F.max_pool(F.relu(F.conv(y, w["conv2/weight"], w["conv2/bias"], padding=1, name="conv2")), 2, name="pool2")
    y = F.relu(F.linear(F.flatten(y), w["fc1/weight"], w["fc1/bias"], name="fc1"))
    logits = F.linear(y, w["fc2/weight"], w["fc2/bias"], name="fc2")
    net.output(F.softmax(logits, axis=1), "prob")
    if weights:
        bind(net, weights)
    return net


def bind(net, path: str) -> None:
    """Bind the HDF5 checkpoint to the network's parameters by name (strict)."""
    try:
        from netdsl.weights import load_weights  # noqa: F401  (the project's binder, when present)
    except ImportError:
        load_weights = None
    if load_weights is not None:
        report = net.load_weights(path)
        print(f"  bound {path}" + (f": {report.summary()}" if hasattr(report, "summary") else ""))
        return
    import h5py  # small local binder: every parameter by name, all problems reported at once
    with h5py.File(path, "r") as f:
        names = set()
        f.visititems(lambda n, o: names.add(n) if isinstance(o, h5py.Dataset) else None)
        arrays = {n: np.asarray(f[n]) for n in names}
    params = net.graph.params
    missing = sorted(set(params) - names)
    unexpected = sorted(names - set(params))
    misshaped = [f"{n}: {arrays[n].shape} != {params[n].shape}" for n in sorted(set(params) & names)
                 if tuple(arrays[n].shape) != tuple(params[n].shape)]
    if missing or unexpected or misshaped:
        from netdsl.errors import WeightError
        raise WeightError(f"{path}: missing {missing}, unexpected {unexpected}, mis-shaped {misshaped}")
    for n, p in params.items():
        p.source = (lambda a: (lambda: a))(arrays[n])
        p.origin = f"{path}:{n}"
    print(f"  bound {len(params)} tensors from {path} by name")


def deploy(ckpt: str, out_xml: str, x_test: np.ndarray, y_test: np.ndarray) -> dict:
    from netdsl.errors import BackendUnavailable

    net = network(weights=ckpt)
    print("compiling with OpenVINO ...", flush=True)
    t0 = time.perf_counter()
    try:
        from netdsl.backends import openvino as ovb
        model = ovb.compile(net.graph, precision="f32", hint="latency")
        backend = "openvino"
    except BackendUnavailable as e:
        from netdsl.backends import reference
        print(f"  note: {e}\n  falling back to the reference (NumPy) backend", flush=True)
        model, backend, ovb = reference.compile(net.graph), "reference", None
    print(f"  compiled ({backend}) in {time.perf_counter() - t0:.2f} s", flush=True)

    prob = model(image=x_test)["prob"]
    acc = float((prob.argmax(1) == y_test).mean())
    for i in range(5):  # warm up
        model(image=x_test[i:i + 1])
    times = []
    for i in range(min(200, len(x_test))):
        t = time.perf_counter()
        model(image=x_test[i:i + 1])
        times.append(time.perf_counter() - t)
    lat = float(np.median(times) * 1e3)
    if ovb is not None:
        path = ovb.build(net.graph, out_xml)
        print(f"  wrote OpenVINO IR {path} (+ .bin)")
    return {"accuracy": acc, "latency_ms": lat, "backend": backend}


def deploy_int8(ckpt: str, x_cal: np.ndarray, x_test: np.ndarray, y_test: np.ndarray) -> dict:
    """INT8: calibrate on training images, quantize, run on OpenVINO and ONNX Runtime; accuracies."""
    import netdsl as nd
    from netdsl.errors import BackendUnavailable

    net = network(weights=ckpt)
    batches = [x_cal[i:i + 64] for i in range(0, len(x_cal), 64)]
    qnet = nd.quantize(net, batches, method="percentile")
    print(qnet.quantization)
    acc = {}
    for backend in ("openvino", "onnx"):
        try:
            prob = nd.compile(qnet, backend)(image=x_test)["prob"]
        except BackendUnavailable as e:
            print(f"  note: INT8 on {backend} skipped: {e}")
            continue
        acc[backend] = float((prob.argmax(1) == y_test).mean())
    deploy_int8_tensorrt(net, batches, x_test, y_test)
    return acc


def deploy_int8_tensorrt(net, batches: list, x_test: np.ndarray, y_test: np.ndarray) -> None:
    """INT8 for TensorRT (symmetric int8 Q/DQ, the only form its explicit quantization takes): build the
    network and run the CPU proof (no engine can run without a GPU); the accuracy is the reference's on
    the same quantized network, which the proof shows TensorRT's network computes."""
    import netdsl as nd
    from netdsl.backends import reference
    from netdsl.errors import BackendUnavailable

    qt = nd.quantize(net, batches, method="percentile", target="tensorrt", report=False)
    try:
        from netdsl.backends import tensorrt as trtb
        rep = trtb.check(qt.graph, {"image": x_test[:64]}, dynamic={"N": (1, 64, 64)})
    except BackendUnavailable as e:
        print(f"  note: INT8 on TensorRT skipped: {e}")
        return
    prob = reference.run(qt.graph, {"image": x_test}, dtype="float32")["prob"]
    print(f"INT8 TensorRT network: CPU proof {'ok' if rep.ok else 'FAILED'}; held-out accuracy "
          f"{float((prob.argmax(1) == y_test).mean()):.4f}")
    if not rep.ok:
        print(rep)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=int(os.environ.get("DIGITS_EPOCHS", 12)))
    ap.add_argument("--out", default="out", help="directory for digits.h5 and digits.xml/.bin")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    t_start = time.perf_counter()
    x_tr, y_tr, x_te, y_te = load_data(args.seed)
    print(f"digits: {len(x_tr)} training / {len(x_te)} held-out images (8x8, scikit-learn)")
    print(f"training a CNN in NumPy for {args.epochs} epochs ...", flush=True)
    params = train(x_tr, y_tr, epochs=args.epochs, seed=args.seed)
    ref_acc = float((forward(params, x_te).argmax(1) == y_te).mean())
    ckpt = os.path.join(args.out, "digits.h5")
    save_checkpoint(params, ckpt)
    print(f"saved checkpoint {ckpt} (training framework held-out acc {ref_acc:.4f})")
    r = deploy(ckpt, os.path.join(args.out, "digits.xml"), x_te, y_te)
    print(f"held-out accuracy ({r['backend']}): {r['accuracy']:.4f}")
    print(f"latency per image (batch 1, median of 200): {r['latency_ms']:.3f} ms")
    for backend, acc in deploy_int8(ckpt, x_tr[:512], x_te, y_te).items():
        print(f"INT8 held-out accuracy ({backend}): {acc:.4f}")
        r[f"int8_{backend}"] = acc
    print(f"total {time.perf_counter() - t_start:.1f} s")
    if r["accuracy"] < 0.95:
        print("FAILED: accuracy below 0.95", file=sys.stderr)
        sys.exit(1)
    return r


if __name__ == "__main__":
    main()
