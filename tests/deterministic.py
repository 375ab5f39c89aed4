"""Formula-filled weights and inputs: the same numbers on any machine, with no RNG and no torchvision.

Used to check that our models compute the same function as torchvision's (tests/data/torchvision_outputs.json
was produced with these by tests/data/make_torchvision_fixtures.py).
"""

import math

import torch


def deterministic_weights(model: torch.nn.Module) -> None:
    """Fill every floating parameter and buffer from a formula of its position in the state dict."""
    sd = model.state_dict()
    for i, (k, v) in enumerate(sd.items()):
        if not v.dtype.is_floating_point:
            continue
        t = torch.arange(v.numel(), dtype=torch.float64)
        wave = torch.sin(t * 0.7 + i)
        if k.endswith("running_var"):
            vals = 1.0 + 0.5 * torch.cos(t + i) ** 2
        elif k.endswith(("running_mean", "bias")):
            vals = 0.05 * wave
        elif v.dim() == 1:  # batch-norm weight
            vals = 1.0 + 0.1 * wave
        else:  # conv / linear weight, He-scaled by fan-in
            vals = wave * math.sqrt(3.0 / (v.numel() // v.shape[0]))
        sd[k] = vals.reshape(v.shape).to(v.dtype)
    model.load_state_dict(sd)


def formula_input(batch: int = 2, channels: int = 3, size: int = 64) -> torch.Tensor:
    t = torch.arange(batch * channels * size * size, dtype=torch.float32)
    return (torch.sin(t * 0.37) * torch.cos(t * 0.0011)).reshape(batch, channels, size, size)
