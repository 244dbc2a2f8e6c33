"""Train the CRNN-CTC model on the generated data."""

from kfp import dsl

from components.images import TRAINER_IMAGE


@dsl.component(base_image=TRAINER_IMAGE, install_kfp_package=False)
def train_model(
    train_data: dsl.Input[dsl.Dataset],
    val_data: dsl.Input[dsl.Dataset],
    epochs: int,
    batch_size: int,
    learning_rate: float,
    seed: int,
    model: dsl.Output[dsl.Model],
):
    """Fit the model, keep the epoch with the best validation word accuracy, save a model artifact."""
    import logging

    from wordocr.train import TrainConfig, train

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = TrainConfig(epochs=epochs, batch_size=batch_size, learning_rate=learning_rate, seed=seed)
    result = train(train_data.path, val_data.path, model.path, config)
    model.metadata.update({"framework": "keras", "best_val_word_accuracy": result.best_val_word_accuracy})
