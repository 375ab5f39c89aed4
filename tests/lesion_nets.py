"""Tiny trained networks for the lesion and gradient tests: a CIFAR-style ResNet-14 and its plain twin, narrow
(8/16/32 planes) and trained for a few seconds on scikit-learn's digits at their native 8x8 pixels; and toy
networks with linear blocks, whose path gradients are known by hand."""

import contextlib

import torch
import torch.nn.functional as F
from torch import nn

from resnet_cli.checkpoint import save_checkpoint
from resnet_cli.data import load_dataset
from resnet_cli.models import build_model
from resnet_cli.models.base import BlockRef, ResidualBlock, ResidualNetwork
from resnet_cli.registry import get_spec

SIZE = 8


@contextlib.contextmanager
def one_thread():
    """Two cores are shared by several jobs: one thread per process is much faster than two fighting ones."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def digits(split: str):
    data, info = load_dataset("digits", split, input_size=SIZE, in_channels=1)
    return data.images.float(), data.labels.long(), info


def tiny_spec(arch: str):
    return get_spec(arch, widths=(8, 16, 32), stem_width=8, input_size=SIZE, in_channels=1, num_classes=10)


def train_tiny(arch: str = "cifar_resnet14", epochs: int = 8, seed: int = 0):
    """(spec, trained model in eval mode, DatasetInfo)."""
    torch.manual_seed(seed)
    x, y, info = digits("train")
    spec = tiny_spec(arch)
    model = build_model(spec)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4, nesterov=True)
    steps = epochs * ((len(x) + 63) // 64)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=steps)
    g = torch.Generator().manual_seed(seed)
    model.train()
    with one_thread():
        for _ in range(epochs):
            perm = torch.randperm(len(x), generator=g)
            for i in range(0, len(x), 64):
                idx = perm[i:i + 64]
                loss = F.cross_entropy(model(x[idx]), y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
    opt.zero_grad()  # leave no .grad behind: the tests check that analyses add none
    return spec, model.eval(), info


def write_checkpoint(path, spec, model, info):
    save_checkpoint(path, spec=spec, state_dict=model.state_dict(), dataset=info, record=[])
    return path


# --------------------------------------------------------------------------- toy linear networks
class ScaleBlock(ResidualBlock):
    """y = x + a * x: the residual branch multiplies by ``a``."""

    def __init__(self, a: float, width: int) -> None:
        super().__init__(width, width, 1)
        self.a = a

    def branch(self, x):
        return self.a * x


class Double(nn.Module):
    """A module between blocks that is not a block (like a DenseNet transition)."""

    def forward(self, x):
        return 2 * x


class LinearNet(ResidualNetwork):
    """identity stem -> ScaleBlocks (a Double after the first) -> linear head. Every path through the blocks in
    a set S has Jacobian 2 * prod_{i in S} a_i, so each path's gradient is known by hand."""

    def __init__(self, scales, width: int = 5, classes: int = 3) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(ScaleBlock(a, width) for a in scales)
        self.twice = Double()
        self.fc = nn.Linear(width, classes)

    def forward_stem(self, x):
        return x

    def forward_head(self, x):
        return self.fc(x)

    def residual_blocks(self):
        return [BlockRef(i, f"blocks.{i}", 1, i, False, b) for i, b in enumerate(self.blocks)]

    def sequence(self):
        refs = self.residual_blocks()
        out = [(refs[0].module, refs[0]), (self.twice, None)]
        return out + [(r.module, r) for r in refs[1:]]


_TRAINED: dict = {}


def trained(arch: str):
    """Trained once per test session (the fixtures of test_lesion and test_gradients share it)."""
    if arch not in _TRAINED:
        _TRAINED[arch] = train_tiny(arch)
    return _TRAINED[arch]
