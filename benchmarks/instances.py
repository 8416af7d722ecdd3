"""Cost per frame of turning a segmenter's masks into outputs, by number of objects, at 1920x1080.

    python benchmarks/instances.py [--objects 1 8 16 32] [--frames 20] [--masks crops|full]

Per frame: composing the instance image (``compose_instances``), the objects' boxes from it
(``instance_boxes``), their pixels (``object_regions``), their 3D positions from those pixels of an
aligned depth image (``locate``), and the mask messages (``~/instance_mask``, ``~/anomaly_mask``)
a subscriber gets. Objects are person-sized (120x300 px) elliptical masks spread over the frame. ``--masks full``
gives the masks as full-frame arrays (which the pipeline crops first); ``crops``, as ``MaskCrop``
(box + local mask), as the built-in segmenters give them. The README's "before" column is the
code before masks were kept as crops (the parent of the commit that made them crops), full-frame
masks composed into full-frame stacks. Prints a table: ms per frame (median) per step and
in total; "compose+regions" (compose, boxes, regions: what grew with the frame per object) also
relative to one object.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

HEIGHT, WIDTH = 1080, 1920
BOX_W, BOX_H = 120, 300


def object_masks(count: int, crops: bool) -> dict:
    """``count`` elliptical person-sized masks on a grid, as crops or full frames."""
    rows, cols = np.mgrid[0:BOX_H, 0:BOX_W]
    ellipse = ((rows - BOX_H / 2) / (BOX_H / 2)) ** 2 + ((cols - BOX_W / 2) / (BOX_W / 2)) ** 2 <= 1.0
    masks = {}
    for k in range(count):
        x1, y1 = 40 + (k % 12) * 150, 60 + (k // 12) * 330
        if crops:
            from tao_ros.types import MaskCrop

            masks[k + 1] = MaskCrop((x1, y1, x1 + BOX_W, y1 + BOX_H), ellipse)
        else:
            full = np.zeros((HEIGHT, WIDTH), bool)
            full[y1:y1 + BOX_H, x1:x1 + BOX_W] = ellipse
            masks[k + 1] = full
    return masks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=int, nargs="+", default=[1, 8, 16, 32])
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--masks", choices=("crops", "full"), default="crops")
    args = parser.parse_args()

    from tao_ros.core.instances import compose_instances, instance_boxes, instance_regions
    from tao_ros.core.localization import Intrinsics, locate, object_regions
    from tao_ros.io.messages import MessageTypes, make_header, numpy_to_image
    from tao_ros.ros.msgdefs import typestore
    from tao_ros.types import Detections, FrameResult

    types = MessageTypes.from_typestore(typestore("jazzy"))
    header = make_header(types, 0, "cam")
    depth = np.full((HEIGHT, WIDTH), 5.0, np.float32)
    intrinsics = Intrinsics(1000.0, 1000.0, WIDTH / 2, HEIGHT / 2, WIDTH, HEIGHT)
    print(f"{'objects':>8}{'compose':>10}{'boxes':>10}{'regions':>10}{'compose+regions':>17}{'x 1 obj':>9}"
          f"{'3D':>8}{'mask msgs':>11}{'total':>10}   ({args.masks} masks, ms per frame, median of {args.frames})")
    first = None
    for count in args.objects:
        masks = object_masks(count, args.masks == "crops")
        steps = {"compose": [], "boxes": [], "regions": [], "3D": [], "messages": []}
        for _ in range(args.frames):
            times = [time.perf_counter()]
            image, ids, regions = compose_instances((HEIGHT, WIDTH), masks)
            result = FrameResult(0, Detections.empty(), np.zeros(0), {}, np.zeros(0, bool), Detections.empty(),
                                 np.zeros(0), [], image, ids, np.ones(len(ids)), instance_regions=regions)
            times.append(time.perf_counter())
            found = instance_boxes(result)
            boxes = np.array([box for _, box, _ in found]).reshape(-1, 4)
            times.append(time.perf_counter())
            pixels = object_regions(boxes, np.array([i for i, _, _ in found]), (HEIGHT, WIDTH), image,
                                    crops=instance_regions(result))
            times.append(time.perf_counter())
            located = locate(pixels, depth, intrinsics)
            assert located.located.all() and len(pixels) == count
            times.append(time.perf_counter())
            numpy_to_image(types, header, image, "mono16")
            numpy_to_image(types, header, (image > 0).astype(np.uint8) * 255, "mono8")
            times.append(time.perf_counter())
            for step, a, b in zip(steps, times, times[1:]):
                steps[step].append((b - a) * 1000)
        ms = {step: float(np.median(v)) for step, v in steps.items()}
        core = ms["compose"] + ms["boxes"] + ms["regions"]
        first = first or core
        print(f"{count:>8}{ms['compose']:>10.1f}{ms['boxes']:>10.1f}{ms['regions']:>10.1f}{core:>17.1f}"
              f"{core / first:>9.1f}{ms['3D']:>8.1f}{ms['messages']:>11.1f}{sum(ms.values()):>10.1f}")


if __name__ == "__main__":
    main()
