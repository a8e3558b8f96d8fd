"""ProgressiveReconstructionHook: progress = iter / max_iters on every PartialReconstruction."""
from types import SimpleNamespace

import pytest
import torch

from pcae_mm.engine.hooks import ProgressiveReconstructionHook
from pcae_mm.models.utils.partial_reconstruction import PartialReconstruction


def test_sets_progress_from_the_runner_iteration_including_after_resume():
    part = PartialReconstruction(throw_ratio=0.5, in_dims=8, out_dims=8, grid_size=6,
                                 progressive=dict(end_progress=1.0))
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), part)
    runner = SimpleNamespace(model=model, iter=0, max_iters=8)
    hook = ProgressiveReconstructionHook()
    hook.before_train(runner)
    for it, share in ((0, 0.), (2, 0.25), (6, 0.75)):  # a resumed runner starts at its iter
        runner.iter = it
        hook.before_train_iter(runner, batch_idx=0)
        assert part.share() == pytest.approx(share)


def test_without_partial_reconstruction_is_a_clear_error():
    runner = SimpleNamespace(model=torch.nn.Linear(2, 2), iter=0, max_iters=1)
    with pytest.raises(RuntimeError, match='no PartialReconstruction'):
        ProgressiveReconstructionHook().before_train(runner)
