"""What every network of the zoo offers the analyses.

A network is ``stem -> blocks (in forward order) -> head``. A *block* is a unit whose output is
``merge(shortcut(x), branch(x))``: deleting it (a lesion) keeps only the shortcut, and the gradient analysis
chooses per block between the branch and the shortcut. Plain nets have blocks without a shortcut.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


class ResidualBlock(nn.Module):
    """Base of every block: subclasses define ``branch`` and may override ``shortcut``, ``merge``, ``skip``."""

    #: False for the blocks of plain nets: forward is the branch alone (plus its activation).
    has_shortcut: bool = True
    #: Stochastic depth (Huang et al. 2016): the probability p_l that this block runs in a training step.
    #: In training the whole branch is dropped for the mini-batch with probability 1 - p_l; at test time every
    #: block runs and the branch is scaled by p_l (the paper's form, eq. 5), so no rescaling happens in training.
    survival: float = 1.0

    def stochastic_branch(self, x: torch.Tensor, branch) -> torch.Tensor | None:
        """``branch(x)`` under stochastic depth: None when the block is dropped in this training step."""
        if self.survival >= 1.0:
            return branch(x)
        if self.training:
            # One draw per mini-batch, from torch's generator (reproducible under torch.manual_seed).
            return branch(x) if torch.rand(()).item() < self.survival else None
        return branch(x) * self.survival

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride

    @property
    def changes_shape(self) -> bool:
        return self.stride != 1 or self.in_channels != self.out_channels

    def branch(self, x: torch.Tensor) -> torch.Tensor:  # the residual function F
        raise NotImplementedError

    def shortcut(self, x: torch.Tensor) -> torch.Tensor:  # h(x): identity, zero-padding or projection
        return x

    def merge(self, identity: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return identity + residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.has_shortcut:
            return self.merge_plain(self.branch(x))
        residual = self.stochastic_branch(x, self.branch)
        if residual is None:
            return self.skip(x)
        return self.merge(self.shortcut(x), residual)

    def routed(self, x: torch.Tensor, through_branch: bool) -> torch.Tensor:
        """``forward(x)``'s value, with the gradient let through only the residual branch (``through_branch``)
        or only the shortcut: what the gradient-by-path-length measurement runs (analysis/gradients.py).
        Subclasses with extra pieces (gates, scales, pre-activation) override it to detach the right ones."""
        identity, residual = self.shortcut(x), self.stochastic_branch(x, self.branch)
        if residual is None:  # dropped by stochastic depth in this training step: only the shortcut runs
            return self.skip(x)
        if through_branch:
            return self.merge(identity.detach(), residual)
        return self.merge(identity, residual.detach())

    def merge_plain(self, residual: torch.Tensor) -> torch.Tensor:
        return residual

    def skip(self, x: torch.Tensor) -> torch.Tensor:
        """The block with its residual branch deleted: what a lesion study puts in its place.

        A residual block keeps its shortcut (the projection or zero-padding on a downsampling block, as in
        Veit et al. 2016). A plain block has no shortcut: an identity stands in where the shape allows.
        """
        if self.has_shortcut:
            return self.merge(self.shortcut(x), torch.zeros((), dtype=x.dtype, device=x.device))
        if self.changes_shape:
            raise ValueError("this plain layer changes the shape of its input; no identity can replace it")
        return x


@dataclass(frozen=True)
class BlockRef:
    """A residual block in forward order."""

    index: int  # 0-based position among all blocks
    name: str  # state-dict prefix, e.g. "layer2.0"
    stage: int  # 1-based stage number
    stage_index: int  # 0-based position inside the stage
    downsample: bool  # changes shape (stride or width)
    module: ResidualBlock


class ResidualNetwork(nn.Module):
    """A network split as stem -> blocks -> head. Subclasses name their block stages (``nn.Sequential``
    attributes) in ``stage_names``."""

    stage_names: tuple[str, ...] = ()

    def forward_stem(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def residual_blocks(self) -> list[BlockRef]:
        refs: list[BlockRef] = []
        for s, stage_name in enumerate(self.stage_names, start=1):
            stage = getattr(self, stage_name)
            for j, block in enumerate(stage):
                refs.append(BlockRef(len(refs), f"{stage_name}.{j}", s, j, block.changes_shape, block))
        return refs

    def sequence(self) -> list[tuple[nn.Module, BlockRef | None]]:
        """Every module between stem and head, in forward order, with its BlockRef (None for a module that is
        not a residual block, e.g. a DenseNet transition). Running them one after another on
        ``forward_stem(x)`` and then ``forward_head`` is ``forward(x)``: the lesion engine relies on this to
        run a shared prefix once and to put ``block.skip`` in place of a deleted block."""
        refs = {id(r.module): r for r in self.residual_blocks()}
        out: list[tuple[nn.Module, BlockRef | None]] = []
        for stage_name in self.stage_names:
            for module in getattr(self, stage_name):
                out.append((module, refs.get(id(module))))
        return out

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.forward_stem(x)
        for module, _ref in self.sequence():
            x = module(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))
