"""Shared fixtures: real images from the shared data, decoded once per session.

One torch thread per process, here and in every process a test starts: with a thread per core, a core taken by
anything else (another process of the same test, a busy neighbour) leaves torch's threads spinning at their
barriers, and a 30 ms head takes 200 ms (measured with a busy loop on one of two cores) — frames then miss the
deadlines the tests script around.

A home of their own: ``$SPLITINF_HOME`` points at a scratch folder whose downloaded assets, converted weights
and trained checkpoints are the user's (linked), but whose exported engines are not: an engine the user
exported must not change which engine a test's device runs (``splitinf-device`` prefers an export).
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = "1"  # inherited by the processes tests start

_user_home = Path(os.environ.get("SPLITINF_HOME") or Path.home() / ".cache" / "splitinf")
_test_home = Path(tempfile.mkdtemp(prefix="splitinf-test-home-"))
for _shared in ("assets", "weights", "checkpoints"):
    (_user_home / _shared).mkdir(parents=True, exist_ok=True)
    (_test_home / _shared).symlink_to(_user_home / _shared, target_is_directory=True)
os.environ["SPLITINF_HOME"] = str(_test_home)  # inherited too
atexit.register(shutil.rmtree, _test_home, ignore_errors=True)

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)

from splitinf.data import VAL_UNION, coco_images, read_image  # noqa: E402


@pytest.fixture(scope="session")
def coco_val_images() -> list[torch.Tensor]:
    """Three real COCO val2017 images (different sizes), as uint8 RGB tensors."""
    return [read_image(im.path) for im in coco_images(VAL_UNION, limit=3)]
