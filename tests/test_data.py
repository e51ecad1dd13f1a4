import pytest
import torch

from mimdarts.config import DataConfig
from mimdarts.data import (
    INFOS,
    DeviceLoader,
    build_search_loaders,
    load_sample,
    load_tensor_split,
    random_crop_flip,
    search_split,
)
from mimdarts.errors import DataError


def test_bundled_sample_is_real_cifar10():
    train, test = load_sample("train"), load_sample("test")
    assert train.images.shape == (5000, 3, 32, 32) and train.images.dtype == torch.uint8
    assert test.images.shape == (1000, 3, 32, 32)
    assert torch.bincount(train.labels).tolist() == [500] * 10
    mean = train.images.float().div(255).mean(dim=(0, 2, 3))
    torch.testing.assert_close(mean, torch.tensor(INFOS["cifar10"].mean), atol=0.01, rtol=0)


def test_search_split_halves_disjoint_and_seeded():
    a, b = search_split(100, seed=3)
    assert len(a) == len(b) == 50 and set(a.tolist()).isdisjoint(b.tolist())
    a2, _ = search_split(100, seed=3)
    a3, _ = search_split(100, seed=4)
    assert torch.equal(a, a2) and not torch.equal(a, a3)
    a, b = search_split(100, seed=3, limit=21)
    assert len(a) == len(b) == 10
    with pytest.raises(DataError, match="exceeds"):
        search_split(10, 0, limit=11)


def test_crop_flip_moves_pixels_within_padding():
    x = torch.arange(2 * 1 * 8 * 8, dtype=torch.float32).reshape(2, 1, 8, 8) + 1
    g = torch.Generator().manual_seed(0)
    y = random_crop_flip(x, 2, g)
    assert y.shape == x.shape
    for i in range(2):  # every non-padding pixel of the crop comes from the same image
        vals = set(y[i][y[i] > 0].tolist())
        assert vals <= set(x[i].flatten().tolist())


def test_device_loader_batches_and_reproducibility():
    data = load_sample("test")
    info = INFOS["cifar10-sample"]
    make = lambda: DeviceLoader(data, info, 64, torch.device("cpu"), seed=1)  # noqa: E731
    a, b = make(), make()
    assert len(a) == 1000 // 64
    xa, ya = next(iter(a))
    xb, yb = next(iter(b))
    assert xa.shape == (64, 3, 32, 32) and xa.dtype == torch.float32
    assert torch.equal(xa, xb) and torch.equal(ya, yb)
    assert abs(float(xa.mean())) < 0.5  # normalised
    stream = a.forever()
    for _ in range(len(a) + 2):  # crosses an epoch boundary without stopping
        next(stream)


def test_search_loaders_use_the_two_halves():
    info, w, a = build_search_loaders(DataConfig(dataset="cifar10-sample", train_images=200), 16,
                                      torch.device("cpu"), seed=0)
    assert w.num_images == a.num_images == 100 and info.num_classes == 10


def test_missing_dataset_folder_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match=r"cifar10 not found in .*cifar-10-batches-py.*data_batch_1"):
        load_tensor_split("cifar10", "train", str(tmp_path / "nowhere"), download=False)
    with pytest.raises(DataError, match="cifar-100-python"):
        load_tensor_split("cifar100", "train", str(tmp_path), download=False)


def test_cifar_through_torchvision_files(tmp_path, monkeypatch):
    """The sample written in torchvision's CIFAR-10 file format reads back through torchvision."""
    import pickle

    import torchvision

    base = tmp_path / "cifar-10-batches-py"
    base.mkdir()
    data = load_sample("test")
    flat = data.images[:10].numpy().reshape(10, -1)  # torchvision's files hold CHW rows
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        with open(base / name, "wb") as f:
            pickle.dump({"data": flat, "labels": data.labels[:10].tolist()}, f)
    with open(base / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [str(i) for i in range(10)]}, f)
    # our files are not the real ones, so their md5 sums differ from torchvision's list
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda *a, **k: True)
    split = load_tensor_split("cifar10", "train", str(tmp_path), download=False)
    assert split.images.shape == (50, 3, 32, 32)
    assert torch.equal(split.images[:10], data.images[:10])
    assert torch.equal(split.labels[:10], data.labels[:10])


def test_a_damaged_cifar_file_is_named(tmp_path):
    """A truncated or garbage batch file: one line naming that file, not torchvision's
    'not found or corrupted'."""
    import pytest

    from mimdarts.data.datasets import _TORCHVISION_FILES, load_torchvision_cifar
    from mimdarts.errors import DataError
    folder, files = _TORCHVISION_FILES["cifar10"]
    (tmp_path / folder).mkdir()
    for f in files:
        (tmp_path / folder / f).write_bytes(b"\x80\x04garbage, not a pickle")
    with pytest.raises(DataError, match=r"data_batch_1' is damaged \(its MD5 is not the dataset's\)"):
        load_torchvision_cifar("cifar10", tmp_path, "train", download=False)


def test_a_bundled_sample_that_does_not_load_says_so(monkeypatch):
    import numpy as np
    import pytest

    from mimdarts.data import datasets
    from mimdarts.errors import DataError

    def broken(*args, **kwargs):
        raise ValueError("Cannot load file containing pickled data")

    monkeypatch.setattr(np, "load", broken)
    with pytest.raises(DataError, match="the bundled CIFAR-10 sample .* does not load .*reinstall"):
        datasets.load_sample("train")


def test_synthetic_cifar10_has_cifars_shape_and_counts():
    # the timing dataset: CIFAR-10's size (50k/10k, 3x32x32, 10 classes), the same every call
    from mimdarts.data.datasets import load_tensor_split

    train = load_tensor_split("synthetic-cifar10", "train")
    test = load_tensor_split("synthetic-cifar10", "test")
    assert train.images.shape == (50_000, 3, 32, 32) and train.images.dtype == torch.uint8
    assert test.images.shape == (10_000, 3, 32, 32)
    assert set(train.labels.unique().tolist()) == set(range(10))
    again = load_tensor_split("synthetic-cifar10", "test")
    assert torch.equal(again.images, test.images) and torch.equal(again.labels, test.labels)
    assert not torch.equal(train.images[:10_000], test.images)


def _image_tree(root, bad: dict[str, bytes]):
    """root/{train,val}/{a,b}/k.png: 4 readable 40x40 images per class, plus ``bad`` files
    (name -> bytes) in train/a."""
    from PIL import Image
    for split in ("train", "val"):
        for c, cls in enumerate("ab"):
            d = root / split / cls
            d.mkdir(parents=True)
            for k in range(4):
                Image.new("RGB", (40, 40), (60 * k, 100 * c, 30)).save(d / f"{k}.png")
    for name, data in bad.items():
        (root / "train" / "a" / name).write_bytes(data)


def _truncated_png(tmp_path) -> bytes:
    from PIL import Image
    p = tmp_path / "whole.png"
    Image.new("RGB", (64, 64), (1, 2, 3)).save(p)
    return p.read_bytes()[:60]


@pytest.mark.parametrize("bad_name", ["garbage.jpg", "truncated.png"])
def test_an_unreadable_image_in_a_folder_is_named(tmp_path, bad_name):
    from mimdarts.data.datasets import image_folder
    from mimdarts.data.loader import FolderLoader

    data = b"this is not an image" if bad_name == "garbage.jpg" else _truncated_png(tmp_path)
    _image_tree(tmp_path / "in", {bad_name: data})
    ds = image_folder(tmp_path / "in", "train", 32, train=True)
    loader = FolderLoader(ds, 3, torch.device("cpu"), train=True, workers=1)  # in a worker
    with pytest.raises(DataError) as e:
        for _ in loader:
            pass
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(
        f"image {str(tmp_path / 'in' / 'train' / 'a' / bad_name)!r} cannot be read (")
    assert msg.endswith("; remove or replace it, or set --skip-bad-images true to skip such files")


def test_skip_bad_images_counts_logs_and_keeps_batches_full(tmp_path, capfd):
    from mimdarts.data.datasets import image_folder
    from mimdarts.data.loader import FolderLoader

    _image_tree(tmp_path / "in", {"garbage.jpg": b"not an image",
                                  "truncated.png": _truncated_png(tmp_path)})
    ds = image_folder(tmp_path / "in", "train", 32, train=False, skip_bad_images=True)
    assert len(ds) == 10
    batches = list(FolderLoader(ds, 5, torch.device("cpu"), train=False, workers=0))
    assert [len(x) for x, _ in batches] == [5, 5]  # each bad file replaced by the next image
    err = capfd.readouterr().err
    for name in ("garbage.jpg", "truncated.png"):
        assert f"mimdarts: warning: skipped unreadable image " \
               f"{str(tmp_path / 'in' / 'train' / 'a' / name)!r}" in err
    assert "2 skipped so far by this loader process" in err
