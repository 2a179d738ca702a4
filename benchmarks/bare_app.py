"""The baseline the service's request overhead is measured against: a Chalice app with nothing
but the two routes' bare minimum.

POST parses the JSON body and answers 202 with a fresh id; GET answers 200 with the id it was
given. No auth, validation, state or logging: what is left is the cost of Chalice itself (and of
`chalice.test.Client`), which the service pays too. It imports nothing but Chalice, so importing
it is also the cold-start baseline.
"""
from __future__ import annotations

import uuid

from chalice import Chalice, Response

app = Chalice(app_name="bare")


@app.route("/v0.1/dispatch", methods=["POST"])
def create() -> Response:
    request = app.current_request
    assert request is not None, "chalice sets it for every route call"
    body = request.json_body
    if not isinstance(body, dict):
        return Response(body={"title": "Bad Request"}, status_code=400)
    dispatch_uuid = str(uuid.uuid4())
    return Response(
        body={"dispatch_uuid": dispatch_uuid},
        status_code=202,
        headers={"Content-Type": "application/json", "Location": f"/v0.1/dispatch/{dispatch_uuid}"},
    )


@app.route("/v0.1/dispatch/{dispatch_uuid}", methods=["GET"])
def get(dispatch_uuid: str) -> Response:
    return Response(
        body={"dispatch_uuid": dispatch_uuid}, status_code=200, headers={"Content-Type": "application/json"}
    )
