"""The CRNN that reads a word: convolutions see the strokes, LSTMs read them left to right, CTC spells.

The story, in the order the tensors flow (after keras-io's ``captcha_ocr.py`` and the old
Keras ``image_ocr.py``):

1. The model takes the preprocessed image as ``float32 [batch, height, width]`` with raw pixel
   values 0..255 (dark ink on a light background) and normalises it itself, so a caller only
   casts its uint8 array: no preprocessing maths lives outside the artifact.
2. Convolution blocks (conv -> batch norm -> ReLU -> max pool) halve the height until it is 1
   and halve the width until it is ``width / spec.width_downsample``: each remaining column is
   one CTC time step looking at a vertical strip of the word.
3. Two bidirectional LSTMs read the strip sequence, so every step knows its neighbours
   (which letter a half-seen stroke belongs to).
4. A dense layer gives per-step logits over the alphabet plus the CTC blank, which is the LAST
   class (``Alphabet.blank_index``); with ``spec.frames_per_step`` > 1 it gives that many frames
   of logits per step, laid out in order along the time axis. The model outputs logits, not probabilities: Keras 3's
   ``ctc_loss`` wants logits, and decoders take the log-softmax themselves.
"""

from __future__ import annotations

import math

import keras
from keras import layers

from wordocr.alphabet import Alphabet
from wordocr.config import InputSpec, ModelSize

# BatchNorm's default momentum (0.99) leaves the moving statistics far from the data after a
# short run, and the model then reads nothing in inference mode; 0.9 tracks them quickly.
BATCH_NORM_MOMENTUM = 0.9


# ModelSize is declared in wordocr.config, without Keras, so recipes can name one cheaply.
DEFAULT_MODEL_SIZE = ModelSize()
TINY_MODEL_SIZE = ModelSize(conv_filters=(16, 32, 48, 64, 64), lstm_units=48, dropout=0.0)


def _halvings(size: int, factor: int, what: str) -> int:
    steps = round(math.log2(factor)) if factor > 0 else -1
    if steps < 0 or 2**steps != factor or size % factor:
        raise ValueError(f"{what}: {size} must be divisible by a power-of-two factor, got {factor}")
    return steps


def pool_sizes(spec: InputSpec, num_blocks: int) -> list[tuple[int, int]]:
    """(height, width) pooling of each conv block: height down to 1, width down by the spec's factor.

    Width halvings come first so the early, cheap layers shrink the sequence; the later blocks
    only squash the height.
    """
    height_halvings = _halvings(spec.height, spec.height, "height")
    width_halvings = _halvings(spec.width, spec.width_downsample, "width_downsample")
    if max(height_halvings, width_halvings) > num_blocks:
        raise ValueError(
            f"{num_blocks} conv blocks cannot pool height {spec.height} to 1 and width by {spec.width_downsample}"
        )
    return [
        (2 if i < height_halvings else 1, 2 if i < width_halvings else 1) for i in range(num_blocks)
    ]


def conv_block(x, filters: int, pool: tuple[int, int], name: str, separable: bool = False):
    if separable:
        x = layers.SeparableConv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv")(x)
    else:
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(momentum=BATCH_NORM_MOMENTUM, name=f"{name}_bn")(x)
    x = layers.ReLU(name=f"{name}_relu")(x)
    if pool != (1, 1):
        x = layers.MaxPooling2D(pool_size=pool, name=f"{name}_pool")(x)
    return x


def build_model(
    spec: InputSpec,
    alphabet: Alphabet,
    size: ModelSize = DEFAULT_MODEL_SIZE,
    name: str = "crnn_ctc",
) -> keras.Model:
    """CRNN mapping ``float32 [B, H, W]`` pixels (0..255) to CTC logits ``[B, spec.time_steps, classes]``."""
    pixels = keras.Input(shape=(spec.height, spec.width), dtype="float32", name="image")

    # Invert while scaling to 0..1: ink becomes 1 and the (padded) background 0, so "nothing here"
    # is the zero the convolutions' padding already assumes.
    x = layers.Rescaling(scale=-1.0 / 255.0, offset=1.0, name="ink")(pixels)
    x = layers.Reshape((spec.height, spec.width, 1), name="add_channel")(x)

    pools = pool_sizes(spec, len(size.conv_filters))
    for i, (filters, pool) in enumerate(zip(size.conv_filters, pools, strict=True)):
        x = conv_block(x, filters, pool, name=f"block{i + 1}", separable=size.separable_convs and i > 0)

    # [B, 1, T, C] -> [B, T, C]: each column of the feature map is one time step.
    x = layers.Reshape((spec.columns, size.conv_filters[-1]), name="to_sequence")(x)
    if size.dropout:
        x = layers.Dropout(size.dropout, name="sequence_dropout")(x)

    for i in range(2):
        x = layers.Bidirectional(
            layers.LSTM(size.lstm_units, return_sequences=True), name=f"bilstm{i + 1}"
        )(x)

    # Logits stay float32 under mixed precision: CTC and softmax need the range.
    if spec.frames_per_step == 1:
        logits = layers.Dense(alphabet.num_classes, dtype="float32", name="logits")(x)
    else:
        frames = layers.Dense(alphabet.num_classes * spec.frames_per_step, dtype="float32", name="frame_logits")(x)
        # [B, T, F*K] -> [B, T*F, K]: a step's F frames follow each other in time.
        logits = layers.Reshape((spec.time_steps, alphabet.num_classes), dtype="float32", name="logits")(frames)
    return keras.Model(pixels, logits, name=name)


def ctc_loss_fn(alphabet: Alphabet):
    """A Keras loss ``(labels, logits) -> per-sample CTC loss`` with the blank as the last class.

    ``labels`` are int ``[B, max_len]`` class ids padded with any negative value; each label's
    length is its count of non-negative ids.
    """
    blank = alphabet.blank_index

    def ctc_loss(labels, logits):
        labels = keras.ops.cast(labels, "int32")
        is_char = keras.ops.greater_equal(labels, 0)
        label_length = keras.ops.sum(keras.ops.cast(is_char, "int32"), axis=-1)
        # Padding is ignored past label_length, but give it a valid id so no backend trips on it.
        labels = keras.ops.where(is_char, labels, keras.ops.zeros_like(labels))
        logits = keras.ops.cast(logits, "float32")
        batch = keras.ops.shape(logits)[0]
        logit_length = keras.ops.full((batch,), keras.ops.shape(logits)[1], dtype="int32")
        return keras.ops.ctc_loss(labels, logits, label_length, logit_length, mask_index=blank)

    return ctc_loss
