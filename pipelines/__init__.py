"""The word-ocr Kubeflow pipeline, its compiled YAML, and the local runner behind `make run`."""
