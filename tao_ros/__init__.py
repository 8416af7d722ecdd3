"""tao_ros: find, segment and track anomalous objects in camera streams (ROS 2).

Implements the pipeline of "Track Any Anomalous Object": an object-level anomaly stage
(detect, describe, score against a density model of normal data, merge) whose boxes prompt a
segmenter that tracks instance masks.
"""

__version__ = "0.1.0"
