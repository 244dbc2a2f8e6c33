"""The CRNN's shape contract and its CTC loss (blank last, padded labels)."""

import keras
import numpy as np
import pytest

from wordocr.alphabet import Alphabet
from wordocr.config import InputSpec, ModelSize
from wordocr.model import BATCH_NORM_MOMENTUM, TINY_MODEL_SIZE, build_model, ctc_loss_fn, pool_sizes

ALPHABET = Alphabet()


def test_default_model_maps_pixels_to_per_step_logits():
    spec = InputSpec()
    model = build_model(spec, ALPHABET)
    assert model.input_shape == (None, spec.height, spec.width)
    assert model.output_shape == (None, spec.time_steps, ALPHABET.num_classes)
    assert 1_000_000 <= model.count_params() <= 2_000_000
    logits = model(np.full((2, spec.height, spec.width), 255.0, np.float32))
    assert logits.shape == (2, spec.time_steps, ALPHABET.num_classes)
    assert np.isfinite(keras.ops.convert_to_numpy(logits)).all()


def test_model_reads_with_lstms_and_fast_batch_norm():
    model = build_model(InputSpec(), ALPHABET)
    bilstms = [layer for layer in model.layers if isinstance(layer, keras.layers.Bidirectional)]
    assert len(bilstms) == 2 and all(isinstance(b.forward_layer, keras.layers.LSTM) for b in bilstms)
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert norms and all(n.momentum == BATCH_NORM_MOMENTUM == 0.9 for n in norms)


def test_separable_convolutions_follow_a_full_first_block_and_keep_the_output_shape():
    spec = InputSpec()
    full = build_model(spec, ALPHABET)
    separable = build_model(spec, ALPHABET, ModelSize(separable_convs=True))
    convs = [layer for layer in separable.layers if layer.name.endswith("_conv")]

    assert [type(layer).__name__ for layer in convs] == ["Conv2D"] + ["SeparableConv2D"] * 4
    assert separable.output_shape == full.output_shape
    # A 3x3 per channel and a 1x1 across them: the conv weights shrink by about 8x, the LSTMs stay.
    assert 0.5 * full.count_params() < separable.count_params() < 0.7 * full.count_params()


def test_a_size_recorded_before_separable_convolutions_has_full_ones():
    recorded = {"conv_filters": [32, 64], "lstm_units": 48, "dropout": 0.0}

    assert ModelSize.from_dict(recorded) == ModelSize((32, 64), 48, 0.0, separable_convs=False)
    size = ModelSize((32, 64), 48, 0.0, separable_convs=True)
    assert ModelSize.from_dict(size.to_dict()) == size


def test_pooling_brings_height_to_one_and_width_down_by_the_spec():
    spec = InputSpec(height=32, width=256, width_downsample=8)
    pools = pool_sizes(spec, 5)
    assert np.prod([h for h, _ in pools]) == 32
    assert np.prod([w for _, w in pools]) == 8
    assert build_model(spec, ALPHABET, TINY_MODEL_SIZE).output_shape == (None, 32, ALPHABET.num_classes)


def test_two_frames_per_step_double_the_time_steps_and_follow_each_other_in_time():
    spec = InputSpec(frames_per_step=2)
    assert spec.columns == 48 and spec.time_steps == 96
    model = build_model(spec, ALPHABET, TINY_MODEL_SIZE)
    assert model.output_shape == (None, 96, ALPHABET.num_classes)
    pixels = np.random.default_rng(0).integers(0, 256, (2, spec.height, spec.width)).astype(np.float32)
    logits = keras.ops.convert_to_numpy(model(pixels))
    frames = keras.ops.convert_to_numpy(keras.Model(model.input, model.get_layer("frame_logits").output)(pixels))
    classes = ALPHABET.num_classes
    assert frames.shape == (2, 48, 2 * classes)
    # Step t's frames are time steps 2t and 2t + 1.
    np.testing.assert_allclose(logits[:, 0::2], frames[:, :, :classes], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(logits[:, 1::2], frames[:, :, classes:], rtol=1e-6, atol=1e-6)


def test_a_spec_recorded_without_frames_per_step_reads_one_frame_per_step():
    recorded = {"height": 32, "width": 192, "width_downsample": 4, "max_word_length": 16}
    spec = InputSpec.from_dict(recorded)
    assert spec.frames_per_step == 1 and spec.time_steps == spec.columns == 48
    assert InputSpec.from_dict({**recorded, "frames_per_step": 2}).time_steps == 96


def test_geometry_the_model_cannot_pool_is_refused():
    with pytest.raises(ValueError):
        pool_sizes(InputSpec(height=32, width=192, width_downsample=3), 5)
    with pytest.raises(ValueError):
        pool_sizes(InputSpec(height=128, width=192, width_downsample=4), 5)


def _spelling(path: str, steps: int = 8) -> np.ndarray:
    """Logits that confidently spell ``path`` ('-' is the blank, the last class)."""
    logits = np.zeros((1, steps, ALPHABET.num_classes), np.float32)
    for t, char in enumerate(path.ljust(steps, "-")):
        logits[0, t, ALPHABET.blank_index if char == "-" else ALPHABET.chars.index(char)] = 10.0
    return logits


def test_ctc_loss_is_small_for_the_spelt_word_and_large_otherwise():
    loss = ctc_loss_fn(ALPHABET)
    logits = _spelling("c-a-t")
    labels = np.array([ALPHABET.encode("cat") + [-1] * 5])
    right = float(loss(labels, logits)[0])
    wrong = float(loss(np.array([ALPHABET.encode("dog") + [-1] * 5]), logits)[0])
    assert np.isfinite(right) and np.isfinite(wrong)
    assert right < 0.01 < 10 < wrong


def test_ctc_loss_ignores_padding_whatever_its_value():
    loss = ctc_loss_fn(ALPHABET)
    logits = np.random.default_rng(0).normal(size=(2, 8, ALPHABET.num_classes)).astype(np.float32)
    padded_minus_one = np.array([[0, 1, -1, -1], [2, -1, -1, -1]])
    padded_more = np.array([[0, 1, -1, -1, -1, -1], [2, -5, -1, -7, -1, -1]])
    a = keras.ops.convert_to_numpy(loss(padded_minus_one, logits))
    b = keras.ops.convert_to_numpy(loss(padded_more, logits))
    np.testing.assert_allclose(a, b, rtol=1e-6)
    # And matches Keras' CTC with explicit lengths and the blank last.
    expected = keras.ops.ctc_loss(np.array([[0, 1], [2, 0]]), logits, np.array([2, 1]), np.array([8, 8]),
                                  mask_index=ALPHABET.blank_index)
    np.testing.assert_allclose(a, keras.ops.convert_to_numpy(expected), rtol=1e-5)
