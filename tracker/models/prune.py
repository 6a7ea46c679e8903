"""A narrower box-family network initialised from a wider one by channel selection (structured pruning).

``narrow_box_net(source, width)`` returns a :class:`BoxSiameseNet` of ``source.config.scaled(width)``
whose every parameter and BatchNorm buffer is an index selection of the source's. Channels are
selected per *group*: the channel spaces that must line up, so a student channel ``j`` is the same
source channel in every tensor that touches it:

- a 1x1 / full convolution (or SE squeeze) starts a group; depth-wise convolutions and BatchNorms
  follow their input's group, and SE gates follow the block's hidden channels;
- a residual skip joins a block's output group to its input's (MobileNetV3's 24/40/48 channel streams);
- the exemplar and search projections of one correlation share a group (their channels are multiplied
  pairwise); the fuse layer's input is the correlation's exemplar cells (kept whole) then the
  depth-wise branch's group.

What the head computes over exemplar cells (channel attention, the 2x2 refinement) is not a channel
dimension and is copied whole, as are the cls/loc outputs. In each group the kept channels are the
ones with the largest sum of |BN gamma| over the group's BatchNorms (groups without one: L1 norm of
the weights producing them), in their original order; at width 1 that is every channel, so the copy
is exact.

Where the scaled architecture joins two channel counts the source keeps apart (NanoTrack-v3 at 0.5:
block 7's 40 -> 48 channels become 24 -> 24, so the student gets a skip the source lacks), the two
groups are still selected independently and that block adds its input: the one place a student's
function departs from the selection by more than the dropped channels.
"""
from __future__ import annotations

from typing import Union

import torch
from torch import nn

from .box_siamese import BoxSiameseNet
from .mobilenet import SqueezeExcite

# A run of channels along one tensor dimension: a group's name, or a count kept whole (exemplar cells, RGB).
Part = Union[str, int]
Channels = tuple[Part, ...]


class _Plan:
    """Which channel groups each tensor dimension of a state dict runs over (groups joined by union-find)."""

    def __init__(self) -> None:
        self.dims: dict[str, dict[int, Channels]] = {}
        self.parent: dict[str, str] = {}
        self.gammas: dict[str, list[str]] = {}
        self.producers: dict[str, list[str]] = {}

    def new(self, name: str) -> str:
        self.parent[name] = name
        self.gammas[name], self.producers[name] = [], []
        return name

    def find(self, group: str) -> str:
        while self.parent[group] != group:
            group = self.parent[group]
        return group

    def union(self, a: Channels, b: Channels) -> None:
        if a == b:
            return
        if len(a) != 1 or len(b) != 1 or isinstance(a[0], int) or isinstance(b[0], int):
            raise ValueError(f"cannot join channels {a} and {b}: a skip needs one channel group on each side")
        ra, rb = self.find(a[0]), self.find(b[0])
        if ra != rb:
            self.parent[rb] = ra
            self.gammas[ra] += self.gammas.pop(rb)
            self.producers[ra] += self.producers.pop(rb)

    def tie(self, key: str, dim: int, channels: Channels) -> None:
        self.dims.setdefault(key, {})[dim] = channels

    def resolved(self, channels: Channels) -> Channels:
        return tuple(p if isinstance(p, int) else self.find(p) for p in channels)


def _chain(plan: _Plan, module: nn.Module, prefix: str, channels: Channels) -> Channels:
    """Tie every tensor of a chain of layers (``module``'s children in order) to channel groups,
    starting from input ``channels``; returns the channels of its output."""
    for name, layer in module.named_children():
        p = f"{prefix}{name}."
        if isinstance(layer, nn.Conv2d):
            if layer.groups > 1:
                if not layer.groups == layer.in_channels == layer.out_channels:
                    raise TypeError(f"{p[:-1]}: grouped convolutions other than depth-wise ones cannot be narrowed")
                plan.tie(p + "weight", 0, channels)    # channel i in -> channel i out
                out = channels
            else:
                out = (plan.new(p[:-1]),)
                plan.producers[out[0]].append(p + "weight")
                plan.tie(p + "weight", 0, out)
                plan.tie(p + "weight", 1, channels)
            if layer.bias is not None:
                plan.tie(p + "bias", 0, out)
            channels = out
        elif isinstance(layer, nn.BatchNorm2d):
            for t in ("weight", "bias", "running_mean", "running_var"):
                plan.tie(p + t, 0, channels)
            if len(channels) == 1 and isinstance(channels[0], str):
                plan.gammas[channels[0]].append(p + "weight")
        elif isinstance(layer, SqueezeExcite):
            squeeze = (plan.new(p + "fc"),)
            plan.producers[squeeze[0]].append(p + "fc.0.weight")
            plan.tie(p + "fc.0.weight", 0, squeeze)
            plan.tie(p + "fc.0.weight", 1, channels)
            plan.tie(p + "fc.0.bias", 0, squeeze)
            plan.tie(p + "fc.2.weight", 0, channels)
            plan.tie(p + "fc.2.weight", 1, squeeze)
            plan.tie(p + "fc.2.bias", 0, channels)
        elif any(True for _ in layer.parameters()):
            raise TypeError(f"{p[:-1]}: no channel rule for {type(layer).__name__}")
    return channels


def _plan(net: BoxSiameseNet) -> _Plan:
    plan = _Plan()
    channels: Channels = (3,)
    for i, block in enumerate(net.backbone.features):
        p = f"backbone.features.{i}."
        if i == 0:
            channels = _chain(plan, block, p, channels)
            continue
        out = _chain(plan, block.conv, p + "conv.", channels)
        if block.identity:
            plan.union(out, channels)
        channels = out
    embedding = _chain(plan, net.neck, "neck.", channels)

    head, cfg = net.head, net.config
    cells: Channels = (cfg.exemplar_cells,)

    def correlation(name: str) -> Channels:
        """The projections' shared group (or the embedding's, without projections); attention and
        refinement run over exemplar cells and are copied whole."""
        module = getattr(head, name)
        z = _chain(plan, module.project_z, f"head.{name}.project_z.", embedding)
        plan.union(z, _chain(plan, module.project_x, f"head.{name}.project_x.", embedding))
        return z

    if head.shared:
        correlation("corr")
    for branch in ("loc", "cls"):
        if not head.shared:
            correlation(f"{branch}_corr")
        feature = cells
        if head.depthwise:
            depthwise = correlation(f"{branch}_dw")
            feature = _chain(plan, getattr(head, f"{branch}_fuse"), f"head.{branch}_fuse.", cells + depthwise)
        feature = _chain(plan, getattr(head, f"{branch}_tower"), f"head.{branch}_tower.", feature)
        _chain(plan, getattr(head, f"{branch}_out"), f"head.{branch}_out.", feature)
    return plan


def _group_sizes(plan: _Plan, state: dict[str, torch.Tensor], what: str) -> dict[str, int]:
    """Each group's channel count in ``state``, read off the tensor shapes (checked to agree everywhere)."""
    sizes: dict[str, int] = {}
    pending = [(key, dim, plan.resolved(ch)) for key, dims in plan.dims.items() for dim, ch in dims.items()]
    while pending:
        left = []
        for key, dim, channels in pending:
            if key not in state:
                raise ValueError(f"the {what} has no tensor {key}: its layer layout differs from the source's")
            unknown = [p for p in channels if isinstance(p, str) and p not in sizes]
            known = sum(p if isinstance(p, int) else sizes.get(p, 0) for p in channels)
            size = int(state[key].shape[dim])
            if len(unknown) > 1:
                left.append((key, dim, channels))
            elif unknown and size > known:
                sizes[unknown[0]] = size - known
            elif unknown or known != size:
                raise ValueError(f"{key} has {size} channels along dim {dim} in the {what}, which its channel groups "
                                 f"{channels} cannot give: the channels that must line up do not")
        if len(left) == len(pending):
            raise ValueError(f"cannot size the channel groups of {[k for k, _, _ in left]} in the {what}")
        pending = left
    return sizes


def _importance(plan: _Plan, group: str, state: dict[str, torch.Tensor]) -> torch.Tensor:
    """Sum of |gamma| over the group's BatchNorms; without one, L1 norm of the weights producing it."""
    if plan.gammas[group]:
        return sum(state[k].detach().abs().float() for k in plan.gammas[group])
    return sum(state[k].detach().abs().float().flatten(1).sum(1) for k in plan.producers[group])


def _indices(channels: Channels, keep: dict[str, torch.Tensor], sizes: dict[str, int]) -> torch.Tensor:
    """Source indices along a dimension made of ``channels``: whole runs kept, groups by their selection."""
    parts, offset = [], 0
    for p in channels:
        if isinstance(p, int):
            parts.append(torch.arange(p) + offset)
            offset += p
        else:
            parts.append(keep[p] + offset)
            offset += sizes[p]
    return torch.cat(parts)


@torch.no_grad()
def narrow_box_net(source: BoxSiameseNet, width: float) -> BoxSiameseNet:
    """A :class:`BoxSiameseNet` of ``source.config.scaled(width)`` initialised with the source's most
    important channels of each group (see the module docstring); ``width`` in (0, 1]. The result is in
    the source's train/eval mode. Raises ValueError where the narrower architecture cannot take a
    selection of the source's (a layer it lacks or has in addition, a width over 1)."""
    if not 0.0 < width <= 1.0:
        raise ValueError(f"a narrower student needs a width in (0, 1], got {width}")
    target = BoxSiameseNet(source.config.scaled(width))
    plan = _plan(source)
    src, dst = source.state_dict(), target.state_dict()
    if set(dst) != set(src):
        differ = sorted(set(dst) ^ set(src))
        raise ValueError(f"the width-{width} architecture's layer layout differs from the source's ({', '.join(differ[:3])}"
                         " only in one of them; e.g. a block loses its 1x1 expansion): use a larger width")
    src_sizes, dst_sizes = _group_sizes(plan, src, "source"), _group_sizes(plan, dst, f"width-{width} network")
    keep = {}
    for group, n in src_sizes.items():
        k = dst_sizes[group]
        if k > n:
            raise ValueError(f"channel group {group} has {n} channels in the source but {k} at width {width}")
        order = torch.argsort(_importance(plan, group, src), descending=True, stable=True)
        keep[group] = order[:k].sort().values if k < n else torch.arange(n)
    state = {}
    for key, tensor in src.items():
        for dim, channels in plan.dims.get(key, {}).items():
            tensor = tensor.index_select(dim, _indices(plan.resolved(channels), keep, src_sizes))
        state[key] = tensor.clone()
    target.load_state_dict(state, strict=True)
    return target.train(source.training)
