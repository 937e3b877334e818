"""A Python transcription of darknet's weight writer (src/parser.c), for byte-exact test fixtures.

Follows pjreddie/darknet and AlexeyAB/darknet ``save_weights_upto`` line by line: the header
``fwrite(&major, sizeof(int))``, minor, revision, then ``fwrite(net.seen, sizeof(uint64_t))`` (a
32-bit ``seen`` for files of version < 0.2), then per layer in cfg order ``save_convolutional_weights``
(biases, [scales, rolling_mean, rolling_variance], weights), ``save_connected_weights`` (biases,
weights, [scales, rolling_mean, rolling_variance]), ``save_batchnorm_weights`` (AlexeyAB: biases,
scales, rolling_mean, rolling_variance; pjreddie: no biases), ``save_shortcut_weights`` (nweights),
rnn/gru/lstm as their connected sub-layers. The layer shapes come from a minimal transcription of
the ``parse_*`` / ``make_*_layer`` functions (only the layer kinds the tests use).
"""
from __future__ import annotations

import struct
from typing import BinaryIO

import numpy as np

from netdsl.weights.darknet import parse_cfg


def _i(o: dict, k: str, d: int) -> int:
    return int(o.get(k, d))


def make_network(cfg_text: str, rng: np.random.Generator) -> list[dict]:
    """parse_network_cfg: one dict per layer with darknet's fields, random values where weights live."""
    secs = parse_cfg(cfg_text)
    net = secs[0][1]
    h, w, c = _i(net, "height", 0), _i(net, "width", 0), _i(net, "channels", 0)
    inputs = _i(net, "inputs", h * w * c)
    layers: list[dict] = []

    def f(n: int, positive: bool = False) -> np.ndarray:
        v = rng.standard_normal(n).astype(np.float32)
        return np.abs(v) + np.float32(0.5) if positive else v

    def connected(i_n: int, o_n: int, bn: int) -> dict:    # make_connected_layer
        d = {"type": "CONNECTED", "inputs": i_n, "outputs": o_n, "batch_normalize": bn,
             "biases": f(o_n), "weights": f(o_n * i_n)}
        if bn:
            d.update(scales=f(o_n), rolling_mean=f(o_n), rolling_variance=f(o_n, True))
        return d

    for index, (kind, o) in enumerate(secs[1:]):
        if kind in ("convolutional", "conv"):              # parse_convolutional / make_convolutional_layer
            n, size, groups = _i(o, "filters", 1), _i(o, "size", 1), _i(o, "groups", 1)
            stride = _i(o, "stride", 1)
            padding = size // 2 if _i(o, "pad", 0) else _i(o, "padding", 0)
            bn = _i(o, "batch_normalize", 0)
            l = {"type": "CONVOLUTIONAL", "n": n, "c": c, "size": size, "groups": groups, "batch_normalize": bn,
                 "nweights": (c // groups) * n * size * size, "share_layer": None}
            l["biases"], l["weights"] = f(n), f(l["nweights"])
            if bn:
                l.update(scales=f(n), rolling_mean=f(n), rolling_variance=f(n, True))
            h, w, c = (h + 2 * padding - size) // stride + 1, (w + 2 * padding - size) // stride + 1, n
            l.update(out_h=h, out_w=w, out_c=c)
        elif kind in ("maxpool", "max"):                   # parse_maxpool / make_maxpool_layer
            stride = _i(o, "stride", 1)
            size = _i(o, "size", stride)
            padding = _i(o, "padding", size - 1)
            h, w = (h + padding - size) // stride + 1, (w + padding - size) // stride + 1
            l = {"type": "MAXPOOL", "out_h": h, "out_w": w, "out_c": c}
        elif kind == "upsample":
            s = _i(o, "stride", 2)
            h, w = h * s, w * s
            l = {"type": "UPSAMPLE", "out_h": h, "out_w": w, "out_c": c}
        elif kind == "route":                              # parse_route
            idx = [int(x) for x in o["layers"].split(",")]
            idx = [index + x if x < 0 else x for x in idx]
            first = layers[idx[0]]
            h, w = first["out_h"], first["out_w"]
            c = sum(layers[j]["out_c"] for j in idx) // _i(o, "groups", 1)
            l = {"type": "ROUTE", "out_h": h, "out_w": w, "out_c": c}
        elif kind == "shortcut":                           # parse_shortcut / make_shortcut_layer
            n = len(o["from"].split(","))
            wt = o.get("weights_type", "none")
            nweights = (n + 1) if wt in ("per_feature", "per_layer") else (n + 1) * c if wt == "per_channel" else 0
            l = {"type": "SHORTCUT", "nweights": nweights, "weights_type": wt, "weights": f(nweights), "out_h": h, "out_w": w, "out_c": c}
        elif kind == "batchnorm":                          # make_batchnorm_layer
            l = {"type": "BATCHNORM", "c": c, "biases": f(c), "scales": f(c), "rolling_mean": f(c),
                 "rolling_variance": f(c, True), "out_h": h, "out_w": w, "out_c": c}
        elif kind in ("connected", "conn"):                # parse_connected
            l = connected(inputs, _i(o, "output", 1), _i(o, "batch_normalize", 0))
            h, w, c = 1, 1, l["outputs"]
            l.update(out_h=1, out_w=1, out_c=c)
        elif kind == "rnn":                                # make_rnn_layer
            hid, out, bn = _i(o, "hidden", 1), _i(o, "output", 1), _i(o, "batch_normalize", 0)
            l = {"type": "RNN", "input_layer": connected(inputs, hid, bn), "self_layer": connected(hid, hid, bn),
                 "output_layer": connected(hid, out, bn)}
            h, w, c = 1, 1, out
            l.update(out_h=1, out_w=1, out_c=c)
        elif kind == "gru":                                # make_gru_layer
            out, bn = _i(o, "output", 1), _i(o, "batch_normalize", 0)
            l = {"type": "GRU"}
            for g in "zrh":
                l[f"input_{g}_layer"] = connected(inputs, out, bn)
                l[f"state_{g}_layer"] = connected(out, out, bn)
            h, w, c = 1, 1, out
            l.update(out_h=1, out_w=1, out_c=c)
        elif kind == "lstm":                               # make_lstm_layer
            out, bn = _i(o, "output", 1), _i(o, "batch_normalize", 0)
            l = {"type": "LSTM"}
            for g in "figo":
                l[f"u{g}"] = connected(inputs, out, bn)
                l[f"w{g}"] = connected(out, out, bn)
            h, w, c = 1, 1, out
            l.update(out_h=1, out_w=1, out_c=c)
        else:                                              # yolo, region, softmax, dropout, ...: no weights
            l = {"type": kind.upper(), "out_h": h, "out_w": w, "out_c": c}
        inputs = l["out_h"] * l["out_w"] * l["out_c"]
        layers.append(l)
    return layers


SUBLAYERS = {"RNN": ("input_layer", "self_layer", "output_layer"),       # save order, parser.c
             "GRU": ("input_z_layer", "input_r_layer", "input_h_layer", "state_z_layer", "state_r_layer",
                     "state_h_layer"),
             "LSTM": ("wf", "wi", "wg", "wo", "uf", "ui", "ug", "uo")}


def _fwrite(a: np.ndarray, n: int, fp: BinaryIO) -> None:
    assert a.dtype == np.float32 and a.size == n
    fp.write(a.astype("<f4").tobytes())


def save_convolutional_weights(l: dict, fp: BinaryIO) -> None:
    num = l["nweights"]
    _fwrite(l["biases"], l["n"], fp)
    if l["batch_normalize"]:
        _fwrite(l["scales"], l["n"], fp)
        _fwrite(l["rolling_mean"], l["n"], fp)
        _fwrite(l["rolling_variance"], l["n"], fp)
    _fwrite(l["weights"], num, fp)


def save_batchnorm_weights(l: dict, fp: BinaryIO, alexeyab: bool = True) -> None:
    if alexeyab:                                           # AlexeyAB adds the biases (pjreddie does not)
        _fwrite(l["biases"], l["c"], fp)
    _fwrite(l["scales"], l["c"], fp)
    _fwrite(l["rolling_mean"], l["c"], fp)
    _fwrite(l["rolling_variance"], l["c"], fp)


def save_connected_weights(l: dict, fp: BinaryIO) -> None:
    _fwrite(l["biases"], l["outputs"], fp)
    _fwrite(l["weights"], l["outputs"] * l["inputs"], fp)
    if l["batch_normalize"]:
        _fwrite(l["scales"], l["outputs"], fp)
        _fwrite(l["rolling_mean"], l["outputs"], fp)
        _fwrite(l["rolling_variance"], l["outputs"], fp)


def save_shortcut_weights(l: dict, fp: BinaryIO) -> None:
    _fwrite(l["weights"], l["nweights"], fp)


def save_weights_upto(layers: list, fp: BinaryIO, cutoff: int, version: tuple = (0, 2, 5), seen: int = 64000,
                      alexeyab: bool = True) -> None:
    major, minor, revision = version
    fp.write(struct.pack("<i", major))
    fp.write(struct.pack("<i", minor))
    fp.write(struct.pack("<i", revision))
    fp.write(struct.pack("<Q", seen) if major * 10 + minor >= 2 else struct.pack("<I", seen))
    for i, l in enumerate(layers):
        if i >= cutoff:
            break
        t = l["type"]
        if t == "CONVOLUTIONAL" and l["share_layer"] is None:
            save_convolutional_weights(l, fp)
        if t == "SHORTCUT" and l["nweights"] > 0:
            save_shortcut_weights(l, fp)
        if t == "CONNECTED":
            save_connected_weights(l, fp)
        if t == "BATCHNORM":
            save_batchnorm_weights(l, fp, alexeyab)
        if t == "RNN":
            save_connected_weights(l["input_layer"], fp)
            save_connected_weights(l["self_layer"], fp)
            save_connected_weights(l["output_layer"], fp)
        if t == "GRU":
            save_connected_weights(l["input_z_layer"], fp)
            save_connected_weights(l["input_r_layer"], fp)
            save_connected_weights(l["input_h_layer"], fp)
            save_connected_weights(l["state_z_layer"], fp)
            save_connected_weights(l["state_r_layer"], fp)
            save_connected_weights(l["state_h_layer"], fp)
        if t == "LSTM":
            save_connected_weights(l["wf"], fp)
            save_connected_weights(l["wi"], fp)
            save_connected_weights(l["wg"], fp)
            save_connected_weights(l["wo"], fp)
            save_connected_weights(l["uf"], fp)
            save_connected_weights(l["ui"], fp)
            save_connected_weights(l["ug"], fp)
            save_connected_weights(l["uo"], fp)


def expected_tensors(layers: list, alexeyab: bool = True) -> dict:
    """What netdsl's reader should give for these layers: {name: array in darknet's in-memory layout}."""
    out: dict = {}

    def conn(p: str, l: dict) -> None:
        out[f"{p}.fc.bias"] = l["biases"]
        out[f"{p}.fc.weight"] = l["weights"].reshape(l["outputs"], l["inputs"])
        if l["batch_normalize"]:
            out.update({f"{p}.bn.weight": l["scales"], f"{p}.bn.running_mean": l["rolling_mean"],
                        f"{p}.bn.running_var": l["rolling_variance"]})
    for i, l in enumerate(layers):
        t = l["type"]
        if t == "CONVOLUTIONAL":
            out[f"{i}.bn.bias" if l["batch_normalize"] else f"{i}.conv.bias"] = l["biases"]
            if l["batch_normalize"]:
                out.update({f"{i}.bn.weight": l["scales"], f"{i}.bn.running_mean": l["rolling_mean"],
                            f"{i}.bn.running_var": l["rolling_variance"]})
            out[f"{i}.conv.weight"] = l["weights"].reshape(l["n"], l["c"] // l["groups"], l["size"], l["size"])
        elif t == "CONNECTED":
            conn(str(i), l)
        elif t == "SHORTCUT" and l["nweights"]:   # per_channel: weights[(input i) * c + channel]
            per_channel = l["weights_type"] == "per_channel"
            out[f"{i}.shortcut.weight"] = l["weights"].reshape(-1, l["out_c"]) if per_channel else l["weights"]
        elif t == "BATCHNORM":
            if alexeyab:
                out[f"{i}.bn.bias"] = l["biases"]
            out.update({f"{i}.bn.weight": l["scales"], f"{i}.bn.running_mean": l["rolling_mean"],
                        f"{i}.bn.running_var": l["rolling_variance"]})
        elif t in ("RNN", "GRU", "LSTM"):
            for k in SUBLAYERS[t]:
                conn(f"{i}.{k}", l[k])
    return out
