import os

import pytest

# Keep the suite fast and deterministic on the 2-core CI machine. One thread: on a loaded 2-core machine two
# OpenMP threads spin-wait on each other (a CIFAR ResNet-110 forward measured 8.5 s with 2 threads, 0.05 s with 1).
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(autouse=True)
def _torch_threads():
    try:
        import torch
    except ImportError:  # pragma: no cover
        yield
        return
    torch.manual_seed(0)
    yield


# The helper modules beside the tests (cli_runner, lesion_nets, image_folders, deterministic, timm_nets) are
# imported as plain modules: pytest puts this folder on sys.path (it has no __init__.py: "rootdir" prepend mode);
# a subprocess that needs them sets PYTHONPATH itself.


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """A checkpoint written by `train` (2 epochs of a tiny CIFAR ResNet on synthetic data) and its result: what
    the hostile-input tests damage, study and resume. Once per session: several test modules use it."""
    from hostile_runner import TINY

    from resnet_cli import get_spec
    from resnet_cli.training import TrainConfig, train

    folder = tmp_path_factory.mktemp("trained")
    result = train(get_spec("cifar_resnet8", **TINY), "synthetic", TrainConfig(epochs=2, batch_size=32),
                   device="cpu", train_limit=96, test_limit=32, checkpoint=folder / "net.pt")
    return folder / "net.pt", result
