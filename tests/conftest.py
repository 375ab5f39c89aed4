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
