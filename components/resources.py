"""What each task asks a cluster for: CPU and memory, the trainer's GPU node, retries. All in one place.

``kfp.local`` ignores these settings (it logs a warning) and runs every task on this machine; the
compiled YAML carries them to Kubeflow Pipelines. The GPU node defaults match the GKE node pool
docs/cluster.md creates (NVIDIA L4 on g2-standard-8, spot, tainted ``nvidia.com/gpu=present:NoSchedule``):
change ``TRAINER_GPU`` here, then `make compile`, for another accelerator.
"""

from __future__ import annotations

from dataclasses import dataclass

from kfp import dsl, kubernetes


@dataclass(frozen=True)
class Resources:
    """CPU (cores or millicores) and memory (Kubernetes quantities) a task requests and may not exceed."""

    cpu_request: str
    cpu_limit: str
    memory_request: str
    memory_limit: str


@dataclass(frozen=True)
class GpuNode:
    """The accelerator a task requests and the GKE node pool that has it."""

    accelerator: str = "nvidia.com/gpu"
    count: int = 1
    node_label: str = "cloud.google.com/gke-accelerator"
    node_label_value: str = "nvidia-l4"
    taint_key: str = "nvidia.com/gpu"
    taint_effect: str = "NoSchedule"


@dataclass(frozen=True)
class RetryPolicy:
    """How often a failed pod of a task is started again, with exponential backoff.

    ``backoff_max_duration`` is the window for all attempts together, not a cap on one backoff:
    KFP compiles it to Argo's ``retryStrategy.backoff.maxDuration``, which Argo counts from the
    first attempt's start; a retry is only made inside it, and a retried pod gets what is left of
    it as its deadline. So each task's window is well above its whole wall time, retries included.

    Which failures are retried is not set here: KFP 2.17 has no field for it (its compiler writes
    ``limit`` and ``backoff`` only), so Argo's default ``OnFailure`` applies: a pod whose main
    container failed is retried, one that was deleted (Argo marks it ``Error``: "pod deleted") is
    not. docs/cluster.md says what resumes a preempted training run then.
    """

    num_retries: int = 3
    backoff_duration: str = "30s"
    backoff_factor: float = 2.0
    backoff_max_duration: str = "1h"


# Bookkeeping tasks: plan the shards, write a manifest, publish a model, log a rejection.
SMALL = Resources(cpu_request="500m", cpu_limit="1", memory_request="1Gi", memory_limit="2Gi")
# One shard is rendered by one process (Pillow, about 2,900 images/s per core).
GENERATE_SHARD = Resources(cpu_request="1", cpu_limit="2", memory_request="2Gi", memory_limit="4Gi")
# The validation and test sets are made by one task each, with `workers` processes.
GENERATE = Resources(cpu_request="2", cpu_limit="4", memory_request="4Gi", memory_limit="8Gi")
# Loading the model and decoding the test set (with the top-3 beam) on CPU.
EVALUATE = Resources(cpu_request="2", cpu_limit="4", memory_request="4Gi", memory_limit="8Gi")
# tf.data decoding feeds the GPU from the CPUs; fits a g2-standard-8 (8 vCPU, 32 GB) with room for the
# node's own pods. Datasets up to TrainConfig.cache_max_samples are kept decoded in memory.
TRAIN = Resources(cpu_request="4", cpu_limit="7", memory_request="16Gi", memory_limit="24Gi")
TRAINER_GPU = GpuNode()
# Generating data: minutes at most per attempt.
RETRY = RetryPolicy()
# Training runs for hours on a spot GPU node that can be taken away at any time; with a
# checkpoint_root a retried pod resumes after its last finished epoch.
TRAIN_RETRY = RetryPolicy(num_retries=5, backoff_duration="60s", backoff_factor=2.0, backoff_max_duration="24h")


def with_resources(task: dsl.PipelineTask, resources: Resources) -> dsl.PipelineTask:
    return (
        task.set_cpu_request(resources.cpu_request)
        .set_cpu_limit(resources.cpu_limit)
        .set_memory_request(resources.memory_request)
        .set_memory_limit(resources.memory_limit)
    )


def on_gpu_node(task: dsl.PipelineTask, gpu: GpuNode = TRAINER_GPU) -> dsl.PipelineTask:
    """Request ``gpu.count`` GPUs and schedule onto (and tolerate the taint of) the GPU node pool."""
    task.set_accelerator_type(gpu.accelerator).set_accelerator_limit(gpu.count)
    kubernetes.add_node_selector(task, label_key=gpu.node_label, label_value=gpu.node_label_value)
    kubernetes.add_toleration(task, key=gpu.taint_key, operator="Exists", effect=gpu.taint_effect)
    return task


def with_retries(task: dsl.PipelineTask, policy: RetryPolicy = RETRY) -> dsl.PipelineTask:
    return task.set_retry(
        num_retries=policy.num_retries,
        backoff_duration=policy.backoff_duration,
        backoff_factor=policy.backoff_factor,
        backoff_max_duration=policy.backoff_max_duration,
    )
