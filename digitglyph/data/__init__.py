"""The data layer: every source of images and every split, in one package.

* :mod:`.mnist`: the MNIST files (locate, download, verify, read) and its validation split;
* :mod:`.pen`: real pen handwriting (pendigits, UNIPEN): reader, cache, writer-disjoint splits;
* :mod:`.sources`: the training, validation and test data of a training run, from every source.
"""

from .mnist import (
    ENV_VAR,
    FILES,
    MnistDataError,
    default_data_dir,
    load_mnist,
    resolve_data_dir,
    train_validation_split,
)

__all__ = [
    "ENV_VAR",
    "FILES",
    "MnistDataError",
    "default_data_dir",
    "load_mnist",
    "resolve_data_dir",
    "train_validation_split",
]
