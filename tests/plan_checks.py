"""``check_plan_facts(name, **overrides)``: what the analytic plan says of an arch's residual blocks (their names,
which layers form the branch a lesion deletes, what stochastic depth saves) is what the built module does, measured
with forward hooks (test_plan_facts, test_plain_twins)."""

import torch

from resnet_cli import build_model, get_spec
from resnet_cli.analysis import paths
from resnet_cli.analysis.counts import count_params
from resnet_cli.plan import plan_model


def _module_macs(module: torch.nn.Module, out: torch.Tensor) -> int:
    if isinstance(module, torch.nn.Conv2d):
        k = module.kernel_size[0] * module.kernel_size[1]
        return out.numel() // out.shape[0] * (module.in_channels // module.groups) * k
    if isinstance(module, torch.nn.Linear):
        return out.numel() // out.shape[0] * module.in_features
    return 0


class Recorder:
    """Which named submodules of ``block`` run, and their multiply-adds per image, while it is active."""

    def __init__(self, block: torch.nn.Module, names: dict[int, str]) -> None:
        self.called: list[str] = []
        self.macs = 0
        # each submodule under its name in the network (``names``, by identity), not under the block's prefix:
        # a VGG block groups a conv with its BN and ReLU from torchvision's flat ``features`` (features.0, .1)
        self.handles = [m.register_forward_hook(self._hook(names[id(m)])) for m in block.modules() if m is not block]

    def _hook(self, name):
        def hook(module, _inputs, out):
            self.called.append(name)
            self.macs += _module_macs(module, out)
        return hook

    def close(self) -> None:
        for h in self.handles:
            h.remove()


def check_plan_facts(name: str, **overrides) -> None:
    spec = get_spec(name, input_size=32, **overrides)
    plan = plan_model(spec)
    model = build_model(spec).eval()
    refs = model.residual_blocks()
    # names: the plan, the path listing and the module agree
    assert [r.name for r in refs] == plan.block_names() == paths.block_names(spec)
    modules = dict(model.named_modules())
    names = {id(m): name for name, m in modules.items()}
    x = model.forward_stem(torch.randn(1, spec.in_channels, 32, 32))
    blocks = {u.name: u for u in plan.blocks}
    measured_branch_macs = []
    with torch.no_grad():
        for module, ref in model.sequence():
            if ref is not None:
                unit = blocks[ref.name]
                planned = {layer.name for layer in unit.layers if layer.name in modules}
                branch = {layer.name for layer in unit.role_layers("branch")}
                kept = {layer.name for layer in unit.layers if layer.role in ("shortcut", "gate", "merge")}
                # every weighted branch layer of the plan is a module of the block
                assert {lc.name for lc in unit.role_layers("branch") if lc.kind in ("conv", "bn", "linear")} <= planned
                forward = Recorder(module, names)
                module(x)
                forward.close()
                skipped = Recorder(module, names)
                if spec.residual:
                    module.skip(x)  # what the lesion engine runs for a deleted block
                skipped.close()
                # what a lesion deletes: what the block runs and its skip does not
                deleted = set(forward.called) - set(skipped.called)
                assert deleted & planned == branch & planned, ref.name
                assert set(skipped.called) & planned == kept & planned, ref.name
                assert forward.macs - skipped.macs == unit.branch_macs, ref.name
                measured_branch_macs.append(forward.macs - skipped.macs)
                branch_params = sum(p.numel() for n in branch & planned for p in modules[n].parameters())
                assert branch_params == sum(lc.params for lc in unit.role_layers("branch")), ref.name
            x = module(x)
    if spec.residual and spec.family != "densenet":  # stochastic depth drops residual blocks; these have none
        sd = spec.replace(stochastic_depth=0.5)
        survival = sd.survival_probabilities()
        expected = plan.macs - sum((1 - p) * m for p, m in zip(survival, measured_branch_macs))
        assert count_params(sd).stochastic_depth["expected_training_macs"] == expected  # unrounded in JSON
