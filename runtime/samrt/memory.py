"""Keep a long-lived process's resident memory flat: glibc heap settings.

glibc's malloc serves large blocks with mmap, but raises that threshold each time such a block is
freed (up to 32 MiB). After a few large requests the multi-megabyte NumPy buffers of pre- and
post-processing (images up to 4000x3000, N x 3 full-resolution masks) come from the heap
instead, and a heap fragmented by blocks of ever-changing sizes is rarely given back.
:func:`limit_heap_fragmentation` fixes the mmap and trim thresholds (``mallopt``), so blocks of
the threshold and more are mapped and unmapped on their own and the heap is trimmed.

Pillow allocates image memory in blocks and by default keeps none for reuse, so under a low mmap
threshold every resize maps its buffers afresh. The function also lets Pillow keep up to
``PILLOW_BLOCKS`` freed blocks (a bounded cache, at most 64 MiB) and sets its block size to
``PILLOW_BLOCK_BYTES`` (1 MiB instead of 16): the images of one resize differ in size, and large
cached blocks were resized (``realloc``) and faulted in again, while 1 MiB blocks are reused as
they are.

The price is speed: buffers that leave a call are page-faulted in afresh. A higher threshold
(``SamRuntime.load(limit_heap_fragmentation=8 << 20)``) is faster and less flat; ``False``
leaves glibc alone, for a latency-bound service that restarts its workers now and then. Keeping
glibc's adaptive thresholds and calling ``malloc_trim`` on growth was tried and left the last
request's buffers resident. The soak figures for each choice are in docs/performance.md and
``benchmarks/results/*/soak_*.json``.

``SamRuntime.load`` calls :func:`limit_heap_fragmentation` unless told not to. It changes the
whole process's allocator, which is what a service wants; it does nothing on non-glibc systems
(musl, macOS, Windows). The same effect without code: ``MALLOC_MMAP_THRESHOLD_=1048576
MALLOC_TRIM_THRESHOLD_=1048576 PILLOW_BLOCKS_MAX=64 PILLOW_BLOCK_SIZE=1m`` in the environment.
"""

from __future__ import annotations

import ctypes
import sys

__all__ = ["limit_heap_fragmentation", "THRESHOLD_BYTES", "PILLOW_BLOCKS", "PILLOW_BLOCK_BYTES"]

THRESHOLD_BYTES = 1 << 20
PILLOW_BLOCKS = 64
PILLOW_BLOCK_BYTES = 1 << 20
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_applied: int | None = None


def limit_heap_fragmentation(threshold_bytes: int = THRESHOLD_BYTES) -> bool:
    """Fix glibc's mmap and trim thresholds at ``threshold_bytes`` and let Pillow reuse up to
    :data:`PILLOW_BLOCKS` freed image blocks of at most :data:`PILLOW_BLOCK_BYTES`. True when
    applied (glibc), False where there is no glibc ``mallopt`` (then nothing is changed). Safe
    to call repeatedly."""
    global _applied
    if _applied == threshold_bytes:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    applied = mallopt(_M_MMAP_THRESHOLD, threshold_bytes) == 1 and mallopt(_M_TRIM_THRESHOLD, threshold_bytes) == 1
    _applied = threshold_bytes if applied else None
    if applied:
        from PIL import Image

        Image.core.set_blocks_max(max(PILLOW_BLOCKS, Image.core.get_blocks_max()))
        Image.core.set_block_size(min(PILLOW_BLOCK_BYTES, Image.core.get_block_size()))
    return applied
