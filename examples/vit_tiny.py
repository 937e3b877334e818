"""ViT-Tiny/16 (timm ``vit_tiny_patch16_224`` layout and parameter names).

patch_embed.proj (conv 16x16 stride 16) -> flatten to tokens -> prepend cls_token (concat) ->
add pos_embed -> ``depth`` pre-norm blocks (norm1 -> attn (fused qkv, proj) -> residual; norm2 ->
mlp (fc1, GELU, fc2) -> residual) -> norm -> head on the class token.

    netdsl summary examples/vit_tiny.py
    netdsl run examples/vit_tiny.py --random-weights --dim N=2

Defaults are the real model (5.7M parameters); tests use ``small()``.
"""
from __future__ import annotations

import netdsl as nd
from netdsl import nn


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads, self.dim = heads, dim
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: nd.Tensor) -> nd.Tensor:
        h, d = self.heads, self.dim // self.heads
        qkv = self.qkv(x).reshape(0, 0, 3, h, d).transpose(2, 0, 3, 1, 4)   # (3, N, heads, T, d)
        q, k, v = nd.split(qkv, [1, 1, 1], axis=0)
        a = nd.attention(q.squeeze(0), k.squeeze(0), v.squeeze(0))          # (N, heads, T, d)
        return self.proj(a.transpose(0, 2, 1, 3).reshape(0, 0, self.dim))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: nd.Tensor) -> nd.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: nd.Tensor) -> nd.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    def __init__(self, patch: int, dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, dim, patch, stride=patch)

    def forward(self, x: nd.Tensor) -> nd.Tensor:
        return nd.flatten(self.proj(x), 2).transpose(0, 2, 1)      # (N, dim, h, w) -> (N, h*w, dim)


class VisionTransformer(nn.Module):
    def __init__(self, img: int = 224, patch: int = 16, dim: int = 192, depth: int = 12, heads: int = 3,
                 mlp_ratio: float = 4.0, num_classes: int = 1000) -> None:
        super().__init__()
        tokens = (img // patch) ** 2 + 1
        self.patch_embed = PatchEmbed(patch, dim)
        self.param("cls_token", (1, 1, dim), init="small")
        self.param("pos_embed", (1, tokens, dim), init="small")
        self.blocks = nn.ModuleList([Block(dim, heads, mlp_ratio) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x: nd.Tensor) -> nd.Tensor:
        net = x.net
        t = self.patch_embed(x)                                       # (N, P, dim)
        # a (N, 1, dim) class token for a symbolic batch: broadcast the parameter against a slice of t
        cls = nd.expand_as(self.p(net, "cls_token"), t[:, :1])  # one class token per image
        t = nd.concat([cls, t], axis=1) + self.p(net, "pos_embed")
        for blk in self.blocks:
            t = blk(t)
        return self.head(self.norm(t)[:, 0])


def network(batch: int | str = "N", img: int = 224, patch: int = 16, dim: int = 192, depth: int = 12,
            heads: int = 3, num_classes: int = 1000, weights: str | None = None) -> nd.Network:
    """ViT on (batch, 3, img, img) -> logits (batch, num_classes)."""
    net = nd.Network("vit_tiny")
    x = net.input("pixel_values", (batch, 3, img, img))
    net.output(VisionTransformer(img, patch, dim, depth, heads, 4.0, num_classes)(x), "logits")
    if weights:
        net.load_weights(weights)
    return net


def small() -> nd.Network:
    return network(img=32, patch=8, dim=64, depth=2, heads=2, num_classes=10)
