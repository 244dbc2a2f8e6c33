"""Calibrated confidence: the fit, the reliability table, and a reader that applies the artifact's."""

import numpy as np
import pytest

from wordocr.alphabet import Alphabet
from wordocr.calibration import Calibration, fit, reliability
from wordocr.config import InputSpec
from wordocr.recognizer import Reader


def _overconfident(rng: np.random.Generator, n: int = 4000) -> tuple[np.ndarray, np.ndarray]:
    """Readings that say 0.9-0.99 and are right 70 % of the time."""
    return rng.uniform(0.9, 0.99, n), rng.random(n) < 0.7


def test_the_fit_brings_overconfident_readings_to_their_accuracy():
    confidences, correct = _overconfident(np.random.default_rng(0))
    before = reliability(confidences, correct)
    calibration = fit(confidences, correct)
    after = reliability(calibration.apply(confidences), correct)
    assert before["ece"] == pytest.approx(0.245, abs=0.02)
    assert after["ece"] < 0.03
    assert calibration.apply(confidences).mean() == pytest.approx(0.7, abs=0.02)
    assert calibration.fitted_on == len(confidences)


def test_calibration_keeps_the_order_of_readings():
    calibration = Calibration(slope=0.6, offset=-0.4)
    raw = np.array([0.01, 0.3, 0.5, 0.9, 0.999, 1.0])
    mapped = calibration.apply(raw)
    assert (np.diff(mapped) > 0).all() and ((mapped > 0) & (mapped < 1)).all()
    assert Calibration().apply(0.8) == pytest.approx(0.8)  # the identity: slope 1, offset 0


def test_the_reliability_table_bins_by_confidence():
    table = reliability([0.05, 0.15, 0.95, 0.95, 1.0], [False, False, True, False, True])
    assert table["count"] == 5
    assert [(row["low"], row["count"]) for row in table["bins"]] == [(0.0, 1), (0.1, 1), (0.9, 3)]
    top = table["bins"][-1]
    assert top["accuracy"] == pytest.approx(2 / 3, abs=1e-4)
    assert top["mean_confidence"] == pytest.approx(0.9667, abs=1e-4)
    # ECE: (0.05 + 0.15 + 3 * |2/3 - 0.9667|) / 5
    assert table["ece"] == pytest.approx((0.05 + 0.15 + 3 * abs(2 / 3 - 2.9 / 3)) / 5, abs=1e-4)


def test_round_trip_and_an_artifact_without_calibration():
    calibration = Calibration(0.7, -0.2, 1000)
    assert Calibration.from_dict(calibration.to_dict()) == calibration
    assert Calibration.from_dict(None) is None and Calibration.from_dict({}) is None


class _FixedLogits(Reader):
    """A reader whose "model" spells "cat" with a sure blank between letters: the decoding, second
    look and calibration are the real ones (a stand-in for the network only)."""

    runtime = "fixed"

    def logits(self, images):
        alphabet, steps = self.alphabet, self.spec.time_steps
        probs = np.full((len(images), steps, alphabet.num_classes), 1e-4)
        probs[:, :, alphabet.blank_index] = 1.0
        for i, index in enumerate(alphabet.encode("cat")):
            probs[:, 2 * i, alphabet.blank_index] = 0.1
            probs[:, 2 * i, index] = 0.9
        return np.log(probs / probs.sum(axis=-1, keepdims=True)).astype(np.float32)


def test_a_reader_returns_calibrated_confidences_where_the_artifact_has_them():
    spec, alphabet = InputSpec(), Alphabet()
    images = np.full((2, spec.height, spec.width), 255, np.uint8)
    raw = _FixedLogits(spec, alphabet, second_look_below=0).recognize(images)
    calibration = Calibration(0.5, -1.0)
    reader = _FixedLogits(spec, alphabet, {"calibration": calibration.to_dict()}, second_look_below=0)
    calibrated = reader.recognize(images)
    assert [r.text for r in calibrated] == [r.text for r in raw] == ["cat", "cat"]
    assert calibrated[0].confidence == pytest.approx(float(calibration.apply(raw[0].confidence)))
    assert calibrated[0].confidence < raw[0].confidence
    # The reading is the first top path; the runners-up keep their shares, none above the reading.
    top = calibrated[1].top_confidences
    assert top[0] == calibrated[1].confidence and top == sorted(top, reverse=True)
    np.testing.assert_allclose(top[1:], np.minimum(raw[1].top_confidences[1:], top[0]))
    # Greedy readings (top_k=0) are another quantity: they stay raw.
    assert reader.recognize(images, top_k=0)[0].confidence == raw_greedy(spec, alphabet, images)


def raw_greedy(spec, alphabet, images) -> float:
    return _FixedLogits(spec, alphabet, second_look_below=0).recognize(images, top_k=0)[0].confidence


def test_a_confidence_raised_by_calibration_shrinks_the_runners_up_to_keep_a_distribution():
    spec, alphabet = InputSpec(), Alphabet()
    images = np.full((1, spec.height, spec.width), 255, np.uint8)
    [raw] = _FixedLogits(spec, alphabet, second_look_below=0).recognize(images)
    sure = Calibration(1.0, 3.0)  # an under-confident model's map: every confidence goes up
    [raised] = _FixedLogits(spec, alphabet, {"calibration": sure.to_dict()}, second_look_below=0).recognize(images)
    assert raised.confidence > raw.confidence
    assert sum(raised.top_confidences) <= 1.0 + 1e-9
    scale = (1 - raised.confidence) / (1 - raw.confidence)
    np.testing.assert_allclose(raised.top_confidences[1:], np.array(raw.top_confidences[1:]) * scale)


def test_invert_undoes_apply():
    calibration = Calibration(1.37, -0.32)
    for raw in (0.05, 0.5, 0.7, 0.93, 0.999):
        assert calibration.invert(float(calibration.apply(raw))) == pytest.approx(raw, rel=1e-6)
    assert calibration.invert(0.0) == 0.0 and calibration.invert(1.0) == 1.0


class _CountingFixedLogits(_FixedLogits):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.batches: list[int] = []

    def logits(self, images):
        self.batches.append(len(images))
        return super().logits(images)


def test_the_second_look_threshold_is_on_the_calibrated_confidence():
    spec, alphabet = InputSpec(), Alphabet()
    images = np.full((1, spec.height, spec.width), 255, np.uint8)
    raw = _CountingFixedLogits(spec, alphabet, second_look_below=0).recognize(images)[0].confidence
    below = 0.5
    assert raw > below  # raw, "cat" is sure enough for no second look ...
    plain = _CountingFixedLogits(spec, alphabet, second_look_below=below)
    plain.recognize(images)
    assert plain.batches == [1]
    # ... but a calibration that brings it under the threshold gets it one: the image, then its variants.
    calibration = Calibration(1.0, float(np.log(0.4 / 0.6) - np.log(raw / (1 - raw))))  # raw -> 0.4
    assert float(calibration.apply(raw)) == pytest.approx(0.4)
    calibrated = _CountingFixedLogits(spec, alphabet, {"calibration": calibration.to_dict()}, second_look_below=below)
    assert calibrated.recognize(images)[0].confidence == pytest.approx(0.4, abs=0.01)
    assert calibrated.batches == [1, 2]
