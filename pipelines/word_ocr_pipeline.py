"""generate (fanned out over shards) -> train (GPU) -> evaluate -> gate -> publish -> roll out, as a KFP v2 pipeline.

The defaults are the cluster's (GPU training, large data); `pipelines.run_local` passes the
smaller sizes that fit two CPU cores. What each task requests (CPU, memory, the GPU node, retries)
is in components/resources.py. Compile with `make compile`.
"""

from kfp import dsl

from components import resources
from components.evaluate import evaluate_model
from components.generate import collect_shards, generate_shard, generate_words, plan_shards
from components.publish import publish_model, reject_model
from components.rollout import roll_out_model
from components.train import train_model

PIPELINE_NAME = "word-ocr"
# The run's id: the same for every task of a run, and for a retried pod, so a retry finds its checkpoint.
RUN_ID = dsl.PIPELINE_JOB_ID_PLACEHOLDER


@dsl.pipeline(
    name=PIPELINE_NAME, description="Generate word images, train a CRNN-CTC recogniser, gate, publish and roll it out."
)
def word_ocr_pipeline(
    serving_root: str,
    model_name: str = "word-ocr",
    data_root: str = "",
    checkpoint_root: str = "",
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
    isvc_namespace: str = "",
    predictor_image: str = "",
    canary_percent: int = 10,
    rollout_timeout_s: int = 600,
):
    """``data_root``: "" keeps datasets and the model in KFP artifacts; a folder or gs://bucket/prefix puts
    them at {data_root}/{run id}/{train,val,test,model}. ``checkpoint_root``: "" trains without
    checkpoints; else every epoch is saved at {checkpoint_root}/{run id}/train and a retried pod resumes.
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

    small_splits = {}
    for split, samples, tier, font_set in (
        ("val", val_samples, train_tier, "train"),
        ("test", test_samples, test_tier, test_font_set),
    ):
        task = generate_words(
            split=split,
            num_samples=samples,
            seed=seed,
            tier=tier,
            font_set=font_set,
            num_shards=1,
            workers=workers,
            data_root=data_root,
            run_id=RUN_ID,
        ).set_display_name(f"generate {'validation' if split == 'val' else split} data")
        small_splits[split] = resources.with_retries(resources.with_resources(task, resources.GENERATE))

    trained = train_model(
        train_data=train_data.outputs["dataset"],
        val_data=small_splits["val"].outputs["dataset"],
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        seed=seed,
        data_root=data_root,
        checkpoint_root=checkpoint_root,
        run_id=RUN_ID,
    ).set_display_name("train")
    resources.on_gpu_node(
        resources.with_retries(resources.with_resources(trained, resources.TRAIN), resources.TRAIN_RETRY)
    )

    evaluation = evaluate_model(
        model=trained.outputs["model"], test_data=small_splits["test"].outputs["dataset"]
    ).set_display_name("evaluate")
    resources.with_resources(evaluation, resources.EVALUATE)
    word_accuracy = evaluation.outputs["word_accuracy"]

    with dsl.If(word_accuracy >= accuracy_gate, name="accuracy-gate-passed"):
        published = publish_model(
            model=trained.outputs["model"],
            serving_root=serving_root,
            model_name=model_name,
            word_accuracy=word_accuracy,
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
    with dsl.Else(name="accuracy-gate-failed"):
        reject = reject_model(word_accuracy=word_accuracy, accuracy_gate=accuracy_gate)
        resources.with_resources(reject.set_display_name("reject (below gate)"), resources.SMALL)
