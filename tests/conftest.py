"""Suite-wide settings: one intra-op thread per test process.

The suite runs as `pytest -n 2` on 2 cores, and its tensors are tiny: with two OpenMP threads per process the
threads spin-wait for each other and single forwards become 10-100x slower. Subprocesses (CLI runs, torchrun)
inherit OMP_NUM_THREADS.
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402  (after OMP_NUM_THREADS, which torch reads at import)

torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
