"""The word-ocr KServe custom predictor: ``python -m serving --model_dir URI``.

``predictor.WordOCRModel`` is the kserve.Model; ``payloads`` holds the request/response rules
(no server needed to test them); ``prototype_routes`` keeps the prototype's form API.
"""
