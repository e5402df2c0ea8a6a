"""tapegrad.metrics on hand-made cases, including empty classes and bad input."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tapegrad.course.metrics import accuracy, confusion_matrix, parameter_counts, precision_recall


def test_accuracy_counts_matches():
    assert accuracy([0, 1, 2, 2], [0, 1, 1, 2]) == 0.75
    assert accuracy(np.array([3]), np.array([3])) == 1.0
    assert isinstance(accuracy([1, 2], [1, 1]), float)


def test_accuracy_takes_the_argmax_of_scores():
    scores = np.array([[0.1, 0.9], [2.0, -1.0], [0.3, 0.2]])
    assert accuracy([1, 0, 1], scores) == pytest.approx(2 / 3)


def test_accuracy_rejects_bad_input():
    with pytest.raises(ValueError, match="same length, got 3 and 2"):
        accuracy([0, 1, 2], [0, 1])
    with pytest.raises(ValueError, match="zero samples"):
        accuracy([], [])
    with pytest.raises(ValueError, match="y_true must be a 1-D array.*shape \\(2, 2\\)"):
        accuracy([[0, 1], [1, 0]], [0, 1])
    with pytest.raises(ValueError, match="negative label -1 at index 1"):
        accuracy([0, -1], [0, 1])
    with pytest.raises(ValueError, match="fractional"):
        accuracy([0.5, 1.0], [0, 1])
    with pytest.raises(ValueError, match="dtype <U1"):
        accuracy(["a", "b"], [0, 1])


def test_whole_number_floats_are_labels():
    assert accuracy(np.array([0.0, 2.0]), [0, 2]) == 1.0


def test_confusion_matrix_rows_are_true_columns_predicted():
    cm = confusion_matrix([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 0, 2])
    expected = [[1, 1, 0], [0, 1, 0], [1, 0, 2]]
    np.testing.assert_array_equal(cm, expected)
    assert cm.dtype == np.int64


def test_confusion_matrix_with_num_classes_keeps_empty_classes():
    cm = confusion_matrix([1, 1], [1, 3], num_classes=5)
    assert cm.shape == (5, 5)
    assert cm[1, 1] == 1 and cm[1, 3] == 1 and cm.sum() == 2


def test_confusion_matrix_rejects_labels_out_of_range():
    with pytest.raises(ValueError, match=r"y_pred holds label 10 at index 2, outside 0..9"):
        confusion_matrix([0, 1, 2], [0, 1, 10], num_classes=10)
    with pytest.raises(ValueError, match=r"y_true holds label 3 at index 0, outside 0..2"):
        confusion_matrix([3], [0], num_classes=3)
    with pytest.raises(ValueError, match="num_classes must be at least 1"):
        confusion_matrix([0], [0], num_classes=0)


def test_precision_and_recall_per_class():
    cm = np.array([[2, 1, 0], [0, 3, 1], [1, 0, 2]])
    precision, recall = precision_recall(cm)
    np.testing.assert_allclose(precision, [2 / 3, 3 / 4, 2 / 3])
    np.testing.assert_allclose(recall, [2 / 3, 3 / 4, 2 / 3])
    cm = np.array([[5, 0], [5, 0]])  # class 1 never predicted
    precision, recall = precision_recall(cm)
    np.testing.assert_allclose(precision, [0.5, 0.0])
    np.testing.assert_allclose(recall, [1.0, 0.0])


def test_empty_classes_get_zero_division_without_warnings():
    # class 1: never present and never predicted; class 2: present but never predicted
    cm = confusion_matrix([0, 0, 2], [0, 0, 0], num_classes=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        precision, recall = precision_recall(cm)
        nan_precision, nan_recall = precision_recall(cm, zero_division=np.nan)
    np.testing.assert_allclose(precision, [2 / 3, 0.0, 0.0])
    np.testing.assert_allclose(recall, [1.0, 0.0, 0.0])
    np.testing.assert_allclose(nan_precision, [2 / 3, np.nan, np.nan])
    np.testing.assert_allclose(nan_recall, [1.0, np.nan, 0.0])
    assert precision.dtype == recall.dtype == np.float64


def test_precision_recall_rejects_bad_matrices():
    with pytest.raises(ValueError, match=r"square \(C, C\).*shape \(2, 3\)"):
        precision_recall(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="non-negative"):
        precision_recall(np.array([[1, -1], [0, 1]]))


@given(
    st.lists(st.tuples(st.integers(0, 6), st.integers(0, 6)), min_size=1, max_size=60),
)
def test_confusion_matrix_agrees_with_accuracy_and_totals(pairs):
    true, pred = np.array(pairs).T
    cm = confusion_matrix(true, pred, num_classes=7)
    assert cm.sum() == len(pairs)
    assert np.trace(cm) / cm.sum() == pytest.approx(accuracy(true, pred))
    np.testing.assert_array_equal(cm.sum(axis=1), np.bincount(true, minlength=7))
    precision, recall = precision_recall(cm)
    assert np.all((precision >= 0) & (precision <= 1) & (recall >= 0) & (recall <= 1))


class Weight:
    def __init__(self, *shape: int) -> None:
        self.shape = shape


class SizeOnly:
    size = 7


class Model:
    def __init__(self, pairs):
        self.pairs = pairs

    def named_parameters(self):
        yield from self.pairs


def test_parameter_counts_group_by_layer_in_order_with_a_total():
    model = Model(
        [
            ("layers.0.weight", Weight(8, 1, 5, 5)),
            ("layers.0.bias", Weight(8)),
            ("layers.3.weight", np.zeros((10, 128))),
            ("layers.3.bias", np.zeros(10)),
            ("scale", SizeOnly()),
        ]
    )
    counts = parameter_counts(model)
    assert counts == {"layers.0": 208, "layers.3": 1290, "scale": 7, "total": 1505}
    assert list(counts) == ["layers.0", "layers.3", "scale", "total"]


def test_parameter_counts_reject_unsized_parameters_and_a_layer_named_total():
    with pytest.raises(TypeError, match="'head.weight' has neither a .shape"):
        parameter_counts(Model([("head.weight", object())]))
    with pytest.raises(ValueError, match="'total.weight'"):
        parameter_counts(Model([("total.weight", Weight(2))]))
