"""The prototype's ``POST /predict`` form route, kept for the clients that still use it.

``curl -d input_word=game http://host/predict`` answers
``{"pred_texts": ["game"], "top_3_paths": ["game", "...", "..."]}``.

kserve's ModelServer has no hook for extra routes, but every single-worker server serves the
one FastAPI app ``kserve.model_server.app``; routes added to it before ``ModelServer.start``
are served beside kserve's own, and kserve's exception handlers (InvalidInput -> 400) apply.
With ``--workers`` > 1 kserve rebuilds the app in each worker process and these routes would
be lost, so ``python -m serving`` refuses that: scale with replicas instead.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from kserve.errors import InvalidInput, ModelNotReady

from serving.predictor import WordOCRModel

FORM_FIELD = "input_word"


def add_prototype_routes(app: FastAPI, model: WordOCRModel) -> None:
    async def predict_form(request: Request) -> dict:
        if not model.ready:
            raise ModelNotReady(model.name)
        form = await request.form()
        word = form.get(FORM_FIELD)
        if not isinstance(word, str):
            raise InvalidInput(f'send the word as form field "{FORM_FIELD}", e.g. {FORM_FIELD}=game')
        # The same path as the v1 API, so validation and results cannot drift apart.
        response, _ = await model({"instances": [{"word": word}]}, headers=dict(request.headers))
        top_k = model.limits.top_k
        prediction = response["predictions"][0]
        return {"pred_texts": [prediction["pred_text"]], f"top_{top_k}_paths": prediction[f"top_{top_k}_paths"]}

    app.add_api_route("/predict", predict_form, methods=["POST"], response_model=None, tags=["prototype"])
