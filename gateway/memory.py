"""The gateway's resident memory after large messages: a live session's message may be megabytes.
glibc's malloc raises its mmap threshold each time such a block is freed, after which blocks of
that size come from the heap, which seldom shrinks: the gateway would keep the memory of its
largest messages for good. A fixed threshold keeps every block of a mebibyte or more in a
mapping of its own, returned to the system when it is freed."""

import ctypes
import logging

log = logging.getLogger(__name__)

_M_MMAP_THRESHOLD = -3  # from glibc's malloc.h
LARGE_BLOCK_BYTES = 1024 * 1024


def return_large_blocks() -> None:
    """Fix glibc's mmap threshold; elsewhere (musl, macOS) there is no mallopt, and nothing to
    do."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    if not mallopt(_M_MMAP_THRESHOLD, LARGE_BLOCK_BYTES):
        log.warning("malloc kept its mmap threshold; large messages may stay resident")
