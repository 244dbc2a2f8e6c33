"""generate (fanned out over shards) -> train (GPU) -> evaluate -> gate -> publish -> roll out, as a KFP v2 pipeline.

The gate (wordocr/gate.py) judges the test grid's readings (every tier, training and held-out
faces) against a threshold per cell (``gate_heldout_hard``, ...) and the record of the model being
served (no cell more than ``regression_tolerance`` worse); the pipeline's output is its verdict.

The parameters' defaults are the cluster recipe's (wordocr/recipes.py: GPU training, large data);
`pipelines.run_local` passes the local or quick recipe's, which fit two CPU cores. What each
task requests (CPU, memory, the GPU node, retries) is in components/resources.py. Compile with `make compile`.
"""

from kfp import dsl

from components import resources
from components.evaluate import evaluate_model
from components.generate import collect_shards, generate_shard, generate_words, plan_shards
from components.publish import gate_model, publish_model, reject_model
from components.rollout import roll_out_model
from components.train import train_model
from wordocr.recipes import CLUSTER

PIPELINE_NAME = "word-ocr"
# The run's id: the same for every task of a run, and for a retried pod, so a retry finds its checkpoint.
RUN_ID = dsl.PIPELINE_JOB_ID_PLACEHOLDER
# Every setting of a run, as the cluster recipe has it: the parameters' defaults.
CLUSTER_SETTINGS = CLUSTER.settings()


@dsl.pipeline(
    name=PIPELINE_NAME, description="Generate word images, train a CRNN-CTC recogniser, gate, publish and roll it out."
)
def word_ocr_pipeline(
    serving_root: str,
    model_name: str = "word-ocr",
    data_root: str = "",
    checkpoint_root: str = "",
    seed: int = CLUSTER_SETTINGS["seed"],
    train_samples: int = CLUSTER_SETTINGS["train_samples"],
    val_samples: int = CLUSTER_SETTINGS["val_samples"],
    test_samples: int = CLUSTER_SETTINGS["test_samples"],
    train_tier: str = CLUSTER_SETTINGS["train_tier"],
    train_text: str = CLUSTER_SETTINGS["train_text"],
    num_shards: int = CLUSTER_SETTINGS["num_shards"],
    workers: int = 4,
    epochs: int = CLUSTER_SETTINGS["epochs"],
    batch_size: int = CLUSTER_SETTINGS["batch_size"],
    learning_rate: float = CLUSTER_SETTINGS["learning_rate"],
    schedule: str = CLUSTER_SETTINGS["schedule"],
    warmup_epochs: float = CLUSTER_SETTINGS["warmup_epochs"],
    final_lr_fraction: float = CLUSTER_SETTINGS["final_lr_fraction"],
    clipnorm: float = CLUSTER_SETTINGS["clipnorm"],
    patience: int = CLUSTER_SETTINGS["patience"],
    steps_per_epoch: int = CLUSTER_SETTINGS["steps_per_epoch"],
    conv_filters: str = CLUSTER_SETTINGS["conv_filters"],
    lstm_units: int = CLUSTER_SETTINGS["lstm_units"],
    dropout: float = CLUSTER_SETTINGS["dropout"],
    separable_convs: bool = CLUSTER_SETTINGS["separable_convs"],
    width_downsample: int = CLUSTER_SETTINGS["width_downsample"],
    mixed_precision: bool = CLUSTER_SETTINGS["mixed_precision"],
    spelling_weight: float = CLUSTER_SETTINGS["spelling_weight"],
    regression_tolerance: float = CLUSTER_SETTINGS["regression_tolerance"],
    gate_train_clean: float = CLUSTER_SETTINGS["gate_train_clean"],
    gate_train_noisy: float = CLUSTER_SETTINGS["gate_train_noisy"],
    gate_train_hard: float = CLUSTER_SETTINGS["gate_train_hard"],
    gate_train_tight: float = CLUSTER_SETTINGS["gate_train_tight"],
    gate_heldout_clean: float = CLUSTER_SETTINGS["gate_heldout_clean"],
    gate_heldout_noisy: float = CLUSTER_SETTINGS["gate_heldout_noisy"],
    gate_heldout_hard: float = CLUSTER_SETTINGS["gate_heldout_hard"],
    gate_heldout_tight: float = CLUSTER_SETTINGS["gate_heldout_tight"],
    isvc_namespace: str = "",
    predictor_image: str = "",
    canary_percent: int = 10,
    rollout_timeout_s: int = 600,
) -> str:
    """``train_text``: "lower" trains a model of lower-case words, "written" one of words as people
    write them (capitals, digits, apostrophes). The training options (``epochs`` to
    ``spelling_weight``) are wordocr.recipes.TrainConfig's:
    ``clipnorm`` 0 trains without clipping, ``steps_per_epoch`` 0 makes an epoch one pass over the
    data, ``conv_filters`` is comma separated, ``width_downsample`` is the input columns per CTC time
    step (4: 48 steps on the 192-pixel input). ``test_samples``: images per cell of the test grid.
    ``gate_<font set>_<tier>``: the least word accuracy of that cell; ``regression_tolerance``: how
    much lower than the served model's reading a cell may be (1 never refuses). ``workers``:
    processes of the validation data's task and of the evaluate task's test grid. ``data_root``: ""
    keeps datasets and the model in KFP artifacts; a folder or gs://bucket/prefix puts them at
    {data_root}/{run id}/{train,val,test,model}. ``checkpoint_root``: "" trains without checkpoints;
    else every epoch is saved at {checkpoint_root}/{run id}/train and a retried pod resumes.
    ``isvc_namespace``: "" only publishes the model under ``serving_root`` (as `make run` does); a
    namespace also rolls it out to the InferenceService ``model_name`` there, with
    ``predictor_image`` ("" keeps the InferenceService's own; `pipelines.submit` fills it with the
    image pushed), ``canary_percent`` of traffic first (0: all at once), rolling back if it is not
    Ready within ``rollout_timeout_s``. KFP 2.17 sets the Kubernetes service account per run, not
    per task, so the rollout runs as the run's account (standalone KFP: ``pipeline-runner``), which
    the overlays' RoleBinding (manifests/base/deployer-rbac.yaml) lets manage InferenceServices in
    their namespace and nothing else there."""
    plan = resources.with_resources(plan_shards(num_shards=num_shards), resources.SMALL)
    plan.set_display_name("plan train shards")
    # What identifies the train dataset: every shard task and the collect step must agree on it.
    train_dataset = dict(
        split="train",
        num_shards=num_shards,
        num_samples=train_samples,
        seed=seed,
        tier=train_tier,
        font_set="train",
        text=train_text,
        data_root=data_root,
        run_id=RUN_ID,
    )
    with dsl.ParallelFor(plan.output, name="train-shards") as shard_index:
        shard = generate_shard(shard_index=shard_index, **train_dataset).set_display_name("generate a train shard")
        resources.with_retries(resources.with_resources(shard, resources.GENERATE_SHARD))
    train_data = collect_shards(
        shards=dsl.Collected(shard.outputs["shard"]),
        **train_dataset,
    ).set_display_name("collect train shards, write the manifest")
    resources.with_retries(resources.with_resources(train_data, resources.SMALL))

    val_data = generate_words(
        split="val",
        num_samples=val_samples,
        seed=seed,
        tier=train_tier,
        font_set="train",
        text=train_text,
        num_shards=1,
        workers=workers,
        data_root=data_root,
        run_id=RUN_ID,
    ).set_display_name("generate validation data")
    resources.with_retries(resources.with_resources(val_data, resources.GENERATE))

    trained = train_model(
        train_data=train_data.outputs["dataset"],
        val_data=val_data.outputs["dataset"],
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
        data_root=data_root,
        checkpoint_root=checkpoint_root,
        run_id=RUN_ID,
    ).set_display_name("train")
    resources.on_gpu_node(
        resources.with_retries(resources.with_resources(trained, resources.TRAIN), resources.TRAIN_RETRY)
    )

    # The test grid is rendered by the evaluate task itself, from a fixed seed (wordocr/test_grid.py).
    evaluation = evaluate_model(
        model=trained.outputs["model"], test_samples=test_samples, workers=workers, data_root=data_root, run_id=RUN_ID
    ).set_display_name("evaluate")
    resources.with_retries(resources.with_resources(evaluation, resources.EVALUATE))

    gate = gate_model(
        readings=evaluation.outputs["Output"],
        serving_root=serving_root,
        model_name=model_name,
        regression_tolerance=regression_tolerance,
        gate_train_clean=gate_train_clean,
        gate_train_noisy=gate_train_noisy,
        gate_train_hard=gate_train_hard,
        gate_train_tight=gate_train_tight,
        gate_heldout_clean=gate_heldout_clean,
        gate_heldout_noisy=gate_heldout_noisy,
        gate_heldout_hard=gate_heldout_hard,
        gate_heldout_tight=gate_heldout_tight,
    ).set_display_name("gate")
    # The served model is read now, not when the run was compiled or cached.
    resources.with_resources(gate, resources.SMALL).set_caching_options(False)

    with dsl.If(gate.outputs["decision"] == "publish", name="gate-passed"):
        published = publish_model(
            model=trained.outputs["model"],
            serving_root=serving_root,
            model_name=model_name,
            readings=evaluation.outputs["Output"],
            replacing=gate.outputs["champion_version"],
        ).set_display_name("publish")
        # Publishing is a side effect: never answer it from the cache.
        resources.with_resources(published, resources.SMALL).set_caching_options(False)
        with dsl.If(isvc_namespace != "", name="roll-out-to-kserve"):
            rollout = roll_out_model(
                model_uri=published.output,
                name=model_name,
                namespace=isvc_namespace,
                predictor_image=predictor_image,
                canary_percent=canary_percent,
                timeout_s=rollout_timeout_s,
            ).set_display_name("roll out to KServe")
            resources.with_resources(rollout, resources.SMALL).set_caching_options(False)
    with dsl.Else(name="gate-failed"):
        reject = reject_model(verdict=gate.outputs["verdict"])
        resources.with_resources(reject.set_display_name("reject (refused by the gate)"), resources.SMALL)
    return gate.outputs["verdict"]
