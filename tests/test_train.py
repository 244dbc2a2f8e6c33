"""Training: labels are encoded in tf.data, a tiny run overfits its words, and a killed run resumes."""

import dataclasses
import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.support.tiny_data import (  # noqa: F401
    TINY_SPEC,
    TINY_WORDS,
    make_samples,
    tiny_train_config,
    tiny_trained_fixture,
    write_dataset,
    write_tiny_datasets,
)
from wordocr import char_lm
from wordocr.alphabet import Alphabet
from wordocr.artifact import load_language_model, read_spec
from wordocr.recipes import TrainConfig
from wordocr.train import LABEL_PAD, config_from_args, encode_text, label_lookup, parse_args, train

ALPHABET = Alphabet()
TINY_SPEC_TALL = dataclasses.replace(TINY_SPEC, height=64)


@pytest.mark.parametrize(
    ("word", "ids", "valid"),
    [
        ("cab", [2, 0, 1, LABEL_PAD, LABEL_PAD], True),
        ("zzzzz", [25] * 5, True),
        ("toolong", [19, 14, 14, 11, 14], False),
        ("caB", [2, 0, LABEL_PAD, LABEL_PAD, LABEL_PAD], False),
        ("", [LABEL_PAD] * 5, False),
    ],
)
def test_words_become_padded_class_ids_in_tf_data(word, ids, valid):
    encoded, is_valid = encode_text(tf.constant(word), label_lookup(ALPHABET), max_length=5)
    assert encoded.numpy().tolist() == ids
    assert bool(is_valid) is valid


def test_cli_options_reach_the_config():
    args = parse_args(["--train", "t", "--val", "v", "--out", "o", "--epochs", "3", "--learning-rate", "0.01",
                       "--conv-filters", "8,8,8,8,8", "--lstm-units", "16", "--clipnorm", "0",
                       "--spelling-weight", "0", "--width-downsample", "2"])
    config = config_from_args(args)
    assert config.width_downsample == 2
    assert (config.epochs, config.learning_rate, config.clipnorm, config.spelling_weight) == (3, 0.01, None, 0.0)
    assert config.model_size.conv_filters == (8, 8, 8, 8, 8) and config.model_size.lstm_units == 16


@pytest.mark.slow
def test_the_width_downsample_is_the_runs_not_the_datas(tmp_path):
    # Data made at 4 columns a step trains a network that reads 2: the images are the same, and the
    # artifact says the network's time resolution, which the predictor and the ONNX export follow.
    train_uri, val_uri = write_tiny_datasets(tmp_path)
    config = tiny_train_config(epochs=1, steps_per_epoch=1, width_downsample=2, spelling_weight=0.0)
    result = train(train_uri, val_uri, str(tmp_path / "model"), config)
    spec = read_spec(result.artifact_uri)["input_spec"]
    assert (spec["width"], spec["width_downsample"]) == (96, 2)
    model = keras.models.load_model(tmp_path / "model" / "model.keras", compile=False)
    assert model.output_shape[1] == 96 // 2
    assert json.loads((tmp_path / "train" / "manifest.json").read_text())["input_spec"]["width_downsample"] == 4


@pytest.mark.slow
def test_images_of_another_geometry_are_refused(tmp_path):
    train_uri, _ = write_tiny_datasets(tmp_path)
    tall = make_samples(TINY_WORDS[:2], spec=TINY_SPEC_TALL)
    other = write_dataset(tall, str(tmp_path / "tall"), split="val", spec=TINY_SPEC_TALL, num_shards=1)
    with pytest.raises(ValueError, match=r"holds .* images; the model is built for"):
        train(train_uri, other, str(tmp_path / "model"), tiny_train_config(epochs=1, steps_per_epoch=1))


@pytest.mark.slow
def test_data_too_narrow_for_the_runs_time_steps_is_refused_before_training(tmp_path):
    # TrainConfig checks the default 192-pixel geometry; the data's own is checked when training starts.
    narrow = dataclasses.replace(TINY_SPEC, width=64, max_word_length=16)
    samples = make_samples(TINY_WORDS[:2], spec=narrow)
    train_uri = write_dataset(samples, str(tmp_path / "train"), spec=narrow)
    val_uri = write_dataset(samples, str(tmp_path / "val"), split="val", spec=narrow, num_shards=1)
    with pytest.raises(ValueError, match=r"leaves 16 time steps for a 64-pixel input; CTC needs 33"):
        train(train_uri, val_uri, str(tmp_path / "model"), tiny_train_config(epochs=1, steps_per_epoch=1))
    assert not (tmp_path / "model").exists()


@pytest.mark.parametrize(("factor", "message"), [(3, "power of two"), (0, "power of two"),
                                                  (8, r"leaves 24 time steps .* CTC needs 33")])
def test_a_width_downsample_the_network_cannot_use_is_refused_at_once(factor, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(width_downsample=factor)


@pytest.mark.slow
def test_tiny_run_overfits_its_words(tiny_trained):
    result, _, _ = tiny_trained
    history = result.history
    assert history["loss"][-1] < history["loss"][0] / 20
    assert result.best_val_word_accuracy >= 0.875
    # The kept epoch is the first with the best validation word accuracy, not simply the last one.
    accuracies = history["val_word_accuracy"]
    assert result.best_epoch == int(np.argmax(accuracies)) + 1
    assert len(accuracies) == result.epochs_run == 40

    out = result.artifact_uri
    spec = read_spec(out)
    assert spec["training"]["best_epoch"] == result.best_epoch
    # The spelling model of the training split's words ships with the weights.
    assert spec["language_model"]["weight"] == char_lm.WEIGHT
    assert load_language_model(out, spec).log_probs.shape == (27 ** (char_lm.ORDER - 1), 27)
    # Its confidences' calibration, fitted on the validation images, with its error before and after.
    calibration = spec["calibration"]
    assert calibration["fitted_on"] == spec["training"]["val_count"]
    assert calibration["slope"] > 0 and calibration["ece_calibrated"] <= calibration["ece_raw"] + 1e-9
    with open(f"{out}/history.json") as f:
        assert json.loads(f.read())["val_word_accuracy"] == accuracies
    with open(f"{out}/training_curves.png", "rb") as png:
        assert png.read(8) == b"\x89PNG\r\n\x1a\n"


class _Killed(Exception):
    pass


class _KillAfterEpoch(keras.callbacks.Callback):
    def __init__(self, epoch: int):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.epoch:
            raise _Killed


@pytest.mark.slow
def test_a_killed_run_resumes_after_its_last_epoch(tmp_path):
    train_uri, val_uri = write_tiny_datasets(tmp_path)
    config = tiny_train_config(epochs=3, steps_per_epoch=1)
    checkpoints = str(tmp_path / "ckpt")
    with pytest.raises(_Killed):
        train(train_uri, val_uri, str(tmp_path / "model"), config, checkpoint_dir=checkpoints,
              callbacks=[_KillAfterEpoch(2)])
    assert not (tmp_path / "model" / "spec.json").exists()
    assert json.loads((tmp_path / "ckpt" / "state.json").read_text())["epoch"] == 2

    started = []
    class _Record(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            started.append(epoch)

    result = train(train_uri, val_uri, str(tmp_path / "model"), config, checkpoint_dir=checkpoints,
                   callbacks=[_Record()])
    assert started == [2]  # only the third epoch ran again
    assert result.epochs_run == 3 and len(result.history["loss"]) == 3
    assert (tmp_path / "model" / "spec.json").exists()
    # Only the weights the final state names are kept.
    state = json.loads((tmp_path / "ckpt" / "state.json").read_text())
    kept = sorted(p.name for p in (tmp_path / "ckpt").iterdir())
    assert kept == sorted({"state.json", "last-0003.weights.h5", f"best-{state['best_epoch']:04d}.weights.h5"})


@pytest.mark.slow
def test_weights_saved_after_the_state_are_not_mistaken_for_it(tmp_path):
    # A kill after an epoch's weights were written but before state.json moved on: the resumed run
    # must load the weights of the epoch the state names, not the newer file.
    train_uri, val_uri = write_tiny_datasets(tmp_path)
    config = tiny_train_config(epochs=2, steps_per_epoch=1)
    checkpoints = tmp_path / "ckpt"
    with pytest.raises(_Killed):
        train(train_uri, val_uri, str(tmp_path / "model"), config, checkpoint_dir=str(checkpoints),
              callbacks=[_KillAfterEpoch(1)])
    state = json.loads((checkpoints / "state.json").read_text())
    assert state["epoch"] == 1
    assert (checkpoints / "last-0001.weights.h5").is_file()
    (checkpoints / "last-0002.weights.h5").write_bytes(b"half-written by a killed run")

    started = []

    class _Record(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            started.append(epoch)

    result = train(train_uri, val_uri, str(tmp_path / "model"), config, checkpoint_dir=str(checkpoints),
                   callbacks=[_Record()])
    assert started == [1] and result.epochs_run == 2
    assert not (checkpoints / "last-0001.weights.h5").exists()
