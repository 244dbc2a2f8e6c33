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
    data_root: str,
    checkpoint_root: str,
    run_id: str,
    model: dsl.Output[dsl.Model],
):
    """Fit the model, keep the epoch with the best validation word accuracy, save a model artifact.

    With a ``checkpoint_root`` every epoch is saved under ``{checkpoint_root}/{run_id}/train``: a pod
    that is preempted and retried (same run, same run id) resumes after its last finished epoch.
    With a ``data_root`` the model goes to ``{data_root}/{run_id}/model`` (named by ``metadata["uri"]``).
    """
    import json
    import logging

    from wordocr.runs import run_folder
    from wordocr.train import TrainConfig, train

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    model_uri = run_folder(data_root, run_id, "model") if data_root else model.path
    checkpoint_dir = run_folder(checkpoint_root, run_id, "train") if checkpoint_root else None
    config = TrainConfig(epochs=epochs, batch_size=batch_size, learning_rate=learning_rate, seed=seed)
    result = train(
        train_data.metadata.get("uri") or train_data.path,
        val_data.metadata.get("uri") or val_data.path,
        model_uri,
        config,
        checkpoint_dir=checkpoint_dir,
    )
    model.metadata.update({"framework": "keras", "best_val_word_accuracy": result.best_val_word_accuracy})
    if data_root:
        model.metadata["uri"] = model_uri
        with open(model.path, "w") as f:
            json.dump({"uri": model_uri}, f)
