"""The scoring code every system of workload_bench.py runs, so that they differ only in how they run it.

It is copied into the MLflow model (``code_paths``: the tabular model's first pipeline step is ``mark_first``) and
into batchpoint's code folder next to the image scoring script; the Pool, Ray Data's actors and the serial limit
import it from here. Its top level is the standard library only: batchpoint's workers import it in
their own time, and the Pool's and Ray's processes import what they use.
"""

from __future__ import annotations

import os
import time
from typing import Any

MARKS_ENV = "WORKLOAD_BENCH_MARKS"
"""A folder where each process records when it made its first prediction; batchpoint's workers, which do not have
it, record it in their job's output folder (the one folder of the job a worker writes to)."""
FEATURES = [f"f{index}" for index in range(8)]
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)

_marked = False


def mark_first(features: Any) -> Any:
    """The tabular model's first step: records this process's first prediction, passes the features on."""
    global _marked
    if not _marked:
        _marked = True
        folder = os.environ.get(MARKS_ENV) or os.environ.get("AZUREML_BI_OUTPUT_PATH")
        if folder:
            with open(os.path.join(folder, f"{os.getpid()}.mark"), "w") as mark:
                mark.write(repr(time.time()))
    return features


def load_resnet(path: str) -> Any:
    """A torchvision ResNet-18 with the weights saved at `path`, for inference on one CPU thread."""
    import torch
    import torchvision

    torch.set_num_threads(1)
    model = torchvision.models.resnet18(weights=None)
    model.load_state_dict(torch.load(path, weights_only=True))
    return model.eval()


def read_image(path: str) -> Any:
    """An image file's RGB pixels (height x width x 3, uint8)."""
    import numpy as np
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def classify(model: Any, images: Any) -> list[int]:
    """The ImageNet class of each image (a sequence of height x width x 3 uint8 arrays) in one forward pass."""
    import numpy as np
    import torch

    pixels = np.stack(images).astype(np.float32) / 255.0
    normalized = (pixels - np.array(MEAN, dtype=np.float32)) / np.array(STD, dtype=np.float32)
    with torch.inference_mode():
        classes = model(torch.from_numpy(normalized.transpose(0, 3, 1, 2).copy())).argmax(dim=1).tolist()
    mark_first(None)
    return classes
