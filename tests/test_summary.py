"""``resnet_cli.summarize``: the params table of any module by hooks, checked against the analytic plan, hand
arithmetic and what autograd really saves."""

import math

import pytest
import torch
from cli_runner import run

import resnet_cli
from resnet_cli.analysis.counts import count_params
from resnet_cli.registry import get_spec


def _rows(report):
    return [(r.name, r.level, tuple(r.out_shape), r.params, r.macs, r.detail) for r in report.rows]


@pytest.mark.parametrize("arch,size", [("resnet20", (32, 32)), ("resnet50", (64, 64)), ("densenet121", (64, 64)),
                                       ("preact_resnet110", (32, 32)), ("resnext29_8x64d", (32, 32)),
                                       ("resnet50", (64, 96)), ("densenet121", (96, 64)), ("keras_resnet_v2", (48, 32)),
                                       ("keras_minimodel", (32, 48))])
def test_summarize_equals_params_for_a_module_the_tool_built(arch, size):
    spec = get_spec(arch, input_size=size[0], input_width=size[1])
    hooks = resnet_cli.summarize(resnet_cli.build_model(spec), size, detail=2, batch_size=3, dtype=torch.float16)
    plan = count_params(spec, detail=2, batch_size=3, dtype="float16")
    assert _rows(hooks) == _rows(plan)
    assert (hooks.params, hooks.macs, hooks.residual_blocks, hooks.buffers) == \
        (plan.params, plan.macs, plan.residual_blocks, plan.buffers)
    assert hooks.arch == arch and hooks.engine == "hooks"
    # the memory estimates, per stage and in total: one rule (analysis/memory.py) over the plan and over hooks
    assert plan.memory == hooks.memory and plan.input_hw == hooks.input_hw == size


def test_non_square_input_by_hand():
    report = resnet_cli.summarize(resnet_cli.build_model("resnet18"), "224x320")
    stem = report.rows[0]
    # conv1: 7x7/2, 3 -> 64 channels, 112x160 outputs; the max-pool halves it to 56x80
    assert stem.macs == 64 * 112 * 160 * 3 * 49 and tuple(stem.out_shape) == (64, 56, 80)
    assert report.input_hw == (224, 320) and report.to_dict()["input_hw"] == [224, 320]


def test_plan_of_a_non_square_input_by_hand():
    """``params --input-size 224x320``: the plan carries height and width apart, and counts what the module does."""
    spec = get_spec("resnet50", input_size=224, input_width=320)
    plan = count_params(spec, detail=3)
    layer = {r.name: r for r in plan.rows}
    # conv1 7x7/2 3 -> 64 channels: 112x160 outputs; the 3x3/2 max-pool halves them to 56x80
    assert layer["conv1"].macs == 64 * 3 * 49 * 112 * 160 and layer["stem"].out_shape == (64, 56, 80)
    # layer4 runs at 7x10 (224 / 32 by 320 / 32): its second block's 3x3 conv is 512 -> 512
    assert layer["layer4.1.conv2"].macs == 512 * 512 * 9 * 7 * 10 and layer["layer4"].out_shape == (2048, 7, 10)
    assert layer["fc"].macs == 2048 * 1000  # after the global pool, the head does not depend on the input size
    hooks = resnet_cli.summarize(resnet_cli.build_model(spec), "224x320")
    assert plan.macs == hooks.macs == 5_840_814_080
    assert count_params(get_spec("resnet50", input_size=224)).macs == 4_089_184_256  # a plain 224 stays square


def test_params_memory_by_hand_on_resnet20():
    """ResNet-20 at batch 2, float32: every conv and BN output counted once per image (option A shortcuts and the
    ReLUs, pools and additions hold none), times 2 images and 4 bytes."""
    mem = count_params(get_spec("resnet20"), batch_size=2).memory
    per_image = {"stem": 2 * 16 * 32 * 32,  # conv1 and bn1
                 "layer1": 3 * 4 * 16 * 32 * 32,  # 3 blocks of 2 convs and 2 BNs at 16x32x32
                 "layer2": 3 * 4 * 32 * 16 * 16, "layer3": 3 * 4 * 64 * 8 * 8, "head": 10}  # head: the fc's logits
    assert {r["name"]: r["forward_bytes"] for r in mem["stages"]} == {k: 2 * 4 * v for k, v in per_image.items()}
    assert mem["forward_bytes"] == 2 * 4 * 376_842 and mem["forward_backward_bytes"] == 2 * mem["forward_bytes"]
    assert mem["params_bytes"] == 4 * 269_722 and mem["input_bytes"] == 2 * 4 * 3 * 32 * 32
    assert (mem["batch_size"], mem["dtype"], mem["bytes_per_element"]) == (2, "float32", 4)
    assert count_params(get_spec("resnet20"), batch_size=2, dtype="bfloat16").memory["forward_bytes"] == 2 * 2 * 376_842


def test_dtype_bytes_are_torchs():
    from resnet_cli.analysis.memory import DTYPE_BYTES

    assert {name: getattr(torch, name).itemsize for name in DTYPE_BYTES} == DTYPE_BYTES


def test_memory_by_hand_on_a_small_net():
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
                              torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 10))
    mem = resnet_cli.summarize(net, (6, 5), batch_size=4).memory
    assert mem["params_bytes"] == 4 * ((8 * 3 * 9 + 8) + 2 * 8 + (8 * 10 + 10))
    # outputs of the layers with parameters: conv 8x6x5, batch norm 8x6x5, linear 10; per image, x 4 images
    assert mem["forward_bytes"] == 4 * 4 * (8 * 30 + 8 * 30 + 10)
    assert mem["forward_backward_bytes"] == 2 * mem["forward_bytes"]
    assert mem["input_bytes"] == 4 * 4 * 3 * 30
    half = resnet_cli.summarize(net, (6, 5), batch_size=4, dtype=torch.float16).memory
    assert half["forward_bytes"] == mem["forward_bytes"] // 2 and half["bytes_per_element"] == 2


def _saved_for_backward(model, x):
    """Bytes of the distinct storages autograd saves for backward in one training forward (not parameters or
    buffers)."""
    state = {t.untyped_storage().data_ptr() for t in [*model.parameters(), *model.buffers()]}
    saved = {}

    def pack(t):
        storage = t.untyped_storage()
        if storage.data_ptr() not in state:
            saved[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(x).sum()
    return sum(saved.values())


def test_forward_estimate_against_the_tensors_autograd_saves():
    """What a training step keeps for backward, measured with saved_tensors_hooks (distinct storages that are not
    parameters or buffers), against the estimate: on a CIFAR ResNet (in-place ReLUs and additions) autograd keeps
    the input, every conv and BN output, the linear layer's input and BN's per-channel mean and inverse std; the
    estimate counts conv, BN and linear outputs. The difference is exactly those small terms."""
    torch.manual_seed(0)
    model = resnet_cli.build_model("cifar_resnet8", input_size=16).train()
    saved = _saved_for_backward(model, torch.randn(4, 3, 16, 16))
    mem = resnet_cli.summarize(model, 16, batch_size=4).memory
    bn_channels = sum(m.num_features for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    fc = model.fc
    expected = (mem["forward_bytes"] + mem["input_bytes"] - 4 * 4 * fc.out_features + 4 * 4 * fc.in_features
                + 2 * 4 * bn_channels)  # BN: mean and inverse std per channel, 4 bytes each
    assert saved == expected
    assert math.isclose(saved, mem["forward_bytes"], rel_tol=0.05)  # the estimate is close


def test_the_run_memory_check_by_hand_on_resnet20():
    """train's and eval's check (memory.run_bytes), float32, ResNet-20 at batch 2: training holds weights, gradients
    and momentum, and every layer's output and its gradient (conv and BN as in params' estimate, plus the two
    zero-padded option A shortcuts and the global pool); evaluation three of the largest outputs (16x32x32)."""
    from resnet_cli.analysis.memory import run_bytes

    spec = get_spec("resnet20")
    outputs = 376_842 + 32 * 16 * 16 + 64 * 8 * 8 + 64  # per image: params' count + shortcuts + pool
    assert run_bytes(spec, 2, training=True) == 4 * (3 * 269_722 + 2 * 2 * outputs + 2 * 3 * 32 * 32)
    assert run_bytes(spec, 2, training=False) == 4 * (269_722 + 3 * 2 * 16 * 32 * 32 + 2 * 3 * 32 * 32)


def test_the_run_memory_check_counts_what_autograd_keeps_on_a_densenet():
    """Why the check counts every layer's output and not only the conv/BN/linear outputs of torchinfo's rule: a
    DenseNet's concatenations are kept too (BN's backward needs its input), nearly half of what autograd saves."""
    from resnet_cli.analysis.memory import COUNTED_KINDS, plan_stage_sizes
    from resnet_cli.plan import plan_model

    torch.manual_seed(0)
    spec = get_spec("densenet40_12", input_size=16)
    saved = _saved_for_backward(resnet_cli.build_model(spec).train(), torch.randn(2, 3, 16, 16))
    plan = plan_model(spec)
    every_output, torchinfos = (4 * 2 * sum(s.activations for s in plan_stage_sizes(plan, kinds))
                                for kinds in (None, COUNTED_KINDS))
    assert torchinfos < 0.6 * saved  # the display rule would let a DenseNet run through at under 60% of its need
    assert math.isclose(every_output, saved, rel_tol=0.1)


def test_a_run_past_the_memory_available_is_refused_with_its_size():
    from resnet_cli.analysis.memory import check_run_memory, run_bytes
    from resnet_cli.limits import LimitError

    spec = get_spec("cifar_resnet20")
    need = run_bytes(spec.replace(input_size=64), 128, training=True)
    check_run_memory(spec, 128, training=True, input_size=64, available=int(need / 0.9) + 1)
    with pytest.raises(LimitError, match=r"^training cifar_resnet20 on batches of 128 at 64 px would need about "
                                         rf"{need / 2**30:.1f} GiB of memory and 1\.0 GiB are available"):
        check_run_memory(spec, 128, training=True, input_size=64, available=2**30)


# --------------------------------------------------------------------------- receptive field
def test_receptive_field_by_the_standard_recursion():
    # ResNet-20 by hand: the 3x3 stem sees 3 px; each 3x3 conv adds 2 x jump; the first conv of layer2 and layer3
    # strides 2. layer1: 3 + 6 x 2 = 15; layer2: 15 + 2 + 5 x 4 = 37; layer3: 37 + 4 + 5 x 8 = 81.
    stages = {r.name: r.receptive_field for r in count_params(get_spec("resnet20"), detail=2).stages}
    assert stages == {"stem": 3, "layer1": 15, "layer2": 37, "layer3": 81, "head": None}
    blocks = {r.name: r.receptive_field for r in count_params(get_spec("resnet20"), detail=2).rows if r.level == 2}
    assert blocks["layer1.0"] == 7 and blocks["layer2.0"] == 15 + 2 + 4
    # the standard values for torchvision's ResNet-50 (stride on the 3x3, v1.5) and ResNet-18
    assert count_params(get_spec("resnet50")).to_dict()["receptive_field"] == 427
    assert count_params(get_spec("resnet18")).to_dict()["receptive_field"] == 435


def test_receptive_field_column_with_blocks_only():
    with_blocks = run("params", "--arch", "resnet50", "--depth", "2", terminal_width=100)
    assert "RF px" in with_blocks.output and " 427 " in with_blocks.output
    assert "RF px" not in run("params", "--arch", "resnet50").output


def test_buffers_beside_the_parameters_as_keras_summary_counts_them():
    """Keras' ``model.summary()`` of MiniModel: 4,368,714 trainable params, 5,824 non-trainable (each BN's moving
    mean and variance: 2 x 2,912 channels). ``params`` shows both, in the table and in JSON; the module's buffers
    (``num_batches_tracked`` left out, Keras has none) are the same number."""
    import json

    from resnet_cli.analysis.counts import module_buffers

    spec = get_spec("keras_minimodel")
    report = count_params(spec)
    assert (report.trainable_params, report.buffers) == (4_368_714, 5_824)
    assert module_buffers(resnet_cli.build_model(spec)) == 5_824
    res = run("params", "--arch", "keras_minimodel", "-f", "json")
    data = json.loads(res.stdout)
    assert (data["trainable_params"], data["buffers"]) == (4_368_714, 5_824)
    res = run("params", "--arch", "keras_minimodel")
    assert "trainable 4,368,714) · buffers 5,824 (BN running statistics)" in " ".join(res.stdout.split())
    # a net without batch norm has none: VGG-16's 138,357,544 parameters, no buffers; vgg16_bn 2 x 4,224 of them
    assert (count_params(get_spec("vgg16")).buffers, count_params(get_spec("vgg16_bn")).buffers) == (0, 8_448)
