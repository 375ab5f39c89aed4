"""Regenerate the torchvision fixtures (needs torchvision, which the project does not depend on).

    python -m venv /tmp/tv && /tmp/tv/bin/pip install torch torchvision
    /tmp/tv/bin/python tests/data/make_torchvision_fixtures.py

torchvision_state_dicts.json: every state-dict key and shape of torchvision's ResNets and DenseNets.
torchvision_outputs.json: their logits under formula-filled weights (tests/deterministic.py) on a formula input,
so the tests can check that our models compute the same function without torchvision.
"""

import json
import sys
from pathlib import Path

import torch
import torchvision
import torchvision.models as tvm

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from deterministic import deterministic_weights, formula_input  # noqa: E402

NAMES = ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnext50_32x4d", "resnext101_32x8d",
         "resnext101_64x4d", "wide_resnet50_2", "wide_resnet101_2", "densenet121", "densenet161", "densenet169",
         "densenet201"]

state_dicts = {"generated_with": f"torchvision {torchvision.__version__}, torch {torch.__version__}", "models": {}}
for name in NAMES:
    m = getattr(tvm, name)()
    state_dicts["models"][name] = {"num_params": sum(p.numel() for p in m.parameters()),
                                   "state_dict": [[k, list(v.shape)] for k, v in m.state_dict().items()]}
(HERE / "torchvision_state_dicts.json").write_text(json.dumps(state_dicts, separators=(",", ":")))

outputs = {"generated_with": state_dicts["generated_with"], "input": "formula_input(2, 3, 64)", "models": {}}
for name in ["resnet18", "resnext50_32x4d", "wide_resnet50_2", "densenet121"]:
    m = getattr(tvm, name)().eval()
    deterministic_weights(m)
    with torch.no_grad():
        y = m(formula_input())
    outputs["models"][name] = {"logits_first10": y[:, :10].tolist(), "logits_sum": y.sum(dim=1).tolist()}
(HERE / "torchvision_outputs.json").write_text(json.dumps(outputs, indent=1))
