"""Train the CRNN-CTC model on the generated data."""

from kfp import dsl

from components.images import TRAINER_IMAGE


# Every training option is a typed parameter of its own (defaults: the cluster recipe's, set by the
# pipeline) rather than one JSON recipe: the KFP UI shows each with its type and default, a run
# changes one with `--param spelling_weight=0` and a wrong type is refused when the run is
# submitted, not when the train pod starts. wordocr.recipes.CLI_ONLY names the options left out, and why.
@dsl.component(base_image=TRAINER_IMAGE, install_kfp_package=False)
def train_model(
    train_data: dsl.Input[dsl.Dataset],
    val_data: dsl.Input[dsl.Dataset],
    epochs: int,
    batch_size: int,
    learning_rate: float,
    schedule: str,
    warmup_epochs: float,
    final_lr_fraction: float,
    clipnorm: float,
    patience: int,
    steps_per_epoch: int,
    conv_filters: str,
    lstm_units: int,
    dropout: float,
    separable_convs: bool,
    width_downsample: int,
    mixed_precision: bool,
    spelling_weight: float,
    seed: int,
    data_root: str,
    checkpoint_root: str,
    run_id: str,
    model: dsl.Output[dsl.Model],
):
    """Fit the model, keep the epoch with the best validation word accuracy, save a model artifact.

    The options are wordocr.recipes.TrainConfig's, as ``Recipe.settings()`` names them: ``clipnorm``
    0 trains without clipping, ``steps_per_epoch`` 0 makes an epoch one pass over the data,
    ``conv_filters`` is comma separated ("32,64,128,128,256"), ``width_downsample`` is the input
    columns per CTC time step (the data's images are the same for any).
    With a ``checkpoint_root`` every epoch is saved under ``{checkpoint_root}/{run_id}/train``: a pod
    that is preempted and retried (same run, same run id) resumes after its last finished epoch.
    With a ``data_root`` the model goes to ``{data_root}/{run_id}/model`` (named by ``metadata["uri"]``).
    """
    import json
    import logging

    from wordocr.recipes import TrainConfig
    from wordocr.runs import run_folder
    from wordocr.train import train

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    model_uri = run_folder(data_root, run_id, "model") if data_root else model.path
    checkpoint_dir = run_folder(checkpoint_root, run_id, "train") if checkpoint_root else None
    config = TrainConfig().with_settings(
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        schedule=schedule,
        warmup_epochs=warmup_epochs,
        final_lr_fraction=final_lr_fraction,
        clipnorm=clipnorm,
        patience=patience,
        steps_per_epoch=steps_per_epoch,
        conv_filters=conv_filters,
        lstm_units=lstm_units,
        dropout=dropout,
        separable_convs=separable_convs,
        width_downsample=width_downsample,
        mixed_precision=mixed_precision,
        spelling_weight=spelling_weight,
        seed=seed,
    )
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
