"""Our ImageNet ResNets and DenseNets are torchvision's: same state-dict keys and shapes, same function.

Oracles: tests/data/*.json, produced with real torchvision by tests/data/make_torchvision_fixtures.py.
"""

import json
from pathlib import Path

import pytest
import torch
from deterministic import deterministic_weights, formula_input

from resnet_cli import build_model

DATA = Path(__file__).parent / "data"
STATE_DICTS = json.loads((DATA / "torchvision_state_dicts.json").read_text())["models"]
OUTPUTS = json.loads((DATA / "torchvision_outputs.json").read_text())["models"]
RESNETS = [n for n in STATE_DICTS if not n.startswith("densenet")]
DENSENETS = [n for n in STATE_DICTS if n.startswith("densenet")]


@pytest.mark.parametrize("arch", RESNETS + DENSENETS)
def test_state_dict_keys_and_shapes_are_torchvisions(arch):
    ours = [[k, list(v.shape)] for k, v in build_model(arch).state_dict().items()]
    assert ours == STATE_DICTS[arch]["state_dict"]  # same keys, same shapes, same order


@pytest.mark.parametrize("arch", list(OUTPUTS))
def test_same_outputs_as_torchvision_under_the_same_weights(arch):
    model = build_model(arch).eval()
    deterministic_weights(model)
    with torch.no_grad():
        y = model(formula_input())
    expected = torch.tensor(OUTPUTS[arch]["logits_first10"])
    torch.testing.assert_close(y[:, :10], expected, rtol=1e-4, atol=1e-4 * expected.abs().max().item())
    torch.testing.assert_close(y.sum(dim=1), torch.tensor(OUTPUTS[arch]["logits_sum"]), rtol=1e-4, atol=1e-2)


@pytest.mark.parametrize("arch", ["resnet50", "densenet121", "densenet161"])
def test_torchvision_state_dict_loads_strict(arch):
    """A state dict in torchvision's layout (here: re-keyed from the fixture's shapes) loads with strict=True."""
    entries = STATE_DICTS[arch]["state_dict"]
    fake = {k: torch.zeros(shape) for k, shape in entries}
    fake = {k: (v.long() if k.endswith("num_batches_tracked") else v) for k, v in fake.items()}
    build_model(arch).load_state_dict(fake, strict=True)


@pytest.mark.parametrize("arch", RESNETS + DENSENETS)
def test_parameter_count_is_torchvisions(arch):
    from resnet_cli import get_spec
    from resnet_cli.plan import plan_model

    assert plan_model(get_spec(arch)).params == STATE_DICTS[arch]["num_params"]
