"""MNIST loading: good, missing, truncated and corrupted files, npz, and the split."""

import gzip
import io
import shutil

import numpy as np
import pytest

from digitglyph.data import ENV_VAR, FILES, MnistDataError, load_mnist, train_validation_split


def test_loads_shapes_and_types_like_keras(mnist):
    (x_train, y_train), (x_test, y_test) = mnist
    assert x_train.shape == (60000, 28, 28) and y_train.shape == (60000,)
    assert x_test.shape == (10000, 28, 28) and y_test.shape == (10000,)
    assert x_train.dtype == np.uint8 and y_test.dtype == np.uint8
    assert np.bincount(y_test).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_data_dir_comes_from_the_environment(mnist_dir, monkeypatch):
    monkeypatch.setenv(ENV_VAR, str(mnist_dir))
    (_, y_train), _ = load_mnist()
    assert len(y_train) == 60000


@pytest.fixture
def copy_of_mnist(mnist_dir, tmp_path):
    for name, _ in FILES.values():
        shutil.copy(mnist_dir / name, tmp_path / name)
    return tmp_path


def test_missing_file_names_the_file_and_the_remedy(copy_of_mnist):
    (copy_of_mnist / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(MnistDataError, match=r"t10k-labels-idx1-ubyte\.gz is missing.*DIGITGLYPH_DATA"):
        load_mnist(copy_of_mnist, download=False)


def test_truncated_file_is_reported(copy_of_mnist):
    path = copy_of_mnist / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(MnistDataError, match=r"t10k-images-idx3-ubyte\.gz.*truncated or corrupted"):
        load_mnist(copy_of_mnist, download=False)


def test_corrupted_content_is_caught_by_checksum(copy_of_mnist):
    path = copy_of_mnist / "t10k-labels-idx1-ubyte.gz"
    raw = bytearray(gzip.decompress(path.read_bytes()))
    raw[100] = (raw[100] + 1) % 10  # a valid-looking label, wrong content
    path.write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(MnistDataError, match=r"t10k-labels-idx1-ubyte\.gz has the wrong content"):
        load_mnist(copy_of_mnist, download=False)


def test_not_gzip_is_reported(copy_of_mnist):
    (copy_of_mnist / "train-labels-idx1-ubyte.gz").write_bytes(b"<html>not found</html>")
    with pytest.raises(MnistDataError, match="not a readable gzip file"):
        load_mnist(copy_of_mnist, download=False)


def test_missing_directory_offline_is_clear(tmp_path):
    with pytest.raises(MnistDataError, match="is missing"):
        load_mnist(tmp_path / "nowhere", download=False)


def test_keras_npz_is_accepted(mnist, tmp_path):
    (x_train, y_train), (x_test, y_test) = mnist
    np.savez_compressed(tmp_path / "mnist.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    (a, b), (c, d) = load_mnist(tmp_path, download=False)
    assert np.array_equal(a, x_train) and np.array_equal(d, y_test)


def test_bad_npz_is_reported(tmp_path):
    np.savez(tmp_path / "mnist.npz", x_train=np.zeros((3, 28, 28), np.uint8))
    with pytest.raises(MnistDataError, match="mnist.npz"):
        load_mnist(tmp_path, download=False)


def test_validation_split_is_disjoint_stratified_and_from_training(mnist):
    (x_train, y_train), _ = mnist
    (x_fit, y_fit), (x_val, y_val) = train_validation_split(x_train, y_train, 5000, seed=0)
    assert len(x_fit) + len(x_val) == 60000 and abs(len(x_val) - 5000) <= 10
    counts = np.bincount(y_val) / len(y_val)
    assert np.abs(counts - np.bincount(y_train) / 60000).max() < 0.002
    again = train_validation_split(x_train, y_train, 5000, seed=0)[1][1]
    assert np.array_equal(again, y_val)


def test_training_data_includes_the_corrections(tmp_path, mnist_dir):
    """Corrections are one of the data layer's sources: each repeated corrections_weight times."""
    from digitglyph.corrections import CorrectionStore
    from digitglyph.data.sources import run_data
    from digitglyph.train import TrainConfig

    store = CorrectionStore(tmp_path / "c.sqlite")
    image = np.zeros((28, 28), np.uint8)
    image[4:24, 12:16] = 255
    canvas = np.zeros((280, 280, 4), np.uint8)
    canvas[40:240, 120:160, 3] = 255
    store.add([[(140.0, 40.0), (140.0, 240.0)]], canvas, image, 7, 1, "test-model")
    config = TrainConfig(train_subset=100, data_dir=str(mnist_dir), corrections_db=str(store.path))
    data = run_data(config)
    assert data.train_size == 100 + config.corrections_weight and data.classes == 10
    assert (data.labels[-config.corrections_weight :] == 1).all()
    np.testing.assert_array_equal(data.pool[data.candidates[-1, 0]], image)
    assert set(data.validation) == set(data.test) == {"mnist"}


def test_npz_with_the_right_shapes_but_wrong_content_is_refused(mnist, tmp_path):
    """Issue 17 item 8: an all-zero npz of MNIST's shapes used to load as MNIST."""
    (x_train, y_train), (x_test, y_test) = mnist
    np.savez_compressed(
        tmp_path / "mnist.npz", x_train=np.zeros_like(x_train), y_train=y_train, x_test=x_test, y_test=y_test
    )
    with pytest.raises(MnistDataError, match=r"mnist.npz \(x_train\) has the wrong content"):
        load_mnist(tmp_path, download=False)


def test_a_download_is_verified_before_it_takes_the_real_name(tmp_path, monkeypatch):
    """Issue 17 item 8: a truncated download used to be moved under the real file name before it was checked."""
    import urllib.request

    from digitglyph.data import mnist as mnist_module

    class Truncated(io.BytesIO):
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: Truncated(gzip.compress(b"\0\0\x08\x03")))
    with pytest.raises(MnistDataError, match="could not be downloaded .*wrong content"):
        mnist_module._download(
            "t10k-labels-idx1-ubyte.gz", tmp_path / "t10k-labels-idx1-ubyte.gz", mnist_module.FILES["test_labels"][1]
        )
    assert list(tmp_path.iterdir()) == []  # no file under the real name, no temporary left behind
