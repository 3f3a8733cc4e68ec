"""The quickstart scenario in Python: fetch the home page, post an order
to the echo route and check it comes back. Built into a component with
componentize-py (CPython inside the component) by scripts/build-plugins.sh.
"""

import json

import wit_world
from componentize_py_types import Err
from wit_world.imports import http, metrics, vu

think_ms = 0  # reserved: think time between iterations, like the Rust quickstart


def request(method: str, url: str, name: str, body: bytes | None = None) -> http.Response:
    headers = [("content-type", "application/json")] if body is not None else []
    req = http.Request(
        method=method,
        url=url,
        headers=headers,
        body=body,
        name=name,
        timeout_ms=None,
        discard_body=False,
        discard_headers=True,
    )
    try:
        return http.send(req)
    except Err as e:
        # A transport failure (refused, timeout) fails the iteration.
        raise Err(f"{name}: {e.value}")


class WitWorld(wit_world.WitWorld):
    def init(self, params: str) -> None:
        global think_ms
        try:
            think_ms = (json.loads(params or "null") or {}).get("think_ms", 0)
        except ValueError as e:
            raise Err(f"params are not JSON: {e}")

    def iteration(self) -> None:
        home = request("GET", "/", "home")
        metrics.check("home status is 200", home.status == 200)
        order = json.dumps({"vu": vu.id(), "item": vu.iteration()}, separators=(",", ":"))
        echoed = request("POST", "/echo", "order", order.encode())
        metrics.check("order echoed", echoed.status == 200 and echoed.body.decode() == order)
