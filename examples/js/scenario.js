// The quickstart scenario in JavaScript: log in (when params.user is set),
// fetch the home page, post an order to the echo route with the session's
// token and check it comes back. Imports are the
// loadtest:scenario world's interfaces, called like functions.
import { send } from 'loadtest:scenario/http@0.1.0';
import { check } from 'loadtest:scenario/metrics@0.1.0';
import { id, iteration as iterationNo } from 'loadtest:scenario/vu@0.1.0';

let thinkMs = 0; // reserved: think time between iterations, like the Rust quickstart
let auth = null; // `Bearer <token>` once logged in

function request(method, url, name, body) {
  const headers = body ? [['content-type', 'application/json']] : [];
  if (auth && url !== '/login') headers.push(['authorization', auth]);
  return send({
    method,
    url,
    headers,
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
    if (p.user) {
      const user = `${p.user}-${id()}`;
      const res = request('POST', '/login', 'login', JSON.stringify({ user }));
      check('logged in', res.status === 200);
      if (res.status !== 200) throw `login as ${user}: status ${res.status}`;
      auth = `Bearer ${JSON.parse(new TextDecoder().decode(res.body)).token}`;
    }
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
