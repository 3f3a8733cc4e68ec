// The quickstart scenario in JavaScript: fetch the home page, post an
// order to the echo route and check it comes back. Imports are the
// loadtest:scenario world's interfaces, called like functions.
import { send } from 'loadtest:scenario/http@0.1.0';
import { check } from 'loadtest:scenario/metrics@0.1.0';
import { id, iteration as iterationNo } from 'loadtest:scenario/vu@0.1.0';

let thinkMs = 0; // reserved: think time between iterations, like the Rust quickstart

function request(method, url, name, body) {
  return send({
    method,
    url,
    headers: body ? [['content-type', 'application/json']] : [],
    body: body ? new TextEncoder().encode(body) : undefined,
    name,
    timeoutMs: undefined,
    discardBody: false,
    discardHeaders: true,
  });
}

// A result<_, string> export fails by throwing a string.
function failing(f) {
  try {
    return f();
  } catch (e) {
    throw String(e && e.message ? e.message : e);
  }
}

export function init(params) {
  failing(() => {
    const p = JSON.parse(params || 'null') || {};
    thinkMs = p.think_ms ?? 0;
  });
}

export function iteration() {
  failing(() => {
    const home = request('GET', '/', 'home');
    check('home status is 200', home.status === 200);
    const order = JSON.stringify({ vu: id(), item: Number(iterationNo()) });
    const echoed = request('POST', '/echo', 'order', order);
    check('order echoed', echoed.status === 200 && new TextDecoder().decode(echoed.body) === order);
  });
}
