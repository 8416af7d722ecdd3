"""Segmenters: streaming SAM2 (random weights, small image size, CPU) and the weight-free one."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import scene_frames
from tao_ros.core.geometry import mask_to_box
from tao_ros.core.instances import ObjectRegistry, compose_instances
from tao_ros.errors import PluginError
from tao_ros.plugins import PluginRegistry
from tao_ros.types import Detections, FrameContext, Prompt


def context(index, image):
    return FrameContext(index, image, image[..., 0])


def test_compose_instances_resolves_overlap_by_logit_and_draws_object_ids():
    a = np.full((4, 4), -1.0)
    a[:, :3] = 1.0
    b = np.full((4, 4), -1.0)
    b[:, 2:] = 2.0
    hidden = np.full((4, 4), -1.0)
    hidden[0, 2] = 1.5  # everywhere it would show, b's logit is higher
    image, ids, regions = compose_instances((4, 4), {7: a, 65535: b, 9: hidden})
    assert (image[:, :2] == 7).all() and (image[:, 2:] == 65535).all()
    assert ids.tolist() == [7, 65535]  # only the objects drawn
    assert regions.tolist() == [[0, 0, 3, 4], [2, 0, 4, 4]]  # full-frame logits cropped to their pixels
    with pytest.raises(ValueError, match="outside 1..65535"):
        compose_instances((4, 4), {70000: b})
    empty, none, no_regions = compose_instances((4, 4), {})
    assert not empty.any() and none.shape == (0,) and no_regions.shape == (0, 4)


def test_masks_as_crops_compose_as_the_same_masks_over_the_whole_frame(rng):
    """Crops (box + local mask) cost their box: the instance image is the one full-frame masks give."""
    from tao_ros.core.instances import instance_boxes
    from tao_ros.types import FrameResult, MaskCrop

    shape = (60, 80)
    crops = {}
    for object_id, (x1, y1) in zip((3, 4, 5), ((5, 5), (20, 12), (60, 40))):  # 3 and 4 overlap; 5 leaves the frame
        crops[object_id] = MaskCrop((x1, y1, x1 + 25, y1 + 30), rng.normal(size=(30, 25)).astype(np.float32))
    cropped, cropped_ids, regions = compose_instances(shape, crops)
    full, full_ids, _ = compose_instances(shape, {k: np.where(c.in_frame(shape), 0, -1.0) +
                                                  np.pad(c.clipped(shape).logits, ((c.box[1], shape[0] - min(
                                                      c.box[3], shape[0])), (c.box[0], shape[1] - min(
                                                          c.box[2], shape[1])))) for k, c in crops.items()})
    np.testing.assert_array_equal(cropped, full)
    assert cropped_ids.tolist() == full_ids.tolist() == [3, 4, 5]
    assert regions[2].tolist() == [60, 40, 80, 60]  # clipped to the frame
    for object_id, region in zip(cropped_ids, regions):
        x1, y1, x2, y2 = region
        assert not (cropped[:y1] == object_id).any() and not (cropped[y2:] == object_id).any()
        assert not (cropped[:, :x1] == object_id).any() and not (cropped[:, x2:] == object_id).any()
    result = FrameResult(0, Detections.empty(), np.zeros(0), {}, np.zeros(0, bool), Detections.empty(), np.zeros(0),
                         [], cropped, cropped_ids, np.ones(3), None, regions)
    for object_id, box, _ in instance_boxes(result):
        rows, cols = np.nonzero(cropped == object_id)
        assert box.tolist() == [cols.min(), rows.min(), cols.max() + 1, rows.max() + 1]


def test_registry_drops_objects_lost_or_no_longer_anomalous():
    registry = ObjectRegistry(patience=3, max_objects=2)
    registry.apply_prompts(0, [Prompt(0, (0, 0, 4, 4), "a", 5.0, 1), Prompt(0, (5, 5, 9, 9), "a", 6.0, 2)])
    registry.apply_prompts(1, [Prompt(1, (0, 0, 4, 4), "a", 9.0, 3)])  # full: lowest score (id 1) makes room
    assert set(registry.objects) == {2, 3}
    for frame in (2, 3, 4):
        registry.observe(frame, Detections(np.array([[5, 5, 9, 9]]), ids=[2]))
        dropped = registry.update_masks(frame, {2: True, 3: True})
    assert dropped == [3] and set(registry.objects) == {2}  # 3 was not anomalous for 3 frames
    for frame in (5, 6, 7):
        registry.observe(frame, Detections(np.array([[5, 5, 9, 9]]), ids=[2]))
        dropped = registry.update_masks(frame, {2: False})
    assert dropped == [2]  # an empty mask for 3 frames: no ghost


def test_foreground_segmenter_masks_match_exact_ground_truth(fitted_pipeline):
    """Prompt each walker with its true box; masks must overlap the exact masks with IoU > 0.7."""
    from tao_ros.core.pipeline import StreamFrame
    from tao_ros.eval.metrics import mask_iou

    segmenter = PluginRegistry.discover().create("segmenter", "foreground")
    detector = fitted_pipeline.detector.plugin
    fitted_pipeline.reset()
    ious = []
    for t, (image, _, instances, _) in enumerate(scene_frames(11, 40, anomalies=False, walkers=4)):
        ctx = fitted_pipeline._context(StreamFrame(image))
        detector.detect(ctx)  # sets ctx.foreground
        ids = [i for i in np.unique(instances) if i]
        boxes = np.array([mask_to_box(instances == i) for i in ids])
        prompts = [Prompt(t, tuple(b), "person", 5.0, int(i)) for i, b in zip(ids, boxes)] if t % 5 == 0 else []
        logits = segmenter.update(ctx, prompts, Detections(boxes, ids=ids))
        if t >= 10:  # the background model has settled
            for object_id, mask in logits.items():
                truth = instances == object_id
                if truth.sum() > 150:  # objects large enough for pixel accuracy to mean something
                    ious.append(mask_iou(mask.in_frame(truth.shape), truth))
    assert len(ious) > 20
    assert np.mean(ious) > 0.7, np.mean(ious)


torch = pytest.importorskip("torch")
pytest.importorskip("sam2")


@pytest.fixture(scope="module")
def sam2_segmenter():
    torch.manual_seed(0)
    return PluginRegistry.discover().create("segmenter", "sam2", {
        "allow_random_weights": True, "image_size": 128, "patience": 1000})


def test_sam2_objects_join_mid_stream_with_distinct_ids_and_leave_alone(sam2_segmenter):
    seg = sam2_segmenter
    seg.reset()
    rng = np.random.default_rng(0)
    boxes = {1: (10, 10, 40, 50), 2: (60, 20, 90, 60), 3: (30, 60, 70, 90)}
    join = {0: 1, 5: 2, 12: 3}
    seen = {i: [] for i in boxes}
    active = []
    for t in range(30):
        image = rng.integers(0, 255, (96, 128, 3), dtype=np.uint8)
        prompts = []
        if t in join:
            active.append(join[t])
            prompts = [Prompt(t, boxes[join[t]], "object", 5.0, join[t])]
        if t == 20:
            seg.objects.remove(2)  # the pipeline's way of dropping an object that stopped being anomalous
        detections = Detections(np.array([boxes[i] for i in active if not (t >= 20 and i == 2)]).reshape(-1, 4),
                                ids=[i for i in active if not (t >= 20 and i == 2)])
        logits = seg.update(context(t, image), prompts, detections)
        for object_id in boxes:
            seen[object_id].append(object_id in logits)
        for crop in logits.values():  # crops inside the frame
            x1, y1, x2, y2 = crop.box
            assert 0 <= x1 <= x2 <= 128 and 0 <= y1 <= y2 <= 96
    assert seen[1] == [True] * 30
    assert seen[2] == [False] * 5 + [True] * 15 + [False] * 10
    assert seen[3] == [False] * 12 + [True] * 18


def test_sam2_state_is_bounded(sam2_segmenter):
    seg = sam2_segmenter
    seg.reset()
    rng = np.random.default_rng(1)
    sizes = {}
    for t in range(200):
        image = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
        prompts = [Prompt(t, (5, 5, 30, 40), "object", 5.0, 1), Prompt(t, (30, 20, 60, 60), "object", 5.0, 2)] \
            if t % 10 == 0 else []
        seg.update(context(t, image), prompts, Detections(np.array([[5, 5, 30, 40], [30, 20, 60, 60]]), ids=[1, 2]))
        if t + 1 in (50, 200):
            sizes[t + 1] = (seg.state_bytes(), {k: len(v) for m in seg.memories.values() for k, v in m.outputs.items()})
    assert sizes[50] == sizes[200] and sizes[50][0] > 0


def test_sam2_missing_checkpoint_is_a_clear_error(tmp_path):
    registry = PluginRegistry.discover()
    with pytest.raises(PluginError, match="checkpoint .*nope.pt not found"):
        registry.create("segmenter", "sam2", {"checkpoint": str(tmp_path / "nope.pt")})
    with pytest.raises(PluginError, match="sam2.checkpoint is empty"):
        registry.create("segmenter", "sam2")


def test_sam2_mismatched_checkpoint_is_a_clear_error(tmp_path):
    path = tmp_path / "bad.pt"
    torch.save({"model": {"not_a_weight": torch.zeros(1)}}, path)
    with pytest.raises(PluginError, match=r"does not match model config .*set 'sam2.config'"):
        PluginRegistry.discover().create("segmenter", "sam2", {"checkpoint": str(path), "image_size": 128})


def test_sam2_leaves_hydra_as_it_found_it():
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()  # importing sam2 (importorskip above) initialised it
    PluginRegistry.discover().create("segmenter", "sam2", {"allow_random_weights": True, "image_size": 128})
    assert not GlobalHydra.instance().is_initialized()


def test_sam2_out_of_memory_drops_the_lowest_scoring_object_and_goes_on(sam2_segmenter, monkeypatch, caplog):
    seg = sam2_segmenter
    seg.reset()
    image = np.zeros((64, 64, 3), np.uint8)
    prompts = [Prompt(0, (5, 5, 30, 40), "object", 9.0, 1), Prompt(0, (30, 20, 60, 60), "object", 2.0, 2)]
    boxes = Detections(np.array([[5, 5, 30, 40], [30, 20, 60, 60]]), ids=[1, 2])
    assert set(seg.update(context(0, image), prompts, boxes)) == {1, 2}

    def out_of_memory(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")

    with monkeypatch.context() as patch:
        patch.setattr(seg, "_segment", out_of_memory)
        assert seg.update(context(1, image), [], boxes) == {}
    assert "out of memory" in caplog.text and set(seg.objects.objects) == {1} and set(seg.memories) == {1}
    assert set(seg.update(context(2, image), [], boxes)) == {1}
