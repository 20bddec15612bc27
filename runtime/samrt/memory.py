"""Keep a long-lived process's resident memory flat: glibc heap settings.

glibc's malloc serves large blocks with mmap, but raises that threshold each time such a block is
freed (up to 32 MiB). After a few large requests, the multi-megabyte NumPy buffers of pre- and
post-processing (images up to 4000x3000, N x 3 full-resolution masks) come from the heap
instead, and a heap fragmented by blocks of ever-changing sizes is rarely given back: measured
with ``python -m samexport.soak`` (tiny engine, 250 requests of 64x64 to 4000x3000 images and
1-64 prompts), resident memory rose 686 MB after warm-up. With the thresholds fixed at 1 MiB,
blocks of a MiB and more are mapped and unmapped on their own and the heap is trimmed: 5.6 MB.
The price is speed: every such block is page-faulted in afresh (measured below).

The threshold trades speed for flatness. Measured on the same soak (150 requests, tiny engine,
one process each, 2026-11-25): 1 MiB grew 0.8 MB in 236 s; 8 MiB grew 128 MB in 160 s; 32 MiB
(glibc's own ceiling) grew 484 MB in 132 s. Most of the time is pre- and post-processing of
large images, whose multi-MB temporaries are page-faulted in afresh under a low threshold.
``SamRuntime.load(limit_heap_fragmentation=8 << 20)`` picks another threshold. Tried and
dropped: keeping glibc's adaptive thresholds and calling ``malloc_trim(0)`` whenever resident
memory had grown by 8 or 32 MiB since the last trim (149 and 207 MB of peak growth: the freed
buffers of the last request stay resident until the next trim); mmap at 1 MiB with trimming at
64 MiB (28.9 MB, trend +19 MB, 166 s).

Pillow allocates image memory in blocks and by default keeps none of them for reuse, so every
resize maps its buffers afresh under a low mmap threshold. :func:`limit_heap_fragmentation` also
lets Pillow keep up to ``PILLOW_BLOCKS`` freed blocks (each at most Pillow's block size, 16 MiB
by default): a bounded cache, not growth. Same soak at 1 MiB: 214.7 s instead of 236 s, growth
0.3 MB; the warm-up peak is ~85 MB higher (the cached blocks). It also sets Pillow's block size
to ``PILLOW_BLOCK_BYTES`` (1 MiB; Pillow's default is 16 MiB): the images of one resize differ
in size, so 16 MiB-or-less blocks taken from the cache were resized (``realloc``) and faulted in
again; 1 MiB blocks are reused as they are. Preprocessing a 2250x1500 image under the 1 MiB
heap limits: 18.0 ms and 2,200 page faults per call with 16 MiB blocks, 15.7-16.1 ms and 840
faults with 1 MiB blocks (~14 ms with glibc's defaults); the cache holds at most 64 MiB.

:func:`limit_heap_fragmentation` sets both thresholds through ``mallopt``; ``SamRuntime.load``
calls it unless told not to (``limit_heap_fragmentation=False``). It changes the whole process's
allocator, which is what a service wants; it does nothing on non-glibc systems (musl, macOS,
Windows). The same effect without code: ``MALLOC_MMAP_THRESHOLD_=1048576
MALLOC_TRIM_THRESHOLD_=1048576 PILLOW_BLOCKS_MAX=64 PILLOW_BLOCK_SIZE=1m`` in the environment.

Cost in latency (2250x1500 image, 3 blob-shaped masks, one process each, 2026-11-25):
``SamProcessor`` preprocessing ~14 ms with glibc's defaults, ~16 ms under these limits (it was
~37 ms before Pillow's block cache and ~22 ms before its 1 MiB blocks); ``post_process_masks``
~6.5-8 ms vs ~10.5 ms (the masks it returns are page-faulted in afresh). A latency-bound service
that restarts its workers now and then may prefer ``limit_heap_fragmentation=False``.
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
