"""Loading, verifying and preparing MNIST: IDX and npz parsing, their errors, the source order."""

import gzip
import socket

import numpy as np
import pytest

import common
import explorer.data.mnist
import explorer.data.prepare
import explorer.errors

from conftest import idx_bytes, make_synthetic_digits, real_mnist_or_skip, write_idx, write_official_folder

# ---------------------------------------------------------------------------------------------
# IDX parsing


@pytest.mark.parametrize("gzipped", [False, True])
def test_read_idx_round_trips_images_and_labels(tmp_path, gzipped):
    images, labels = make_synthetic_digits(30, seed=0)
    image_file = write_idx(tmp_path / "images.idx", images, gzipped)
    label_file = write_idx(tmp_path / "labels.idx", labels, gzipped)
    np.testing.assert_array_equal(
        explorer.data.mnist.read_idx(image_file, explorer.data.mnist.IDX_MAGIC_IMAGES), images
    )
    np.testing.assert_array_equal(
        explorer.data.mnist.read_idx(label_file, explorer.data.mnist.IDX_MAGIC_LABELS), labels
    )


def test_parse_idx_rejects_a_wrong_magic_number():
    raw = bytearray(idx_bytes(np.zeros((3, 28, 28), np.uint8)))
    raw[3] = 2  # claims 2 dimensions where images have 3
    with pytest.raises(
        explorer.errors.DataError, match=r"images.idx: wrong magic number 0x00000802; expected 0x00000803"
    ):
        explorer.data.mnist.parse_idx(bytes(raw), "images.idx", explorer.data.mnist.IDX_MAGIC_IMAGES)


def test_parse_idx_rejects_a_truncated_file():
    raw = idx_bytes(np.zeros((3, 28, 28), np.uint8))[:-5]
    with pytest.raises(
        explorer.errors.DataError,
        match=r"x: 2,363 bytes, expected 2,368 for an IDX array of shape 3x28x28 \(file is truncated\)",
    ):
        explorer.data.mnist.parse_idx(raw, "x", explorer.data.mnist.IDX_MAGIC_IMAGES)


def test_parse_idx_rejects_extra_bytes():
    raw = idx_bytes(np.zeros(4, np.uint8)) + b"\0"
    with pytest.raises(explorer.errors.DataError, match=r"13 bytes, expected 12 .*extra bytes"):
        explorer.data.mnist.parse_idx(raw, "labels", explorer.data.mnist.IDX_MAGIC_LABELS)


def test_parse_idx_rejects_a_header_too_short():
    with pytest.raises(explorer.errors.DataError, match="3 bytes is too short for an IDX header"):
        explorer.data.mnist.parse_idx(b"\0\0\x08", "stub")


def test_read_idx_names_a_truncated_gzip(tmp_path):
    path = tmp_path / "labels.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.zeros(500, np.uint8)))[:-20])
    with pytest.raises(explorer.errors.DataError, match=r"labels.gz: truncated gzip file"):
        explorer.data.mnist.read_idx(path)


# ---------------------------------------------------------------------------------------------
# A folder of official files


def test_official_names_are_checked_against_the_official_md5(tmp_path, synthetic_mnist):
    write_official_folder(tmp_path, synthetic_mnist)
    with pytest.raises(
        explorer.errors.DataError,
        match=r"train-images-idx3-ubyte.gz: corrupt file, md5 of its content is [0-9a-f]{32}, "
        r"the official train-images-idx3-ubyte has 6bbc9ace898e44ae57da46a324031adb",
    ):
        explorer.data.mnist.load_mnist_path(tmp_path)


def test_a_missing_official_file_is_named(tmp_path):
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(b"")
    with pytest.raises(
        explorer.errors.DataError,
        match=r"missing train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz \(gzipped or not\)",
    ):
        explorer.data.mnist.load_mnist_path(tmp_path)


def test_a_path_that_does_not_exist_is_named(tmp_path):
    with pytest.raises(explorer.errors.DataError, match=r"nowhere: no such file or folder"):
        explorer.data.mnist.load_mnist_path(tmp_path / "nowhere")


# ---------------------------------------------------------------------------------------------
# Keras-style npz


def test_npz_loads_as_uint8(synthetic_npz, synthetic_mnist):
    (x_train, _y_train), (_x_test, y_test) = explorer.data.mnist.load_mnist_path(synthetic_npz)
    assert x_train.dtype == np.uint8 and y_test.dtype == np.uint8
    np.testing.assert_array_equal(x_train, synthetic_mnist[0][0])
    np.testing.assert_array_equal(y_test, synthetic_mnist[1][1])


def test_a_folder_with_mnist_npz_loads_it(synthetic_npz):
    (x_train, _), _ = explorer.data.mnist.load_mnist_path(synthetic_npz.parent)
    assert x_train.shape == (600, 28, 28)


def test_npz_that_needs_pickle_is_refused(tmp_path, synthetic_mnist):
    (x_train, y_train), (x_test, _) = synthetic_mnist
    path = tmp_path / "evil.npz"
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=np.array([object()], dtype=object))
    with pytest.raises(explorer.errors.DataError, match=r"evil.npz: holds pickled object arrays, which are refused"):
        explorer.data.mnist.load_mnist_path(path)


def test_npz_missing_an_array_is_named(tmp_path, synthetic_mnist):
    (x_train, y_train), _ = synthetic_mnist
    path = tmp_path / "half.npz"
    np.savez(path, x_train=x_train, y_train=y_train)
    with pytest.raises(explorer.errors.DataError, match=r"half.npz: missing arrays x_test, y_test"):
        explorer.data.mnist.load_mnist_path(path)


def test_npz_labels_outside_0_to_9_are_refused(tmp_path, synthetic_mnist):
    (x_train, y_train), (x_test, y_test) = synthetic_mnist
    path = tmp_path / "labels.npz"
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test + 3)
    with pytest.raises(explorer.errors.DataError, match=r"test labels range from 3 to 12, allowed 0-9"):
        explorer.data.mnist.load_mnist_path(path)


def test_npz_with_mismatched_counts_is_refused(tmp_path, synthetic_mnist):
    (x_train, y_train), (x_test, y_test) = synthetic_mnist
    path = tmp_path / "counts.npz"
    np.savez(path, x_train=x_train, y_train=y_train[:-1], x_test=x_test, y_test=y_test)
    with pytest.raises(explorer.errors.DataError, match=r"600 train images but 599 train labels"):
        explorer.data.mnist.load_mnist_path(path)


def test_a_file_that_is_not_npz_is_refused(tmp_path):
    path = tmp_path / "broken.npz"
    path.write_bytes(b"not a zip file")
    with pytest.raises(explorer.errors.DataError, match=r"broken.npz: not an .npz archive"):
        explorer.data.mnist.load_mnist_path(path)


# ---------------------------------------------------------------------------------------------
# The order of sources


def _offline():
    raise explorer.errors.DataSourceUnavailable("URL fetch failure: Name or service not known")


def test_an_explicit_path_wins_and_is_reported(synthetic_npz):
    lines = []
    keras_calls = []
    *_, source = common.load_mnist(synthetic_npz, environ={}, log=lines.append, keras_loader=keras_calls.append)
    assert source.kind == "path" and keras_calls == []
    (line,) = lines
    assert line.startswith("Data: MNIST files at") and str(synthetic_npz) in line
    assert "(600 train / 200 test digits)" in line


def test_mnist_data_environment_variable_is_used(synthetic_npz):
    *_, source = common.load_mnist(environ={"MNIST_DATA": str(synthetic_npz)}, log=lambda line: None)
    assert source.location == str(synthetic_npz)


def test_keras_is_tried_when_no_path_is_given(synthetic_mnist):
    lines = []
    (x_train, _), _, source = common.load_mnist(environ={}, log=lines.append, keras_loader=lambda: synthetic_mnist)
    assert source.kind == "keras" and len(x_train) == 600
    assert lines[0].startswith("Data: Keras MNIST")


def test_offline_falls_back_to_the_embedded_sample_and_says_so_loudly():
    lines = []
    (x_train, _y_train), (x_test, y_test), source = common.load_mnist(
        environ={}, log=lines.append, keras_loader=_offline, seed=3
    )
    assert source.kind == "embedded-sample" and not source.is_full_mnist
    assert (x_train.shape, x_test.shape) == ((4000, 28, 28), (1000, 28, 28))
    assert np.bincount(y_test).tolist() == [100] * 10  # stratified: 100 test digits per class
    assert "falling back to the embedded sample" in lines[0]
    assert "EMBEDDED 5,000-digit MNIST SAMPLE" in "\n".join(lines) and "--data PATH" in "\n".join(lines)
    # The split is reproducible for a seed.
    (again, _), _, _ = common.load_mnist(environ={}, log=lambda line: None, keras_loader=_offline, seed=3)
    np.testing.assert_array_equal(x_train, again)


def test_an_explicit_path_that_fails_never_falls_back(tmp_path, synthetic_mnist):
    with pytest.raises(explorer.errors.DataError, match="no such file or folder"):
        common.load_mnist(tmp_path / "missing", environ={}, log=lambda line: None, keras_loader=lambda: synthetic_mnist)


def test_keras_download_failure_is_fast_and_restores_the_socket_timeout(monkeypatch):
    seen = {}

    def offline_load_data():
        seen["timeout"] = socket.getdefaulttimeout()
        raise Exception("URL fetch failure on https://example.invalid/mnist.npz: None -- [Errno -2]")

    monkeypatch.setattr(common.keras.datasets.mnist, "load_data", offline_load_data)
    before = socket.getdefaulttimeout()
    with pytest.raises(explorer.errors.DataSourceUnavailable, match="URL fetch failure"):
        explorer.data.mnist.load_keras_mnist(timeout=7)
    assert seen["timeout"] == 7 and socket.getdefaulttimeout() == before


# ---------------------------------------------------------------------------------------------
# Preparation


def test_stratified_split_keeps_class_shares_and_covers_every_index():
    labels = np.repeat(np.arange(10), [50, 60, 70, 80, 90, 100, 110, 120, 130, 140])
    kept, held = explorer.data.prepare.stratified_split(labels, 0.1, seed=0)
    assert np.bincount(labels[held]).tolist() == [5, 6, 7, 8, 9, 10, 11, 12, 13, 14]
    assert len(np.intersect1d(kept, held)) == 0 and len(kept) + len(held) == len(labels)
    np.testing.assert_array_equal(explorer.data.prepare.stratified_split(labels, 0.1, seed=0)[1], held)
    assert not np.array_equal(explorer.data.prepare.stratified_split(labels, 0.1, seed=1)[1], held)


def test_prepare_data_flattens_scales_one_hots_and_holds_out_validation(synthetic_mnist):
    train, test = synthetic_mnist
    data = common.prepare_data(train, test, validation_split=0.1, seed=0)
    assert data.x_train.shape == (540, 784) and data.x_val.shape == (60, 784) and data.x_test.shape == (200, 784)
    assert data.x_train.dtype == np.float32 and data.x_train.min() >= 0.0 and data.x_train.max() <= 1.0
    assert data.y_train.shape == (540, 10) and np.all(data.y_train.sum(axis=1) == 1)
    assert data.y_val.argmax(axis=1).tolist().count(0) == 6  # 10% of each class
    np.testing.assert_array_equal(data.y_test.argmax(axis=1), test[1])
    assert data.input_dim == 784


def test_prepare_data_subsamples_for_quick_runs(synthetic_mnist):
    data = common.prepare_data(*synthetic_mnist, validation_split=0.1, seed=0, max_train=100, max_test=50)
    assert len(data.x_train) + len(data.x_val) == 100 and len(data.x_test) == 50
    assert np.bincount(data.test_labels).tolist() == [5] * 10


# ---------------------------------------------------------------------------------------------
# Real MNIST (the shared folder beside the project)


@pytest.mark.slow
def test_real_mnist_loads_verified_with_official_shapes():
    (x_train, y_train), (x_test, y_test), source = common.load_mnist(real_mnist_or_skip(), log=lambda line: None)
    assert (x_train.shape, y_train.shape, x_test.shape, y_test.shape) == (
        (60000, 28, 28),
        (60000,),
        (10000, 28, 28),
        (10000,),
    )
    assert x_train.dtype == np.uint8 and source.is_full_mnist
    assert np.bincount(y_test).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_common_loads_mnist_flattened_for_a_dense_network(synthetic_npz):
    (x_train, y_train), (x_test, y_test) = common.load_flat_mnist(synthetic_npz, log=lambda line: None)
    assert x_train.shape == (600, common.INPUT_DIM) and y_train.shape == (600, common.NUM_CLASSES)
    assert x_test.shape == (200, 784) and x_train.dtype == np.float32 and 0.0 <= x_train.min() <= x_train.max() <= 1.0
    assert np.array_equal(y_test.sum(axis=1), np.ones(200))  # one-hot: exactly one 1 per digit
