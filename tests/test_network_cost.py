"""tools/network_cost: what a network shape costs to train and to serve, measured on tiny networks."""

import json
import math

import numpy as np
import pytest

from tests.support.tiny_data import TINY_SPEC
from tools.network_cost import compiled_model, main, onnx_latency, parse_network, random_batch, training_rate
from wordocr.alphabet import DEFAULT_ALPHABET
from wordocr.model import TINY_MODEL_SIZE, build_model
from wordocr.train import LABEL_PAD

TINY_NETWORK = "tiny:" + TINY_MODEL_SIZE.filters_text + f":{TINY_MODEL_SIZE.lstm_units}:4"


def test_random_labels_are_valid_words_padded_as_training_pads_them():
    images, labels = random_batch(TINY_SPEC, DEFAULT_ALPHABET, 32, np.random.default_rng(0))

    assert images.shape == (32, TINY_SPEC.height, TINY_SPEC.width) and images.dtype == np.float32
    assert images.min() >= 0 and images.max() <= 255 and np.array_equal(images, np.round(images))
    assert labels.shape == (32, TINY_SPEC.max_word_length) and labels.dtype == np.int32
    for row in labels:
        length = int((row != LABEL_PAD).sum())
        assert 1 <= length <= TINY_SPEC.max_word_length
        assert (row[:length] >= 0).all() and (row[:length] < len(DEFAULT_ALPHABET.chars)).all()
        assert (row[length:] == LABEL_PAD).all()  # padding only after the word


@pytest.mark.slow  # trains a model (a few steps)
def test_a_tiny_network_trains_at_a_finite_positive_rate_with_build_models_parameters():
    model = compiled_model(TINY_SPEC, DEFAULT_ALPHABET, TINY_MODEL_SIZE)

    rate = training_rate(model, TINY_SPEC, DEFAULT_ALPHABET, batch=4, steps=2, warmup=1)

    assert math.isfinite(rate) and rate > 0
    assert model.count_params() == build_model(TINY_SPEC, DEFAULT_ALPHABET, TINY_MODEL_SIZE).count_params()
    assert model.optimizer.clipnorm is not None  # compiled as training compiles it


@pytest.mark.slow  # converts a model
def test_the_onnx_graph_gives_a_batch_of_logits_per_time_step_and_class():
    model = compiled_model(TINY_SPEC, DEFAULT_ALPHABET, TINY_MODEL_SIZE)

    latency = onnx_latency(model, TINY_SPEC, DEFAULT_ALPHABET, runs=3, threads=1, batch=5)

    assert latency.output_shape == (5, TINY_SPEC.time_steps, DEFAULT_ALPHABET.num_classes)
    assert math.isfinite(latency.one_image_ms) and latency.one_image_ms > 0
    assert math.isfinite(latency.batch_images_per_second) and latency.batch_images_per_second > 0


@pytest.mark.slow  # trains and converts two networks
def test_the_json_holds_one_record_per_network_in_the_order_given(tmp_path, capsys):
    out = tmp_path / "costs.json"
    networks = [TINY_NETWORK, TINY_NETWORK.replace("tiny:", "tiny-d2:").removesuffix(":4") + ":2"]

    code = main([arg for n in networks for arg in ("--network", n)]
                + ["--batch", "2", "--steps", "1", "--warmup", "1", "--runs", "2", "--threads", "1",
                   "--json", str(out)])

    assert code == 0
    records = json.loads(out.read_text())["networks"]
    assert [r["name"] for r in records] == ["tiny", "tiny-d2"]
    fields = {"name", "conv_filters", "lstm_units", "width_downsample", "time_steps", "parameters",
              "train_images_per_second", "training_time_ratio", "ort_one_image_ms",
              "ort_batch_images_per_second", "ort_batch"}
    for record in records:
        assert fields <= set(record)
        assert record["conv_filters"] == list(TINY_MODEL_SIZE.conv_filters)
    assert [r["time_steps"] for r in records] == [48, 96]  # the default 192-pixel width, by 4 then by 2
    assert records[0]["training_time_ratio"] == 1.0
    # The downsampling changes the steps, not the weights.
    assert records[0]["parameters"] == records[1]["parameters"]
    table = capsys.readouterr().out
    assert table.count("\n| tiny") == 2 and "| network | time steps | parameters |" in table


@pytest.mark.parametrize("network", [
    "tiny:16,32:48",  # a field missing
    ":16,32,48,64,64:48:4",  # no name
    "tiny:16,x,48:48:4",  # filters not integers
    "tiny:16,32,48,64,64:0:4",  # no LSTM units
    "tiny:16,32,48,64,64:48:3",  # not a power of two
    "tiny:16,32,48,64,64:48:8",  # 24 time steps: too few for CTC to spell a 16-letter word
    "tiny:16,32:48:4",  # too few blocks to pool the height to 1
    "tiny:16,32,48,64,64:48:4:depthwise",  # a fifth field that is not "separable"
])
def test_a_malformed_network_is_refused_with_a_message(network, capsys):
    with pytest.raises(SystemExit) as refused:
        main(["--network", network, "--no-onnx"])

    assert refused.value.code == 2
    assert "--network" in capsys.readouterr().err


def test_a_network_names_its_shape_and_time_steps():
    network = parse_network("small96:32,64,96,96,160:96:2")

    assert network.size.conv_filters == (32, 64, 96, 96, 160) and network.size.lstm_units == 96
    assert network.spec.width_downsample == 2 and network.spec.time_steps == 96


def test_a_fifth_field_makes_the_convolutions_separable():
    assert not parse_network("small:32,64,96,96,160:96:4").size.separable_convs
    network = parse_network("small-sep:32,64,96,96,160:96:4:separable")

    assert network.size.separable_convs and network.size.conv_filters == (32, 64, 96, 96, 160)
    assert "(separable)" in network.describe()
