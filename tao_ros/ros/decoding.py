"""Camera (and depth) messages -> arrays, with every way a message can be unusable named."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tao_ros.errors import InputError
from tao_ros.io.messages import compressed_to_bgr, header_stamp_ns, image_to_bgr, image_to_numpy

DEPTH_ENCODINGS = ("16UC1", "mono16", "32FC1")


class BadFrame(Exception):
    """A frame that cannot be processed: ``kind`` (image, compressed, malformed) for the counters."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


@dataclass
class DecodedFrame:
    header: object
    stamp: int  # nanoseconds
    image: np.ndarray  # [H, W, 3] uint8 BGR
    depth: np.ndarray | None  # aligned [H, W] depth, None without (or unusable: see depth_problem)
    depth_problem: str | None = None


def decode_frame(image_msg, depth_msg=None, compressed: bool = False) -> DecodedFrame:
    """Messages of one frame -> DecodedFrame; BadFrame if the image is unusable. An unusable depth
    image leaves the frame without depth and says why in ``depth_problem``."""
    try:
        image = compressed_to_bgr(image_msg) if compressed else image_to_bgr(image_msg)
        header = image_msg.header
        stamp = header_stamp_ns(header)
    except InputError as exc:
        raise BadFrame("compressed" if compressed else "image", str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - a malformed message of any kind must not stop the node
        raise BadFrame("malformed", f"{type(exc).__name__}: {exc}") from None
    frame = DecodedFrame(header, stamp, image, None)
    if depth_msg is not None:
        try:
            if str(depth_msg.encoding) not in DEPTH_ENCODINGS:
                raise InputError(f"depth encoding {depth_msg.encoding!r}; expected one of {DEPTH_ENCODINGS}")
            depth = image_to_numpy(depth_msg)
            if depth.shape[:2] != image.shape[:2]:
                raise InputError(f"depth image is {depth.shape[1]}x{depth.shape[0]}, camera image "
                                 f"{image.shape[1]}x{image.shape[0]}: publish depth aligned to the camera")
            frame.depth = depth
        except Exception as exc:  # noqa: BLE001 - bad depth costs the frame its depth only
            frame.depth_problem = str(exc) if isinstance(exc, InputError) else f"{type(exc).__name__}: {exc}"
    return frame
