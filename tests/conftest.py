"""Shared test settings: a private cache folder per session, few BLAS threads, no GPU surprises."""
from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402


def pytest_configure(config):
    # Keep the real user cache (MNIST .npy is expensive to parse) unless a test overrides it.
    os.environ.setdefault("ADVTOPO_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "advtopo"))


@pytest.fixture(scope="module")
def one_torch_thread():
    """One intra-op thread for a module: on a busy 2-core machine torch's spinning worker threads
    made tiny models 20x slower (digits lenet5, 3 epochs: 38 s with 2 threads, 1.7 s with 1)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def cuda():
    import torch

    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    return torch.device("cuda")


# --- a briefly trained lenet5 on sklearn digits (datapaths and feature-visualisation tests) ----

@pytest.fixture(scope="session")
def lenet():
    """(model, test set): lenet5 trained 8 epochs on sklearn digits (8x8), > 85% test accuracy."""
    import torch
    import torch.nn.functional as F

    from advtopo.data import load_dataset
    from advtopo.models import create_model

    torch.manual_seed(0)
    train = load_dataset("digits", "train")
    test = load_dataset("digits", "test")
    model = create_model("lenet5", input_size=8)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(0)
    for _ in range(8):
        perm = torch.randperm(len(train), generator=gen)
        for s in range(0, len(perm), 64):
            idx = perm[s:s + 64]
            opt.zero_grad()
            F.cross_entropy(model(train.x[idx]), train.y[idx]).backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        acc = (model(test.x).argmax(1) == test.y).float().mean().item()
    assert acc > 0.85
    return model, test


# --- a tiny real study run (digits, lenet5, PGD eps 0 / 0.2) for the app's model-backed views --

def tiny_study_config() -> dict:
    return {"name": "tiny", "seed": 1, "device": "cpu",
            "dataset": {"name": "digits", "split": "test", "subset": 60, "train_subset": 400},
            "models": [{"name": "std", "arch": "lenet5",
                        "train": {"method": "standard", "eps": 0.0, "epochs": 2, "batch_size": 64,
                                  "eval_subset": 20, "eval_steps": 1}}],
            "attacks": [{"name": "pgd", "eps": [0.0, 0.2], "steps": 2}],
            "layers": [{"module": "relu2", "summary": "top_l2"}, {"module": "relu3"}],
            "capture": {"batch_size": 60},
            "mapper": [{"n_intervals": 4, "overlap": 0.3, "min_samples": 2}],
            "persistence": {"enabled": False}, "vulnerability": {"enabled": False}}


@pytest.fixture(scope="session")
def study_run(tmp_path_factory):
    """The run directory of ``tiny_study_config()`` (a checkpoint and stored activations)."""
    from advtopo.study import StudyConfig, run_study

    return run_study(StudyConfig.from_dict(tiny_study_config()), out=tmp_path_factory.mktemp("tiny") / "run",
                     verbose=False)


@pytest.fixture(scope="session")
def study_server(study_run):
    """The app serving ``study_run`` on a free loopback port."""
    from advtopo.app import serve

    srv = serve(study_run, port=0, open_browser=False, block=False)
    yield srv
    srv.shutdown()
