// The quickstart with fetch(): the same requests as scenario.js, through
// `wasi:http` (the `scenario-http` world) instead of the host's `http`
// import. The host still sends and records them (named `METHOD /path`);
// fetch needs absolute URLs, so the target comes in through params:
//   params: { base: "http://127.0.0.1:8080" }
import { check } from 'loadtest:scenario/metrics@0.1.0';
import { id, iteration as iterationNo } from 'loadtest:scenario/vu@0.1.0';

let base = '';

export function init(params) {
  const p = JSON.parse(params || 'null') || {};
  if (typeof p.base !== 'string' || !/^https?:\/\//.test(p.base)) {
    throw 'params.base: set it to the target URL, like http://127.0.0.1:8080 (fetch needs absolute URLs)';
  }
  base = p.base.replace(/\/$/, '');
}

export async function iteration() {
  try {
    const home = await fetch(`${base}/`);
    await home.arrayBuffer();
    check('home status is 200', home.status === 200);
    const order = JSON.stringify({ vu: id(), item: Number(iterationNo()) });
    const echoed = await fetch(`${base}/echo`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: order,
    });
    const text = await echoed.text();
    check('order echoed', echoed.status === 200 && text === order);
  } catch (e) {
    throw String(e && e.message ? e.message : e);
  }
}
