"""The CPU fast path makes glibc reuse freed activation-sized blocks instead of mapping fresh pages each step."""

from __future__ import annotations

import ctypes
import ctypes.util
import platform
import subprocess
import sys

import pytest

# Bytes held in mmap'ed blocks (glibc's mallinfo2().hblkhd) while a 64 MB tensor is alive, before and after
# `tune_backend(cpu)`, printed by a fresh interpreter so that this process's malloc settings do not matter.
PROBE = """
import ctypes, torch
from resnet3d.inference.fast_path import tune_backend

class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = Info
def mapped_while_alive():
    x = torch.ones(16 << 20)  # 64 MB
    held = libc.mallinfo2().hblkhd
    del x
    return held
before = mapped_while_alive()
tune_backend(torch.device("cpu"))
print(before, mapped_while_alive(), mapped_while_alive())
"""


def _has_mallinfo2() -> bool:
    try:
        return hasattr(ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6"), "mallinfo2")
    except OSError:
        return False


@pytest.mark.skipif(platform.system() != "Linux" or not _has_mallinfo2(), reason="glibc >= 2.33 only")
def test_tune_backend_serves_large_tensors_from_the_reused_heap():
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True).stdout.split()
    before, after, again = map(int, out)
    assert before >= 64 << 20  # glibc's default: a fresh mmap for the 64 MB block
    assert after < 64 << 20 and again < 64 << 20  # now from the heap, and the freed block is reused
