"""Datasets as normalised tensors on the training device, with batch augmentation.

``load_dataset(name)`` accepts ``mnist``, ``fashion-mnist``, ``cifar10``,
``digits`` (scikit-learn's 8x8 digits, resized to 28x28), ``imagenette`` and
``imagewoof`` (and their ``-160``/``-320`` sizes), a path to an ``.npz`` file, or an
image folder with ``train/`` and ``val/`` (:mod:`learnact.data.images`). See
:mod:`learnact.data.sources` for where files are looked up or downloaded.
"""

from .formats import DatasetError, read_cifar10_batch, read_idx, read_npz
from .loader import DATASETS, TensorData, iterate_batches, load_dataset, mixup

__all__ = [
    "DATASETS",
    "DatasetError",
    "TensorData",
    "iterate_batches",
    "load_dataset",
    "mixup",
    "read_cifar10_batch",
    "read_idx",
    "read_npz",
]
