"""The quickstart through wasi:http (the `scenario-http` world): the same
requests as examples/python/scenario.py, made with the wasi:http
interfaces instead of the host's `http` import. The host still sends and
records them (named `METHOD /path`). Absolute URLs are needed, so the
target comes in through params: `params: { base: "http://127.0.0.1:8080" }`.
"""

import json
from urllib.parse import urlsplit

import wit_world
from componentize_py_types import Err, Ok
from wit_world.imports import metrics, outgoing_handler, types, vu
from wit_world.imports.streams import StreamError_Closed

base = ""


def fetch(method: types.Method, url: str, body: bytes | None = None) -> tuple[int, bytes]:
    """One request, blocking this VU (not the host) until the whole body is in."""
    parts = urlsplit(url)
    headers = [("content-type", b"application/json")] if body is not None else []
    request = types.OutgoingRequest(types.Fields.from_list(headers))
    request.set_method(method)
    request.set_scheme(types.Scheme_Https() if parts.scheme == "https" else types.Scheme_Http())
    request.set_authority(parts.netloc)
    request.set_path_with_query(parts.path + (f"?{parts.query}" if parts.query else ""))
    outgoing = request.body()
    if body is not None:
        with outgoing.write() as stream:
            stream.blocking_write_and_flush(body)
    types.OutgoingBody.finish(outgoing, None)

    future = outgoing_handler.handle(request, None)
    with future.subscribe() as ready:
        ready.block()
    result = future.get()
    if not isinstance(result, Ok) or not isinstance(result.value, Ok):
        error = result.value.value if isinstance(result, Ok) else result
        raise Err(f"{url}: {error}")
    response = result.value.value
    status = response.status()
    incoming = response.consume()
    data = b""
    with incoming.stream() as stream:
        while True:
            try:
                data += stream.blocking_read(16 * 1024)
            except Err as e:
                if isinstance(e.value, StreamError_Closed):
                    break
                raise
    types.IncomingBody.finish(incoming)
    return status, data


class WitWorld(wit_world.WitWorld):
    def init(self, params: str) -> None:
        global base
        p = json.loads(params or "null") or {}
        if not str(p.get("base", "")).startswith(("http://", "https://")):
            raise Err("params.base: set it to the target URL, like http://127.0.0.1:8080 (wasi:http needs absolute URLs)")
        base = p["base"].rstrip("/")

    def iteration(self) -> None:
        status, _ = fetch(types.Method_Get(), f"{base}/")
        metrics.check("home status is 200", status == 200)
        order = json.dumps({"vu": vu.id(), "item": vu.iteration()}, separators=(",", ":"))
        status, echoed = fetch(types.Method_Post(), f"{base}/echo", order.encode())
        metrics.check("order echoed", status == 200 and echoed.decode() == order)
