"""generate -> train -> evaluate -> gate -> deploy, as a KFP v2 pipeline.

The defaults are the cluster's (GPU training, large data); `pipelines.run_local` passes the
smaller sizes that fit two CPU cores. Compile with `make compile`.
"""

from kfp import dsl

from components.deploy import deploy_model, reject_model
from components.evaluate import evaluate_model
from components.generate import generate_words
from components.train import train_model

PIPELINE_NAME = "word-ocr"


@dsl.pipeline(name=PIPELINE_NAME, description="Generate word images, train a CRNN-CTC recogniser, gate and deploy it.")
def word_ocr_pipeline(
    serving_root: str,
    model_name: str = "word-ocr",
    seed: int = 1,
    train_samples: int = 200_000,
    val_samples: int = 2_000,
    test_samples: int = 2_000,
    train_tier: str = "train",
    test_tier: str = "noisy",
    test_font_set: str = "train",
    num_shards: int = 8,
    workers: int = 4,
    epochs: int = 20,
    batch_size: int = 128,
    learning_rate: float = 1e-3,
    accuracy_gate: float = 0.95,
):
    train_data = generate_words(
        split="train",
        num_samples=train_samples,
        seed=seed,
        tier=train_tier,
        font_set="train",
        num_shards=num_shards,
        workers=workers,
    ).set_display_name("generate train data")
    val_data = generate_words(
        split="val",
        num_samples=val_samples,
        seed=seed,
        tier=train_tier,
        font_set="train",
        num_shards=1,
        workers=workers,
    ).set_display_name("generate validation data")
    test_data = generate_words(
        split="test",
        num_samples=test_samples,
        seed=seed,
        tier=test_tier,
        font_set=test_font_set,
        num_shards=1,
        workers=workers,
    ).set_display_name("generate test data")

    trained = train_model(
        train_data=train_data.outputs["dataset"],
        val_data=val_data.outputs["dataset"],
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        seed=seed,
    ).set_display_name("train")

    evaluation = evaluate_model(
        model=trained.outputs["model"], test_data=test_data.outputs["dataset"]
    ).set_display_name("evaluate")
    word_accuracy = evaluation.outputs["word_accuracy"]

    with dsl.If(word_accuracy >= accuracy_gate, name="accuracy-gate-passed"):
        deploy_model(
            model=trained.outputs["model"],
            serving_root=serving_root,
            model_name=model_name,
            word_accuracy=word_accuracy,
        ).set_display_name("deploy")
    with dsl.Else(name="accuracy-gate-failed"):
        reject_model(word_accuracy=word_accuracy, accuracy_gate=accuracy_gate).set_display_name("reject (below gate)")
