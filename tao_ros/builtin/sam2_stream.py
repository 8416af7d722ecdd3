"""Streaming SAM2 segmenter: frames arrive one at a time, memory stays bounded.

SAM2's official video predictor loads a whole video and keeps every frame's outputs. Here each
tracked object keeps only what SAM2's memory attention reads: its last ``max_conditioning_frames``
prompted frames and the last ``max(num_maskmem, max_obj_ptrs_in_encoder)`` tracked frames
(memory features and object pointers). The image encoder runs once per frame and its features
are shared by every object. Built on sam2 == 1.1.0 (``SAM2Base.track_step``).
"""

from __future__ import annotations

import importlib.metadata
import logging
import warnings
from pathlib import Path

import numpy as np

from tao_ros.builtin.weights import load_strictly, load_tensors
from tao_ros.core.instances import ObjectRegistry
from tao_ros.errors import PluginError
from tao_ros.hookspecs import Param, hookimpl
from tao_ros.types import Detections, FrameContext, MaskCrop, Prompt

log = logging.getLogger(__name__)

SAM2_VERSION = "1.1.0"
MEMORY_KEYS = ("maskmem_features", "maskmem_pos_enc", "obj_ptr", "object_score_logits")
IMAGE_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGE_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def build_sam2(config: str, checkpoint: str, image_size: int, device: str, allow_random_weights: bool):
    """SAM2 model from its hydra config; weights from ``checkpoint`` with ``weights_only=True``.

    Hydra's global state, which importing sam2 initialises, is cleared again afterwards when it was
    not initialised before, so the caller's own hydra use is unaffected.
    """
    import torch
    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    if not checkpoint and not allow_random_weights:
        raise PluginError("sam2.checkpoint is empty: set it to a SAM2 checkpoint file (e.g. sam2.1_hiera_tiny.pt); "
                          "nothing is downloaded")
    if checkpoint and not Path(checkpoint).expanduser().is_file():
        raise PluginError(f"SAM2 checkpoint {checkpoint} not found; nothing is downloaded: copy it there or set "
                          "sam2.checkpoint")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise PluginError(f"device {device!r} requested but CUDA is not available; set device: cpu")
    hydra_was_ours = not GlobalHydra.instance().is_initialized()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # sam2 warns at import when its optional C extension is absent
            from sam2.build_sam import build_sam2_video_predictor
        version = importlib.metadata.version("sam2")
        if version != SAM2_VERSION:
            log.warning("sam2 %s installed; tao_ros is built and tested on sam2 %s", version, SAM2_VERSION)
        if not GlobalHydra.instance().is_initialized():
            initialize_config_module("sam2", version_base="1.2")
        try:
            model = build_sam2_video_predictor(config, ckpt_path=None, device="cpu",
                                               hydra_overrides_extra=[f"++model.image_size={image_size}"])
        except Exception as exc:
            raise PluginError(f"cannot build SAM2 from config {config!r}: {exc}") from exc
    finally:
        if hydra_was_ours:
            GlobalHydra.instance().clear()
    if checkpoint:
        path = Path(checkpoint).expanduser()
        state = load_tensors(path, "use a SAM2 checkpoint as published (a dict with 'model')")
        load_strictly(model, state.get("model", state) if isinstance(state, dict) else state, path, config,
                      "sam2.config")
    return model.to(device).eval()


class ObjectMemory:
    """What SAM2 needs to track one object: prompted frames and recent frames, both bounded."""

    def __init__(self, max_conditioning: int, max_recent: int):
        self.max_conditioning = max_conditioning
        self.max_recent = max_recent
        self.outputs = {"cond_frame_outputs": {}, "non_cond_frame_outputs": {}}

    def store(self, frame_index: int, output: dict, prompted: bool) -> None:
        compact = {k: output[k] for k in MEMORY_KEYS if k in output}
        kind = "cond_frame_outputs" if prompted else "non_cond_frame_outputs"
        self.outputs[kind][frame_index] = compact
        for kind, limit in (("cond_frame_outputs", self.max_conditioning), ("non_cond_frame_outputs", self.max_recent)):
            frames = self.outputs[kind]
            for old in sorted(frames)[:-limit]:
                del frames[old]

    @property
    def empty(self) -> bool:
        return not self.outputs["cond_frame_outputs"]

    def tensor_bytes(self) -> int:
        import torch

        total = 0
        for frames in self.outputs.values():
            for output in frames.values():
                for value in output.values():
                    for tensor in value if isinstance(value, list) else [value]:
                        if isinstance(tensor, torch.Tensor):
                            total += tensor.numel() * tensor.element_size()
        return total


class Sam2StreamSegmenter:
    """SAM2 on a live stream: box prompts at any frame, bounded memory per object, shared image features."""

    name = "sam2"
    params = {
        "config": Param("configs/sam2.1/sam2.1_hiera_t.yaml", "SAM2 hydra model config (inside the sam2 package)."),
        "checkpoint": Param("", "SAM2 checkpoint file (.pt), loaded with weights_only=True.", content=True),
        "allow_random_weights": Param(False, "Run without a checkpoint (random weights: for tests only)."),
        "image_size": Param(1024, "Square input size of the image encoder (SAM2 is trained at 1024).", minimum=64),
        "device": Param("cpu", "'cpu', 'cuda' or 'cuda:N'."),
        "dtype": Param("auto", "'auto' (bfloat16 autocast on CUDA, float32 on CPU), 'float32' or 'bfloat16'.",
                       choices=("auto", "float32", "bfloat16")),
        "compile": Param(False, "torch.compile the image encoder (CUDA only)."),
        "max_conditioning_frames": Param(2, "Prompted frames kept per object (the most recent).", minimum=1),
        "patience": Param(10, "Frames an object may be lost (empty mask or not anomalous) before it is dropped.",
                          minimum=1),
        "max_objects": Param(16, "Most objects tracked at once; the lowest-scoring make room.", minimum=1),
    }

    def __init__(self, **params):
        import torch

        self.p = params
        self.model = build_sam2(params["config"], params["checkpoint"], params["image_size"], params["device"],
                                params["allow_random_weights"])
        self.device = torch.device(params["device"])
        on_cuda = self.device.type == "cuda"
        self.autocast_dtype = {"auto": torch.bfloat16 if on_cuda else None, "float32": None,
                               "bfloat16": torch.bfloat16}[params["dtype"]]
        if params["compile"] and on_cuda:
            self.model.image_encoder = torch.compile(self.model.image_encoder)
        self.max_recent = max(self.model.num_maskmem, self.model.max_obj_ptrs_in_encoder)
        self.objects = ObjectRegistry(params["patience"], params["max_objects"])
        self.memories: dict[int, ObjectMemory] = {}
        self.reset()

    def reset(self) -> None:
        self.objects.reset()
        self.memories.clear()
        self.frame_shape = None
        self.frame = 0

    def state_bytes(self) -> int:
        """Bytes of tensors held for all tracked objects (constant once memories are full)."""
        return sum(memory.tensor_bytes() for memory in self.memories.values())

    def _encode(self, image: np.ndarray):
        import cv2
        import torch

        size = self.p["image_size"]
        rgb = cv2.cvtColor(cv2.resize(image, (size, size), interpolation=cv2.INTER_LINEAR), cv2.COLOR_BGR2RGB)
        normalised = (rgb.astype(np.float32) / 255.0 - IMAGE_MEAN) / IMAGE_STD
        batch = torch.from_numpy(normalised.transpose(2, 0, 1)).unsqueeze(0).to(self.device)
        backbone = self.model.forward_image(batch)
        _, features, positions, sizes = self.model._prepare_backbone_features(backbone)
        return features, positions, sizes

    def _box_prompt(self, box, shape):
        import torch

        height, width = shape
        scale = np.array([self.p["image_size"] / width, self.p["image_size"] / height] * 2, dtype=np.float32)
        corners = (np.asarray(box, dtype=np.float32) * scale).reshape(1, 2, 2)
        return {"point_coords": torch.from_numpy(corners).to(self.device),
                "point_labels": torch.tensor([[2, 3]], dtype=torch.int32, device=self.device)}

    def update(self, context: FrameContext, prompts: list[Prompt], detections: Detections) -> dict[int, MaskCrop]:
        import torch

        shape = context.gray.shape
        if self.frame_shape is not None and self.frame_shape != shape:
            log.warning("frame size changed from %s to %s: dropping every tracked object", self.frame_shape, shape)
            self.reset()
        self.frame_shape = shape
        self.frame += 1
        frame = self.frame
        prompted = {o.object_id for o in self.objects.apply_prompts(frame, prompts)}
        for object_id in set(self.memories) - set(self.objects.objects):
            del self.memories[object_id]  # made room for new prompts
        self.objects.observe(frame, detections)
        try:
            logits = self._segment(context, frame, prompted)
        except torch.cuda.OutOfMemoryError:
            victim = self.objects.lowest_priority() if self.objects.objects else None
            log.warning("CUDA out of memory with %d objects: dropping object %s and skipping this frame",
                        len(self.objects.objects), victim)
            if victim is not None:
                self.objects.remove(victim)
                self.memories.pop(victim, None)
            torch.cuda.empty_cache()
            return {}
        dropped = self.objects.update_masks(frame, {k: bool((v.logits > 0).any()) for k, v in logits.items()})
        for object_id in dropped:
            self.memories.pop(object_id, None)
            logits.pop(object_id, None)
        return logits

    def _segment(self, context: FrameContext, frame: int, prompted: set[int]) -> dict[int, MaskCrop]:
        import torch
        import torch.nn.functional as F

        if not self.objects.objects:
            return {}
        logits = {}
        autocast = torch.autocast(self.device.type, dtype=self.autocast_dtype, enabled=self.autocast_dtype is not None)
        with torch.inference_mode(), autocast:
            features, positions, sizes = self._encode(context.image)
            for object_id, obj in self.objects.objects.items():
                memory = self.memories.get(object_id)
                if memory is None:
                    if object_id not in prompted:
                        continue
                    memory = self.memories[object_id] = ObjectMemory(self.p["max_conditioning_frames"], self.max_recent)
                is_prompt = object_id in prompted
                output = self.model.track_step(
                    frame_idx=frame, is_init_cond_frame=memory.empty, current_vision_feats=features,
                    current_vision_pos_embeds=positions, feat_sizes=sizes,
                    point_inputs=self._box_prompt(obj.box, context.gray.shape) if is_prompt else None,
                    mask_inputs=None, output_dict=memory.outputs, num_frames=frame + 1, run_mem_encoder=True)
                memory.store(frame, output, is_prompt)
                mask = F.interpolate(output["pred_masks"].float(), size=context.gray.shape, mode="bilinear",
                                     align_corners=False)
                logits[object_id] = MaskCrop.of_frame(mask[0, 0].cpu().numpy())
        return logits


@hookimpl
def tao_ros_add_segmenters():
    return [Sam2StreamSegmenter]
