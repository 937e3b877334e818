"""BERT-base encoder (Hugging Face parameter names: embeddings.*, encoder.layer.N.*, pooler.dense).

Inputs ``input_ids`` and ``attention_mask`` (int32, (batch, seq)), both dims symbolic; outputs
``last_hidden_state`` (batch, seq, 768) and ``pooler_output`` (batch, 768). Position ids are
``arange(seq)`` computed in the graph, so one compiled model serves every length up to 512.

    netdsl summary examples/bert.py
    netdsl run examples/bert.py --random-weights --backend openvino
"""
from __future__ import annotations


import netdsl as nd
from netdsl import nn


class SelfAttention(nn.Module):
    def __init__(self, hidden: int, heads: int) -> None:
        super().__init__()
        self.heads, self.hidden = heads, hidden
        self.query = nn.Linear(hidden, hidden)
        self.key = nn.Linear(hidden, hidden)
        self.value = nn.Linear(hidden, hidden)

    def forward(self, x: nd.Tensor, mask: nd.Tensor) -> nd.Tensor:
        h, d = self.heads, self.hidden // self.heads

        def split(t: nd.Tensor) -> nd.Tensor:  # (N, S, H) -> (N, heads, S, d)
            return t.reshape(0, 0, h, d).transpose(0, 2, 1, 3)

        ctx = nd.attention(split(self.query(x)), split(self.key(x)), split(self.value(x)), mask)
        return ctx.transpose(0, 2, 1, 3).reshape(0, 0, self.hidden)


class DenseNorm(nn.Module):
    """dense -> (dropout) -> residual add -> LayerNorm  (HF's BertSelfOutput / BertOutput)."""

    def __init__(self, cin: int, cout: int, eps: float) -> None:
        super().__init__()
        self.dense = nn.Linear(cin, cout)
        self.LayerNorm = nn.LayerNorm(cout, eps=eps)

    def forward(self, x: nd.Tensor, residual: nd.Tensor) -> nd.Tensor:
        return self.LayerNorm(self.dense(x) + residual)


class Attention(nn.Module):
    def __init__(self, hidden: int, heads: int, eps: float) -> None:
        super().__init__()
        self.self = SelfAttention(hidden, heads)
        self.output = DenseNorm(hidden, hidden, eps)

    def forward(self, x: nd.Tensor, mask: nd.Tensor) -> nd.Tensor:
        return self.output(self.self(x, mask), x)


class Intermediate(nn.Module):
    def __init__(self, hidden: int, inner: int) -> None:
        super().__init__()
        self.dense = nn.Linear(hidden, inner)

    def forward(self, x: nd.Tensor) -> nd.Tensor:
        return nd.gelu(self.dense(x))


class Layer(nn.Module):
    def __init__(self, hidden: int, heads: int, inner: int, eps: float) -> None:
        super().__init__()
        self.attention = Attention(hidden, heads, eps)
        self.intermediate = Intermediate(hidden, inner)
        self.output = DenseNorm(inner, hidden, eps)

    def forward(self, x: nd.Tensor, mask: nd.Tensor) -> nd.Tensor:
        a = self.attention(x, mask)
        return self.output(self.intermediate(a), a)


class Embeddings(nn.Module):
    def __init__(self, vocab: int, hidden: int, max_pos: int, type_vocab: int, eps: float) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab, hidden)
        self.position_embeddings = nn.Embedding(max_pos, hidden)
        self.token_type_embeddings = nn.Embedding(type_vocab, hidden)
        self.LayerNorm = nn.LayerNorm(hidden, eps=eps)

    def forward(self, ids: nd.Tensor) -> nd.Tensor:
        # position ids 0..S-1 for the run-time length S (no input, no fixed length); token type 0 everywhere
        pos = nd.unsqueeze(nd.arange(ids.shape[1], net=ids.net, name="position_ids"), 0)
        types = nd.unsqueeze(nd.arange(ids.shape[1], net=ids.net, name="token_type_ids") * 0, 0)
        x = self.word_embeddings(ids) + self.position_embeddings(pos) + self.token_type_embeddings(types)
        return self.LayerNorm(x)


class Bert(nn.Module):
    def __init__(self, vocab: int = 30522, hidden: int = 768, layers: int = 12, heads: int = 12,
                 inner: int = 3072, max_pos: int = 512, type_vocab: int = 2, eps: float = 1e-12) -> None:
        super().__init__()
        self.embeddings = Embeddings(vocab, hidden, max_pos, type_vocab, eps)
        self.encoder = nn.Module()
        self.encoder.layer = nn.ModuleList([Layer(hidden, heads, inner, eps) for _ in range(layers)])
        self.pooler = nn.Module()
        self.pooler.dense = nn.Linear(hidden, hidden)

    def forward(self, ids: nd.Tensor, attention_mask: nd.Tensor) -> tuple:
        # (N, S) int mask -> additive float mask (N, 1, 1, S): 0 keep, -10000 drop (as HF BERT)
        m = nd.cast(attention_mask, "float32").reshape(0, 1, 1, -1)
        mask = (1.0 - m) * -10000.0
        x = self.embeddings(ids)
        for layer in self.encoder.layer:
            x = layer(x, mask)
        pooled = nd.tanh(self.pooler.dense(x[:, 0]))
        return x, pooled


def network(batch: int | str = "N", seq: int | str = "S", layers: int = 12, weights: str | None = None) -> nd.Network:
    """BERT-base encoder; ``seq`` is the sequence length (default: symbolic, up to 512 at run time)."""
    net = nd.Network("bert")
    ids = net.input("input_ids", (batch, seq), "int32")
    mask = net.input("attention_mask", (batch, seq), "int32")
    hidden, pooled = Bert(layers=layers)(ids, mask)
    net.output(hidden, "last_hidden_state")
    net.output(pooled, "pooler_output")
    if weights:
        net.load_weights(weights)
    return net
