"""The resolution at which the weight-free plugins look at frames.

Their pixel parameters (closing kernel, fragment gap, mask dilation) are given at REFERENCE_ROWS rows
and scaled with the image height, and the OpenCV steps with fixed windows (DIS optical flow's 8-pixel
patches, MOG2's per-pixel noise model, Lucas-Kanade's 21-pixel window) see the same scene differently
at another resolution. So frames with more rows are processed scaled down to REFERENCE_ROWS and the
results (flow, foreground) scaled back. UCSD Ped2 scaled up from 240 to 427 rows, fitted and tested
so (benchmarks/robustness.py), frame AUROC: 0.940 processed at full resolution, 0.975 at 240 rows
(0.987 native); and a 640x480 stream costs less.
"""

from __future__ import annotations

REFERENCE_ROWS = 240


def working_size(shape: tuple[int, ...]) -> tuple[int, int] | None:
    """(width, height) at which a frame of ``shape`` ([H, W, ...]) is processed: scaled to
    REFERENCE_ROWS rows; None when it has no more rows than that (processed as it is)."""
    height, width = shape[:2]
    if height <= REFERENCE_ROWS:
        return None
    return max(1, round(width * REFERENCE_ROWS / height)), REFERENCE_ROWS
