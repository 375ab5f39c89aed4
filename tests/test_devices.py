"""The GPU path's decisions, tested on a CPU-only machine: each is a function of the device (a
``torch.device("cuda")`` can be made without a GPU), so what CUDA would get is checked here; what only a GPU can
show (speed, bf16 agreement) is benchmarks/gpu_check.py's."""

import warnings

import pytest
import torch

from resnet_cli import devices, get_spec
from resnet_cli.data import DatasetInfo, TensorImageDataset, Uint8ImageDataset, load_dataset, normalise
from resnet_cli.models import build_model
from resnet_cli.training import TrainConfig, Trainer
from resnet_cli.training import trainer as trainer_module

CUDA, CPU, META = torch.device("cuda"), torch.device("cpu"), torch.device("meta")


@pytest.mark.parametrize("bf16, expected", [(True, torch.bfloat16), (False, torch.float16)])
def test_autocast_is_bf16_where_the_gpu_has_it_else_fp16_and_never_off_cuda(monkeypatch, bf16, expected):
    asked = []
    # the hardware's answer is asked for: torch's default also says yes for bf16 emulated on older GPUs
    monkeypatch.setattr(torch.cuda, "is_bf16_supported",
                        lambda including_emulation=True: asked.append(including_emulation) or bf16)
    assert devices.autocast_dtype(CUDA) is expected and asked == [False]
    assert devices.autocast_dtype(CUDA, amp=False) is None
    assert devices.autocast_dtype(CPU) is None and devices.autocast_dtype(torch.device("mps")) is None


@pytest.mark.parametrize("dtype, scaled", [(torch.bfloat16, False), (torch.float16, True)])
def test_the_trainer_scales_the_loss_for_fp16_only(monkeypatch, dtype, scaled):
    """bf16 has float32's exponent range: no GradScaler (whose overflow check waits for the GPU every step)."""
    monkeypatch.setattr(trainer_module, "autocast_dtype", lambda device, amp: dtype if amp else None)
    spec = get_spec("cifar_resnet8", widths="4,8,16", stem_width=4, input_size=8)
    ds, info = load_dataset("synthetic", "test", input_size=8, limit=4)
    with warnings.catch_warnings():  # a GradScaler made without a GPU warns that it is disabled
        warnings.simplefilter("ignore")
        trainer = Trainer(build_model(spec), spec, ds, ds, info, TrainConfig(epochs=1), device="cpu")
    assert trainer.use_amp and trainer.amp_dtype is dtype
    assert (trainer.scaler is not None) is scaled


def test_channels_last_for_image_batches_on_cuda_only():
    images, labels = torch.zeros(2, 3, 4, 4), torch.zeros(2, dtype=torch.long)
    assert devices.channels_last_for(CUDA, images)
    assert not devices.channels_last_for(CUDA, labels) and not devices.channels_last_for(CPU, images)


def test_cpu_batches_bound_for_a_gpu_are_pinned_first():
    """non_blocking from pageable memory is a synchronous copy: to_device page-locks first (CUDA only)."""
    x = torch.zeros(3)
    assert devices.pins(x, CUDA) and not devices.pins(x, CPU)
    assert devices.to_device(x, CPU) is x  # the CPU path is untouched
    assert devices.to_device(torch.zeros(1, 2, 3, 3), CPU, channels_last=True).is_contiguous(
        memory_format=torch.channels_last)


def test_data_kept_whole_on_the_gpu_below_two_gib():
    small = torch.zeros(10)
    big = torch.zeros(1).expand(devices.KEEP_ON_DEVICE_BYTES // 4)  # 2 GiB of float32, without the memory
    assert devices.keeps_on_device(CUDA, small, small)
    assert not devices.keeps_on_device(CUDA, big) and not devices.keeps_on_device(CUDA, big[:-1], small[:1])
    assert devices.keeps_on_device(CUDA, big[:-1]) and not devices.keeps_on_device(CPU, small)


def test_a_dataset_moved_to_a_device_keeps_its_kind_and_batches_there():
    """Meta tensors stand in for a GPU: the uint8 path (convert, resize, normalise) must run on the images'
    device, with the normalisation constants made there too."""
    info = DatasetInfo("cifar10", 10, 16, 3, (0.5, 0.4, 0.3), (0.2, 0.2, 0.2))
    raw = Uint8ImageDataset(torch.zeros(4, 3, 32, 32, dtype=torch.uint8), torch.arange(4), info)
    moved = raw.to(META)
    x, y = moved.get_batch(torch.arange(2))
    assert type(moved) is Uint8ImageDataset and moved.info is info
    assert (x.device, tuple(x.shape), y.device) == (META, (2, 3, 16, 16), META)
    assert raw.images.device == CPU  # the original stays where it was
    assert normalise(torch.zeros(1, 3, 2, 2, device=META), info.mean, info.std).device == META
    plain = TensorImageDataset(torch.zeros(3, 1, 2, 2), torch.arange(3), info)
    assert trainer_module._held_on(plain, CPU) is plain  # on the CPU nothing moves


def test_torchrun_backend_and_gpu_per_rank(monkeypatch):
    """NCCL, one GPU per process, unless RESNET_CLI_DIST_BACKEND=gloo lets processes share (gpu_check's
    two-process smoke test on one GPU)."""
    from resnet_cli.distributed import BACKEND_ENV, backend_for, rank_gpu
    from resnet_cli.errors import ResnetCliError

    monkeypatch.delenv(BACKEND_ENV, raising=False)
    assert (backend_for(CUDA), backend_for(CPU)) == ("nccl", "gloo")
    assert [rank_gpu(r, 2, "nccl") for r in (0, 1)] == [0, 1]
    with pytest.raises(ResnetCliError, match="LOCAL_RANK 1 has no GPU: this node has 1"):
        rank_gpu(1, 1, "nccl")
    assert [rank_gpu(r, 2, "gloo") for r in range(5)] == [0, 1, 0, 1, 0]
    monkeypatch.setenv(BACKEND_ENV, "gloo")
    assert backend_for(CUDA) == "gloo"
    monkeypatch.setenv(BACKEND_ENV, "nccl")
    with pytest.raises(ResnetCliError, match="needs CUDA"):
        backend_for(CPU)
    monkeypatch.setenv(BACKEND_ENV, "mpi")
    with pytest.raises(ResnetCliError, match="must be gloo or nccl"):
        backend_for(CUDA)


def test_a_channels_last_network_saves_the_layout_a_cpu_trained_one_does(tmp_path):
    """The trainer makes the network channels_last on CUDA; its checkpoints stay plain NCHW tensors."""
    from resnet_cli.checkpoint import load_checkpoint, save_checkpoint

    spec = get_spec("cifar_resnet8", widths="4,8,16", stem_width=4, input_size=8)
    model = build_model(spec)
    model = model.to(memory_format=torch.channels_last)
    nhwc = {k: v.clone() for k, v in model.state_dict().items()}
    assert not nhwc["conv1.weight"].is_contiguous()  # what the GPU path would save without the fix
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.randn(2, 3, 8, 8).contiguous(memory_format=torch.channels_last)).sum().backward()
    opt.step()
    momentum = {k: v["momentum_buffer"] for k, v in opt.state_dict()["state"].items()}
    assert any(m.dim() == 4 and not m.is_contiguous() for m in momentum.values())
    save_checkpoint(tmp_path / "cl.pt", spec=spec, state_dict=nhwc, dataset=None, record=[],
                    extra={"optimizer": opt.state_dict()})
    ckpt = load_checkpoint(tmp_path / "cl.pt")
    assert all(t.is_contiguous() and torch.equal(t, nhwc[k]) for k, t in ckpt.state_dict.items())
    saved = {k: v["momentum_buffer"] for k, v in ckpt.extra["optimizer"]["state"].items()}
    assert all(t.is_contiguous() and torch.equal(t, momentum[k]) for k, t in saved.items())


@pytest.mark.parametrize("device, tuned", [(CUDA, True), (CPU, False)])
def test_cudnn_autotunes_only_while_a_cuda_run_trains(device, tuned):
    """A lesion study or evaluate later in the same process keeps torch's default (deterministic) choice."""
    before = torch.backends.cudnn.benchmark
    with trainer_module._cudnn_autotuned(device):
        assert torch.backends.cudnn.benchmark is (tuned or before)
    assert torch.backends.cudnn.benchmark is before


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_training_on_cuda_takes_the_fast_path_and_its_checkpoint_evaluates_on_the_cpu(tmp_path):
    """Where a GPU is present: channels_last, the autocast dtype's loss scaling, data held on the GPU; the
    checkpoint evaluates on the CPU to the recorded test error, up to the images autocast may flip."""
    from resnet_cli.analysis.evaluation import evaluate
    from resnet_cli.checkpoint import load_checkpoint

    spec = get_spec("cifar_resnet8", widths="8,16,32", stem_width=8, input_size=12)
    train_set, info = load_dataset("synthetic", "train", input_size=12, limit=256)
    test_set, _ = load_dataset("synthetic", "test", input_size=12, limit=128)
    trainer = Trainer(build_model(spec), spec, train_set, test_set, info, TrainConfig(epochs=1, batch_size=32),
                      device="cuda", checkpoint=tmp_path / "gpu.pt")
    assert trainer.model.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    assert trainer.train_set.images.is_cuda and trainer.test_set.images.is_cuda
    assert (trainer.scaler is None) == (trainer.amp_dtype is torch.bfloat16)
    record = trainer.fit()
    saved = load_checkpoint(tmp_path / "gpu.pt")
    on_cpu = evaluate(saved.build_model(), test_set, device="cpu")
    assert abs(on_cpu.correct - record[-1]["test_correct"]) <= 0.05 * 128
