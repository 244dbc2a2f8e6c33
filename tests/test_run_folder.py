"""A run's data and checkpoints live under its run id, and a backend that never filled the id in is refused."""

import pytest

from pipelines.word_ocr_pipeline import RUN_ID
from wordocr.runs import run_folder


def test_a_run_folder_is_under_the_root_and_the_run_id():
    run_id = "0b7c8f5e-3f4a-4c1e-9a57-1d2e3f4a5b6c"
    assert run_folder("gs://b/runs", run_id, "train") == f"gs://b/runs/{run_id}/train"


@pytest.mark.parametrize("run_id", [RUN_ID, "{{workflow.uid}}", ""])
def test_a_run_id_the_backend_did_not_fill_in_fails_before_anything_is_written(run_id):
    """An old KFP backend passes the placeholder itself: every run would share, and resume from, one folder."""
    with pytest.raises(ValueError, match="not a run's id"):
        run_folder("gs://b/checkpoints", run_id, "train")
