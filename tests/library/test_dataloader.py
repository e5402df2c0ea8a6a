"""tapegrad.data's Dataset, TensorDataset, Subset, random_split, DataLoader, MNIST and CIFAR10."""

from __future__ import annotations

import numpy as np
import pytest

import tapegrad as tg
from tapegrad.data import (
    CIFAR10,
    MNIST,
    ConcatDataset,
    DataLoader,
    Dataset,
    Subset,
    TensorDataset,
    default_collate,
    random_split,
)
from tapegrad.data import transforms as T
from tapegrad.data.datasets import ImageDataset


class Squares(Dataset):
    """An item-by-item dataset (no get_batch): the slow path."""

    def __len__(self):
        return 10

    def __getitem__(self, index):
        return np.full(2, index, dtype=np.float32), index * index


def images(n=10, channels=1, size=4, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, channels, size, size), dtype=np.uint8), np.arange(n) % 10


# --------------------------------------------------------------------------- datasets


def test_tensor_dataset_items_are_tuples_of_tensor_rows():
    x, y = np.arange(12.0).reshape(6, 2), np.arange(6)
    dataset = TensorDataset(tg.tensor(x), y)
    assert len(dataset) == 6
    row, label = dataset[-1]
    assert isinstance(row, tg.Tensor) and row.data.tolist() == [10.0, 11.0]
    assert int(label.data) == 5
    with pytest.raises(IndexError, match="index 6 is out of range for 6 items"):
        dataset[6]


def test_tensor_dataset_refuses_tensors_of_different_lengths():
    with pytest.raises(ValueError, match=r"same first dimension.*\(3,\), \(4,\)"):
        TensorDataset(np.zeros(3), np.zeros(4))


def test_subset_and_concat_index_through():
    dataset = TensorDataset(np.arange(10))
    subset = Subset(dataset, [7, 2, 5])
    assert [int(subset[i][0].data) for i in range(3)] == [7, 2, 5]
    assert subset.get_batch(np.array([2, 0]))[0].tolist() == [5, 7]
    both = dataset + subset
    assert isinstance(both, ConcatDataset) and len(both) == 13
    assert int(both[11][0].data) == 2


def test_random_split_partitions_the_indices_by_counts_and_fractions():
    dataset = TensorDataset(np.arange(10))
    parts = random_split(dataset, [7, 3], generator=np.random.default_rng(0))
    assert [len(p) for p in parts] == [7, 3]
    assert sorted(np.concatenate([p.indices for p in parts]).tolist()) == list(range(10))
    fractions = random_split(dataset, [0.55, 0.45], generator=np.random.default_rng(0))
    assert [len(p) for p in fractions] == [6, 4]  # the rounding remainder goes to the first
    with pytest.raises(ValueError, match="sum to 9, but the dataset holds 10"):
        random_split(dataset, [6, 3])


# --------------------------------------------------------------------------- the loader


def test_loader_batches_in_order_with_a_short_last_batch_or_dropped():
    dataset = TensorDataset(np.arange(10.0), np.arange(10))
    batches = list(DataLoader(dataset, batch_size=4))
    assert [len(x.data) for x, _ in batches] == [4, 4, 2]
    assert isinstance(batches[0][0], tg.Tensor) and batches[0][1].data.tolist() == [0, 1, 2, 3]
    assert len(DataLoader(dataset, batch_size=4)) == 3
    assert len(DataLoader(dataset, batch_size=4, drop_last=True)) == 2
    assert [len(x.data) for x, _ in DataLoader(dataset, batch_size=4, drop_last=True)] == [4, 4]


def test_shuffle_draws_a_new_order_every_epoch_from_the_generator():
    dataset = TensorDataset(np.arange(20))
    loader = DataLoader(dataset, batch_size=20, shuffle=True, generator=np.random.default_rng(1))
    first, second = (next(iter(loader))[0].data.tolist() for _ in range(2))
    assert sorted(first) == list(range(20)) and first != second and first != list(range(20))
    again = DataLoader(dataset, batch_size=20, shuffle=True, generator=np.random.default_rng(1))
    assert next(iter(again))[0].data.tolist() == first


def test_shuffle_without_a_generator_follows_manual_seed():
    loader = DataLoader(TensorDataset(np.arange(20)), batch_size=20, shuffle=True)
    tg.manual_seed(5)
    first = next(iter(loader))[0].data.tolist()
    tg.manual_seed(5)
    assert next(iter(loader))[0].data.tolist() == first


def test_fast_path_and_item_path_give_the_same_batches():
    x, y = images(10)
    dataset = ImageDataset(x, y, transform=T.Compose([T.ToTensor(), T.Normalize(0.5, 0.25)]))
    fast = list(DataLoader(dataset, batch_size=4))
    slow = list(DataLoader(dataset, batch_size=4, collate_fn=default_collate))
    for (xf, yf), (xs, ys) in zip(fast, slow, strict=True):
        np.testing.assert_allclose(xf.data, xs.data, rtol=1e-6)
        assert xf.data.dtype == xs.data.dtype == np.float32
        assert yf.data.tolist() == ys.data.tolist() and ys.data.dtype == np.int64


def test_a_per_image_transform_still_batches():
    x, y = images(6)
    flatten = T.Compose([T.ToTensor(), lambda image: image.data.reshape(-1)])
    dataset = ImageDataset(x, y, transform=flatten)
    (batch, _), *_ = DataLoader(dataset, batch_size=6)
    assert batch.data.shape == (6, 16)
    np.testing.assert_allclose(batch.data, x.reshape(6, -1) / 255, rtol=1e-6)


def test_item_by_item_dataset_and_a_custom_collate_fn():
    x, y = next(iter(DataLoader(Squares(), batch_size=3)))
    assert x.data.shape == (3, 2) and y.data.tolist() == [0, 1, 4] and y.data.dtype == np.int64
    loader = DataLoader(Squares(), batch_size=3, collate_fn=lambda items: [i[1] for i in items])
    assert next(iter(loader)) == [0, 1, 4]


def test_loader_refuses_bad_settings():
    with pytest.raises(ValueError, match="batch_size must be a positive int, got 0"):
        DataLoader(Squares(), batch_size=0)
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        DataLoader(Squares(), generator=7)


def test_a_training_loop_written_as_for_pytorch_runs():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    loader = DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True)
    model = tg.nn.Sequential(tg.nn.Linear(4, 8), tg.nn.ReLU(), tg.nn.Linear(8, 2))
    optimizer = tg.optim.SGD(model.parameters(), lr=0.1)
    losses = []
    for _ in range(20):
        for images_batch, labels in loader:
            loss = tg.cross_entropy(model(images_batch), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(float(loss.data))
    assert np.mean(losses[-4:]) < 0.5 * np.mean(losses[:4])


# --------------------------------------------------------------------------- real data


def test_mnist_items_are_what_to_tensor_gives(data_root):
    train, test = MNIST(data_root), MNIST(data_root, train=False)
    assert (len(train), len(test)) == (60000, 10000)
    image, label = test[0]
    assert isinstance(image, tg.Tensor) and image.data.shape == (1, 28, 28)
    assert image.data.dtype == np.float32 and 0 <= image.data.min() and image.data.max() <= 1
    assert type(label) is int and label == 7  # the first test digit is a 7
    x, y = next(iter(DataLoader(test, batch_size=64)))
    assert x.data.shape == (64, 1, 28, 28) and y.data[0] == 7
    np.testing.assert_array_equal(x.data[0], image.data)


def test_cifar10_with_a_torchvision_style_pipeline(data_root):
    augment = T.Compose(
        [
            T.RandomCrop(32, padding=4),
            T.RandomHorizontalFlip(),
            T.ToTensor(),
            T.Normalize((0.49, 0.48, 0.45), (0.25, 0.24, 0.26)),
        ]
    )
    train = CIFAR10(data_root, transform=augment)
    test = CIFAR10(data_root, train=False)
    assert (len(train), len(test)) == (50000, 10000) and train.classes[3] == "cat"
    assert test[0][1] == 3 and test[0][0].data.shape == (3, 32, 32)
    x, y = next(iter(DataLoader(train, batch_size=128, shuffle=True)))
    assert x.data.shape == (128, 3, 32, 32) and x.data.dtype == np.float32
    assert abs(float(x.data.mean())) < 0.5 and y.data.dtype == np.int64
