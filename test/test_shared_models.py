"""Models shared by the pipelines of one process: loaded once per weights and arguments, freed with
their last holder, called one at a time in the order asked."""

from __future__ import annotations

import gc
import os
import threading
import time

from tao_ros.builtin.shared_models import FairLock, shared_model


class Loaded:
    loads = 0

    def __init__(self, weights, size):
        Loaded.loads += 1
        self.weights, self.size = weights, size


def test_a_model_is_loaded_once_per_file_and_arguments_and_again_when_the_file_changes(tmp_path):
    weights = tmp_path / "model.bin"
    weights.write_bytes(b"one")
    Loaded.loads = 0
    first = shared_model(Loaded, str(weights), 4)
    again = shared_model(Loaded, str(tmp_path / "." / "model.bin"), 4)  # the same file by another path
    assert again.model is first.model and again.lock is first.lock and Loaded.loads == 1
    other = shared_model(Loaded, str(weights), 8)
    assert other.model is not first.model and Loaded.loads == 2
    weights.write_bytes(b"other weights")
    os.utime(weights, ns=(time.time_ns(), time.time_ns() + 10**9))
    replaced = shared_model(Loaded, str(weights), 4)
    assert replaced.model is not first.model and Loaded.loads == 3


def test_a_model_is_freed_with_its_last_holder_and_a_failed_load_keeps_nothing(tmp_path):
    Loaded.loads = 0
    held = shared_model(Loaded, "config.yaml", 1)
    del held
    gc.collect()
    shared_model(Loaded, "config.yaml", 1)
    assert Loaded.loads == 2

    def broken(weights):
        raise ValueError("damaged")

    for _ in range(2):
        try:
            shared_model(broken, "x")
        except ValueError:
            pass
        else:
            raise AssertionError("the load's error must propagate")


def test_the_fair_lock_serves_threads_in_the_order_they_asked():
    lock, served = FairLock(), []
    lock.__enter__()  # held: every thread below queues
    threads = []
    for number in range(6):
        thread = threading.Thread(target=lambda n=number: (lock.__enter__(), served.append(n), lock.__exit__()))
        thread.start()
        deadline = time.monotonic() + 5
        while lock._next_ticket < number + 2 and time.monotonic() < deadline:  # it has its ticket
            time.sleep(0.001)
        threads.append(thread)
    lock.__exit__()
    for thread in threads:
        thread.join(5)
    assert served == list(range(6))


def test_two_pipelines_of_one_process_share_the_detector_model():
    from tao_ros.config import load_config
    from tao_ros.core.pipeline import AnomalyPipeline

    overrides = {"detector": "open_set", "features": ["speed"], "open_set": {"weights": "yolov8n.yaml"}}
    first, second = (AnomalyPipeline(load_config(overrides=overrides)) for _ in range(2))
    models = [p.detector.plugin.model for p in (first, second)]
    assert models[0] is models[1]
    assert first.detector.plugin.motion is not second.detector.plugin.motion  # each camera its own stream state
