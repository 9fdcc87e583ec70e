"""MNIST on disk: where it lives, how it is fetched, checked and read.

``load_mnist`` reads the four standard IDX ``.gz`` files (or Keras' ``mnist.npz``)
from a directory chosen in this order: the ``data_dir`` argument, the
``DIGITGLYPH_DATA`` environment variable, then a per-user cache directory.  When
the files are missing there and the machine is online, the standard files are
downloaded.  Every file's *uncompressed* content, and every array of an ``mnist.npz``,
is checked against its published sha256 (the gzip wrapper itself may legitimately
differ between mirrors), and a download is checked before it takes its real name, so
a truncated or corrupted copy is reported as such instead of surfacing as a numpy
error deep inside training.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zlib
from pathlib import Path

import numpy as np

from .location import resolve, user_cache

ENV_VAR = "DIGITGLYPH_DATA"

# sha256 of the uncompressed IDX content (see ../shared/mnist/README.md).
FILES = {
    "train_images": ("train-images-idx3-ubyte.gz", "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
    "train_labels": ("train-labels-idx1-ubyte.gz", "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),
    "test_images": ("t10k-images-idx3-ubyte.gz", "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
    "test_labels": ("t10k-labels-idx1-ubyte.gz", "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
}
MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
EXPECTED_COUNT = {"train": 60000, "test": 10000}


class MnistDataError(RuntimeError):
    """A clear, user-facing problem with the MNIST files."""


def default_data_dir() -> Path:
    """The per-user cache directory used when nothing else is configured."""
    return user_cache("mnist")


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    return resolve(data_dir, ENV_VAR, default_data_dir)


def _read_gz(path: Path) -> bytes:
    try:
        with gzip.open(path, "rb") as handle:
            return handle.read()
    except (OSError, EOFError, zlib.error) as error:
        raise MnistDataError(
            f"{path} is not a readable gzip file ({error}); it is truncated or corrupted. "
            f"Delete it and run again to download a fresh copy, or point {ENV_VAR} at a good copy."
        ) from None


def _parse_idx(raw: bytes, path: Path, ndim: int) -> np.ndarray:
    magic = 0x00000800 | ndim
    header = 4 + 4 * ndim
    if len(raw) < header or int.from_bytes(raw[:4], "big") != magic:
        raise MnistDataError(f"{path} is not an IDX file with {ndim} dimension(s) (bad magic number).")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(shape))
    if len(raw) != expected:
        raise MnistDataError(
            f"{path} holds {len(raw) - header} data bytes but its header promises {expected - header}: "
            "the file is truncated or corrupted. Delete it and fetch it again."
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def _download(name: str, target: Path, sha256: str) -> None:
    """Fetch ``name`` into a temporary file, verify it, and only then give it its real name."""
    target.parent.mkdir(parents=True, exist_ok=True)
    errors = []
    for mirror in MIRRORS:
        try:
            with (
                urllib.request.urlopen(mirror + name, timeout=30) as response,
                tempfile.NamedTemporaryFile(dir=target.parent, suffix=".part", delete=False) as tmp,
            ):
                shutil.copyfileobj(response, tmp)
        except (urllib.error.URLError, OSError) as error:
            errors.append(f"{mirror}: {error}")
            continue
        try:
            _verify(_read_gz(Path(tmp.name)), sha256, f"{mirror}{name}")
        except MnistDataError as error:
            errors.append(str(error))
            os.unlink(tmp.name)
            continue
        os.replace(tmp.name, target)  # atomic, and only a verified file gets the real name
        return
    raise MnistDataError(
        f"{name} is missing from {target.parent} and could not be downloaded ({'; '.join(errors)}). "
        f"Copy the four MNIST IDX .gz files there, or set {ENV_VAR} (or pass data_dir) to a directory holding them."
    )


def _verify(raw: bytes, sha256: str, source) -> None:
    digest = hashlib.sha256(raw).hexdigest()
    if digest != sha256:
        raise MnistDataError(
            f"{source} has the wrong content (sha256 of the uncompressed data is {digest[:12]}..., "
            f"expected {sha256[:12]}...): it is corrupted or not MNIST. Delete it and fetch it again."
        )


def _load_idx(directory: Path, key: str, download: bool) -> np.ndarray:
    name, sha256 = FILES[key]
    path = directory / name
    if not path.exists():
        if not download:
            raise MnistDataError(
                f"{path} is missing. Copy the MNIST IDX .gz files into {directory}, "
                f"or set {ENV_VAR} (or pass data_dir) to a directory holding them."
            )
        _download(name, path, sha256)
    raw = _read_gz(path)
    _verify(raw, sha256, path)
    return _parse_idx(raw, path, ndim=3 if key.endswith("images") else 1)


def _load_npz(path: Path):
    """Keras' ``mnist.npz``, verified like the IDX files: each array is written back as the IDX file it came
    from (header + bytes) and that content must have the published sha256."""
    try:
        with np.load(path) as archive:
            arrays = {k: archive[k] for k in ("x_train", "y_train", "x_test", "y_test")}
    except (OSError, ValueError, KeyError, zlib.error) as error:
        raise MnistDataError(f"{path} is not a readable Keras mnist.npz ({error}).") from None
    names = {"x_train": "train_images", "y_train": "train_labels", "x_test": "test_images", "y_test": "test_labels"}
    for key, name in names.items():
        array = arrays[key]
        if array.dtype != np.uint8:
            raise MnistDataError(f"{path}: {key} is {array.dtype}, not the uint8 MNIST arrays.")
        header = (0x00000800 | array.ndim).to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
        _verify(header + np.ascontiguousarray(array).tobytes(), FILES[name][1], f"{path} ({key})")
    return arrays


def _check(images: np.ndarray, labels: np.ndarray, split: str, source: Path) -> None:
    count = EXPECTED_COUNT[split]
    if images.shape != (count, 28, 28) or labels.shape != (count,):
        raise MnistDataError(
            f"{source}: the {split} split has images {images.shape} and labels {labels.shape}, "
            f"expected ({count}, 28, 28) and ({count},)."
        )
    if images.dtype != np.uint8 or labels.max(initial=0) > 9:
        raise MnistDataError(f"{source}: the {split} split is not uint8 images with labels 0-9.")


def load_mnist(data_dir: str | os.PathLike | None = None, download: bool = True):
    """Return ``(x_train, y_train), (x_test, y_test)`` as uint8 arrays, like ``keras.datasets.mnist``.

    Raises :class:`MnistDataError` with a message naming the file and the remedy
    when a file is missing, truncated, corrupted or of the wrong shape.
    """
    directory = resolve_data_dir(data_dir)
    if directory.exists() and not directory.is_dir():
        raise MnistDataError(f"{directory} is a file, not a directory of MNIST files.")
    npz = directory / "mnist.npz"
    if npz.exists() and not (directory / FILES["train_images"][0]).exists():
        arrays = _load_npz(npz)
        _check(arrays["x_train"], arrays["y_train"], "train", npz)
        _check(arrays["x_test"], arrays["y_test"], "test", npz)
        return (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"])
    arrays = {key: _load_idx(directory, key, download) for key in FILES}
    for split in ("train", "test"):
        _check(arrays[f"{split}_images"], arrays[f"{split}_labels"], split, directory)
    return ((arrays["train_images"], arrays["train_labels"]), (arrays["test_images"], arrays["test_labels"]))


def train_validation_split(images, labels, validation_size: int = 5000, seed: int = 0):
    """Carve a stratified validation set out of the *training* images (never the test set)."""
    if not 0 < validation_size < len(images):
        raise ValueError(f"validation_size must be between 1 and {len(images) - 1}, got {validation_size}")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(images))
    # stratify: take the same fraction of every class
    validation = []
    fraction = validation_size / len(images)
    for digit in np.unique(labels):
        members = order[labels[order] == digit]
        validation.append(members[: int(round(fraction * len(members)))])
    validation = np.sort(np.concatenate(validation))
    mask = np.ones(len(images), bool)
    mask[validation] = False
    return (images[mask], labels[mask]), (images[validation], labels[validation])
