"""kserve's ModelServer with a model that does nothing: the floor any predictor on these cores sits on.

    python -m bench.empty_server --http_port 8080 --enable_grpc false

Its v1 predict answers ``{"predictions": []}`` without looking at the body, so its requests/s
under the same load as the predictor shows how much of the predictor's time is kserve's own.
"""

from __future__ import annotations

from kserve import Model, ModelServer, model_server

NAME = "empty"


class EmptyModel(Model):
    def __init__(self) -> None:
        super().__init__(NAME)
        self.ready = True

    async def predict(self, payload, headers=None, response_headers=None) -> dict:
        return {"predictions": []}


def main() -> None:
    args, _ = model_server.parser.parse_known_args()
    ModelServer(http_port=args.http_port, enable_grpc=False).start([EmptyModel()])


if __name__ == "__main__":
    main()
