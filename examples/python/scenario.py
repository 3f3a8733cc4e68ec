"""The quickstart scenario in Python: log in (when params.user is set),
fetch the home page, post an order to the echo route with the session's
token and check it comes back. Built into a component with
componentize-py (CPython inside the component) by scripts/build-plugins.sh.
"""

import json

import wit_world
from componentize_py_types import Err
from wit_world.imports import http, metrics, vu

think_ms = 0  # reserved: think time between iterations, like the Rust quickstart
auth: str | None = None  # "Bearer <token>" once logged in


def request(method: str, url: str, name: str, body: bytes | None = None) -> http.Response:
    headers = [("content-type", "application/json")] if body is not None else []
    if auth is not None and url != "/login":
        headers.append(("authorization", auth))
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
        global think_ms, auth
        try:
            p = json.loads(params or "null") or {}
        except ValueError as e:
            raise Err(f"params are not JSON: {e}")
        think_ms = p.get("think_ms", 0)
        if p.get("user"):
            user = f"{p['user']}-{vu.id()}"
            res = request("POST", "/login", "login", json.dumps({"user": user}).encode())
            metrics.check("logged in", res.status == 200)
            if res.status != 200:
                raise Err(f"login as {user}: status {res.status}")
            auth = "Bearer " + json.loads(res.body)["token"]

    def iteration(self) -> None:
        home = request("GET", "/", "home")
        metrics.check("home status is 200", home.status == 200)
        order = json.dumps({"vu": vu.id(), "item": vu.iteration()}, separators=(",", ":"))
        echoed = request("POST", "/echo", "order", order.encode())
        metrics.check("order echoed", echoed.status == 200 and echoed.body.decode() == order)
