"""tao-ros: the command line. Thin: it parses options and calls the core, io and eval modules.

Heavy libraries (OpenCV, scikit-learn, torch) are imported inside the commands so that
``tao-ros --help`` starts at once.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from tao_ros.errors import InputError, TaoRosError
from tao_ros.eval.groundtruth import FORMATS

log = logging.getLogger("tao_ros")


def progress(iterator, desc: str = "", total: int | None = None):
    """A tqdm progress bar on stderr (hidden when stderr is not a terminal)."""
    from tqdm import tqdm

    return tqdm(iterator, desc=desc, total=total, unit="frame", leave=False, disable=None, dynamic_ncols=True)


def _config(args, **overrides):
    """The configuration of ``--config``, with ``-p KEY=VALUE`` and then ``overrides`` applied."""
    from tao_ros.config import load_config, parse_assignments

    return load_config(args.config, {**parse_assignments(args.param), **overrides})


def _pipeline(args, **overrides):
    from tao_ros.core.pipeline import AnomalyPipeline

    return AnomalyPipeline(_config(args, **overrides))


def cmd_plugins(args) -> int:
    from tao_ros.plugins import PluginRegistry

    registry = PluginRegistry.discover()
    for kind, infos in registry.infos.items():
        print(f"{kind}:")
        for name in sorted(infos):
            info = infos[name]
            doc = (info.cls.__doc__ or "").strip().splitlines()[0] if info.cls.__doc__ else ""
            print(f"  {name:<14} [{info.package}]  {doc}")
        if not infos:
            print("  (none)")
    for error in registry.errors:
        print(f"error: {error}", file=sys.stderr)
    return 1 if registry.errors else 0


def _clips(sources, args, sync_slop: float):
    """The clips of ``sources``, a bag's depth paired with its images within ``sync_slop`` seconds."""
    from tao_ros.io.sources import open_clips

    return [clip for source in sources
            for clip in open_clips(source, args.image_topic, args.depth_topic, sync_slop=sync_slop)]


def clip_intrinsics(clip, intrinsics_file: Path | None = None, camera_info_topic: str | None = None):
    """The camera intrinsics for a clip's 3D columns: from ``intrinsics_file``, else from the bag's
    camera_info (``camera_info_topic``, or the one found beside the depth topic); None (with a
    warning saying why) for a clip without depth or intrinsics."""
    from tao_ros.io.camera_info import intrinsics_from_camera_info, load_intrinsics
    from tao_ros.io.sources import bag_camera_info

    if clip.depth_topic is None:
        if intrinsics_file is not None:
            raise InputError(f"--intrinsics needs depth: {clip.name} has none (only rosbag2 sources with "
                             "--depth-topic carry an aligned depth image)")
        return None
    if intrinsics_file is not None:
        intrinsics, note = load_intrinsics(intrinsics_file)
    else:
        message = bag_camera_info(clip.path, clip.depth_topic, camera_info_topic)
        if message is None:
            log.warning("%s: depth but no camera_info (name it with --camera-info-topic, or pass --intrinsics): "
                        "no 3D columns", clip.name)
            return None
        intrinsics, note = intrinsics_from_camera_info(message)
    if note:
        log.warning("%s: %s", clip.name, note)
    return intrinsics


def report_skipped(clips) -> None:
    """One line on stderr if frames of ``clips`` could not be decoded (each was named in a warning)."""
    skipped = [what for clip in clips for what in clip.skipped]
    if skipped:
        print(f"{len(skipped)} frame(s) skipped (could not be decoded; named in the warnings above)", file=sys.stderr)


def cmd_fit(args) -> int:
    from tao_ros.io.outputs import ensure_writable

    ensure_writable(Path(args.output).parent)
    pipeline = _pipeline(args)
    clips = _clips(args.sources, args, pipeline.config.sync_slop)
    summary = pipeline.fit([(clip.name, clip.frames) for clip in clips],
                           progress=lambda it, desc="": progress(it, desc))
    pipeline.save(args.output)
    samples = ", ".join(f"{name}: {n} objects" + (", too few: scores nothing" if name in pipeline.unscored else "")
                        for name, n in summary.items())
    print(f"fitted on {len(clips)} clip(s) ({samples}) -> {args.output}")
    report_skipped(clips)
    return 0


def run_clips(pipeline, clips, output: Path, on_result=None, resume: bool = False,
              intrinsics_file: Path | None = None, camera_info_topic: str | None = None) -> list[Path]:
    """Run ``pipeline`` on every clip, writing ``output/CLIP/objects.csv`` (and masks); returns the
    folders. ``on_result(clip, frame, result)`` sees every frame's result (e.g. to draw overlays).
    With ``resume``, clips whose ``objects.csv`` exists (written only when a clip completes) are kept.
    Clips with depth and intrinsics (``clip_intrinsics``) get 3D columns. On Ctrl-C, says which
    clips are complete."""
    from tao_ros.core.localization import DepthRange
    from tao_ros.io.outputs import ClipWriter, completed_by, ensure_writable

    ensure_writable(output)
    folders = []
    try:
        for clip in clips:
            folder = output / clip.name
            if resume and (folder / "objects.csv").is_file():
                source = completed_by(folder)
                if source == str(clip.path.resolve()):
                    log.warning("kept %s: complete from an earlier run (--resume)", folder)
                    folders.append(folder)
                    continue
                if source is not None:
                    raise InputError(f"{folder} holds the outputs of {source}, not of {clip.path}: --resume "
                                     "needs the same source; pass another --output")
                log.warning("%s records no source (older tao_ros): running the clip again", folder)
            pipeline.reset()
            intrinsics = clip_intrinsics(clip, intrinsics_file, camera_info_topic)
            with ClipWriter(folder, clip.path, intrinsics, DepthRange.of(pipeline.config.options)) as writer:
                for frame in progress(clip.frames(), desc=clip.name, total=clip.length):
                    result = pipeline.process(frame)
                    writer.write(result, frame.depth)
                    if on_result is not None:
                        on_result(clip, frame, result)
            if intrinsics is not None:
                print(f"{clip.name}: {writer.located} object rows located in 3D, {writer.not_located} without "
                      "enough valid depth")
            folders.append(folder)
    except KeyboardInterrupt:
        done = ", ".join(f.name for f in folders) or "none"
        print(f"interrupted: complete clips under {output}: {done}; run again with --resume to finish",
              file=sys.stderr)
        raise
    report_skipped(clips)
    return folders


def _model_config(args):
    """The configuration with ``--model`` as its model_path; TaoRosError if it names no model."""
    config = _config(args, **({"model_path": str(args.model)} if args.model else {}))
    if not config.model_path:
        raise TaoRosError("no model: pass --model MODEL (from 'tao-ros fit') or set model_path in the config")
    return config


def cmd_run(args) -> int:
    from tao_ros.core.pipeline import AnomalyPipeline

    pipeline = AnomalyPipeline(_model_config(args))
    pipeline.load(pipeline.config.model_path)
    clips = _clips([args.source], args, pipeline.config.sync_slop)
    folders = run_clips(pipeline, clips, Path(args.output), resume=args.resume, intrinsics_file=args.intrinsics,
                        camera_info_topic=args.camera_info_topic)
    print(f"wrote {len(folders)} clip folder(s) under {args.output}")
    if args.eval:
        return evaluate_and_report(args.output, args.eval, args.gt_format, args.report or Path(args.output) / "report",
                                   pipeline.threshold, pipeline.config.merge_iou)
    return 0


def evaluate_and_report(pred_dir, gt, gt_format, report_dir, threshold, merge_iou) -> int:
    from tao_ros.eval.evaluate import evaluate, format_table, write_report
    from tao_ros.eval.groundtruth import read_ground_truth
    from tao_ros.io.outputs import ensure_writable

    ensure_writable(report_dir)
    metrics = evaluate(pred_dir, read_ground_truth(gt, gt_format), threshold, merge_iou)
    print(format_table(metrics))
    written = write_report(metrics, report_dir)
    print(f"report: {', '.join(str(p) for p in written)}")
    return 0


def cmd_eval(args) -> int:
    config = _config(args)
    threshold = args.threshold if args.threshold is not None else config.threshold
    return evaluate_and_report(args.pred_dir, args.gt, args.gt_format, args.output, threshold, config.merge_iou)


def cmd_synth(args) -> int:
    from tao_ros.eval.synth import synthesize
    from tao_ros.io.outputs import ensure_writable

    ensure_writable(args.output)

    normal, test = synthesize(args.output, seed=args.seed, train_frames=args.train_frames,
                              test_frames=args.test_frames, storage=args.storage)
    print(f"wrote {normal} (normal activity) and {test} (with anomalies and ground truth)")
    return 0


def cmd_demo(args) -> int:
    """Synthesize, fit, run, evaluate, draw: the whole pipeline on generated data, no weights, no GPU."""
    import shutil

    import cv2

    from tao_ros.eval.synth import DEPTH_TOPIC, synthesize
    from tao_ros.io.overlay import draw_overlay
    from tao_ros.io.sources import open_clips

    output = Path(args.output)
    if output.exists():
        shutil.rmtree(output / "data", ignore_errors=True)
    print(f"[1/4] synthesizing scenes in {output / 'data'}")
    normal, test = synthesize(output / "data", seed=args.seed, train_frames=args.train_frames,
                              test_frames=args.test_frames)
    # The scenes carry an aligned depth topic, as an RGB-D camera would: measured depth puts
    # speeds of near and far objects on one scale. With --config, that file decides.
    rgbd = {} if args.config else {"depth_source": "depth_image", "speed": {"perspective": "depth"}}
    pipeline = _pipeline(args, **rgbd)
    print("[2/4] fitting the density models on the normal scene")
    slop = pipeline.config.sync_slop
    pipeline.fit([(clip.name, clip.frames) for clip in open_clips(normal, depth_topic=DEPTH_TOPIC, sync_slop=slop)],
                 progress=lambda it, desc="": progress(it, desc))
    pipeline.save(output / "model.npz")
    print("[3/4] running on the test scene")
    video = output / "overlay.avi"
    writer = None

    def draw(clip, frame, result):
        nonlocal writer
        canvas = draw_overlay(frame.image, result)
        if writer is None:
            writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, canvas.shape[1::-1])
        writer.write(canvas)

    run_clips(pipeline, open_clips(test, depth_topic=DEPTH_TOPIC, sync_slop=slop), output / "run", on_result=draw)
    if writer is not None:
        writer.release()
    print("[4/4] evaluating against the exact ground truth")
    code = evaluate_and_report(output / "run", test, "bag", output / "report", pipeline.threshold,
                               pipeline.config.merge_iou)
    print(f"overlay video: {video}")
    return code


def cmd_replay(args) -> int:
    from tao_ros.io.outputs import ensure_writable
    from tao_ros.io.sources import unpaired_note
    from tao_ros.ros.engine import AnomalyEngine
    from tao_ros.ros.replay import replay

    config = _model_config(args)
    ensure_writable(Path(args.out_bag).parent)
    engine = AnomalyEngine(config)
    written = replay(engine, args.in_bag, args.out_bag, args.image_topic, args.depth_topic, args.node_name,
                     args.distribution, progress=lambda it, total=None: progress(it, "replay", total),
                     camera_info_topic=args.camera_info_topic)
    print(f"wrote {args.out_bag}: " + ", ".join(f"/{args.node_name}/{k}: {n}" for k, n in written.items()))
    if written["detections_3d"]:
        print(f"3D positions: {engine.counts['objects_3d']} anomalous objects located, "
              f"{engine.counts['objects_without_3d']} without enough valid depth")
    elif args.depth_topic or engine.counts["without_depth"]:
        print(f"no 3D outputs: {engine.camera.problem or 'no anomalous object had depth'}")
    if engine.counts["without_depth"]:
        print(unpaired_note(Path(args.in_bag), engine.counts["without_depth"], args.depth_topic or "depth",
                            config.sync_slop))
    dropped = sum(engine.bad_input.values())
    if dropped:
        print(f"{dropped} input frame(s) could not be used: {dict(engine.bad_input)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tao-ros", description="Find, segment and track anomalous objects in camera streams.",
        epilog="exit codes: 0 done, 1 unexpected error (a plugin's, a bug: --debug shows where), "
               "2 bad input, configuration or model file, 3 file system error, 130 interrupted")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name, func, help_text):
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--config", type=Path, default=None,
                         help="configuration YAML (ROS 2 parameter file layout); default: the packaged "
                              "config/anomaly.yaml (config/pretrained.yaml: the pretrained profile)")
        sub.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE",
                         help="set one parameter over the configuration, the value read as YAML "
                              "(-p open_set.weights=/models/yolo.tflite -p threshold_quantile=0.995)")
        sub.set_defaults(func=func)
        return sub

    def add_topics(sub):
        sub.add_argument("--image-topic", default=None, help="camera topic of a rosbag source (found "
                                                              "automatically when the bag has one)")
        sub.add_argument("--depth-topic", default=None, help="aligned depth image topic of a rosbag source")

    def add_camera_info(sub):
        sub.add_argument("--camera-info-topic", default=None,
                         help="camera_info of the depth-aligned image, for 3D positions (default: the bag's "
                              "camera_info beside the depth topic)")

    add("plugins", cmd_plugins, "list every plugin by kind, with the package it comes from")

    fit = add("fit", cmd_fit, "fit the density models on normal data")
    fit.add_argument("sources", nargs="+", metavar="SOURCE",
                     help="normal data: video file, folder of frames, folder of clip folders, or rosbag2")
    fit.add_argument("--output", "-o", required=True, type=Path, metavar="MODEL",
                     help="model file to write (.npz: arrays + JSON, no pickle)")
    add_topics(fit)

    run = add("run", cmd_run, "score (and segment) every frame of a source")
    run.add_argument("source", metavar="SOURCE",
                     help="video file, folder of frames, folder of clip folders, or rosbag2")
    run.add_argument("--model", "-m", type=Path, default=None, metavar="MODEL",
                     help="model file from 'tao-ros fit' (default: model_path of the config)")
    run.add_argument("--output", "-o", required=True, type=Path, metavar="DIR",
                     help="output folder: one sub-folder per clip with objects.csv (and masks/)")
    run.add_argument("--eval", type=Path, default=None, metavar="GT",
                     help="evaluate the outputs against this ground truth afterwards (see 'tao-ros eval')")
    run.add_argument("--gt-format", choices=FORMATS, default=None, help="format of --eval ground truth")
    run.add_argument("--report", type=Path, default=None, metavar="REPORT_DIR",
                     help="where --eval writes metrics.json and plots (default: OUTPUT/report)")
    run.add_argument("--resume", action="store_true",
                     help="keep clips that an interrupted earlier run completed (their objects.csv exists)")
    add_topics(run)
    add_camera_info(run)
    run.add_argument("--intrinsics", type=Path, default=None, metavar="FILE",
                     help="camera calibration YAML (as camera_calibration writes it) of the depth-aligned image, "
                          "for the 3D columns where the source has depth but no camera_info")

    evaluation = add("eval", cmd_eval, "compute RBDC/TBDC, frame- and pixel-level metrics of 'run' outputs")
    evaluation.add_argument("pred_dir", type=Path, metavar="PRED_DIR",
                            help="output folder of 'tao-ros run' (one sub-folder per clip)")
    evaluation.add_argument("--gt", required=True, type=Path, help="ground truth folder, file or rosbag2")
    evaluation.add_argument("--gt-format", choices=FORMATS, default=None,
                            help="ground truth format (guessed from the files when omitted)")
    evaluation.add_argument("--output", "-o", required=True, type=Path, metavar="REPORT_DIR",
                            help="folder for metrics.json and the plots")
    evaluation.add_argument("--threshold", type=float, default=None,
                            help="operating threshold for the binary mask and at-threshold rates (default: "
                                 "threshold of the config)")

    synth = add("synth", cmd_synth, "write synthetic rosbag2 scenes with exact ground truth")
    synth.add_argument("--output", "-o", required=True, type=Path, metavar="DIR",
                       help="folder for the 'normal' and 'test' bags (must not hold them yet)")
    add_scene_options(synth)
    synth.add_argument("--storage", choices=("sqlite3", "mcap"), default="sqlite3", help="rosbag2 storage format")

    rep = add("replay", cmd_replay, "feed a bag's camera (and depth) messages through the node's code into a new bag")
    rep.add_argument("in_bag", type=Path, metavar="IN_BAG", help="input rosbag2 (sqlite3 or mcap)")
    rep.add_argument("out_bag", type=Path, metavar="OUT_BAG", help="output rosbag2 folder to create")
    rep.add_argument("--model", "-m", type=Path, default=None, metavar="MODEL",
                     help="model file from 'tao-ros fit' (default: model_path of the config)")
    rep.add_argument("--node-name", default="anomaly_node", help="namespace of the output topics (default: anomaly_node)")
    rep.add_argument("--distribution", choices=("jazzy", "humble"), default="jazzy",
                     help="ROS 2 distribution whose message definitions the bag records (default: jazzy)")
    add_topics(rep)
    add_camera_info(rep)

    demo = add("demo", cmd_demo, "synthesize, fit, run and evaluate: the whole pipeline on generated data")
    demo.add_argument("--output", "-o", type=Path, default=Path("tao_ros_demo"), metavar="DIR",
                      help="folder for the data, model, outputs, report and overlay video (default: tao_ros_demo)")
    add_scene_options(demo)
    return parser


def add_scene_options(sub) -> None:
    sub.add_argument("--seed", type=int, default=0, help="random seed (same seed, same scenes)")
    sub.add_argument("--train-frames", type=int, default=400, help="frames of the normal scene")
    sub.add_argument("--test-frames", type=int, default=300, help="frames of the test scene")


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except Exception as exc:  # noqa: BLE001 - the command line's edge: one line and an exit code
        if args.debug:
            raise
        code, kind = (2, "error") if isinstance(exc, TaoRosError) else \
            (3, "file system error") if isinstance(exc, OSError) else (1, f"unexpected {type(exc).__name__}")
        print(f"tao-ros {args.command}: {kind}: {exc}" + ("" if code != 1 else " (--debug shows where)"),
              file=sys.stderr)
        return code
    except KeyboardInterrupt:
        if args.debug:
            raise
        print(f"tao-ros {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
