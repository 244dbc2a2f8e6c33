"""The folder of one pipeline run under a data or checkpoint root: ``{root}/{run_id}/...``."""

from __future__ import annotations

from wordocr import storage


def run_folder(root: str, run_id: str, *parts: str) -> str:
    """``root/run_id/parts...``; ValueError when the run id is not one.

    The pipeline passes KFP's ``{{$.pipeline_job_uuid}}`` placeholder; a Kubeflow Pipelines backend
    too old to fill it in passes the placeholder itself, and every run would then share (and
    resume from) one folder. Failing here stops that at the first task that writes.
    """
    if not run_id or "{{" in run_id or "}}" in run_id:
        raise ValueError(
            f"run id {run_id!r} is not a run's id: this Kubeflow Pipelines backend did not fill in the "
            "pipeline's run-id placeholder; use a KFP backend of the release the kfp SDK matches (docs/cluster.md)"
        )
    return storage.join(root, run_id, *parts)
