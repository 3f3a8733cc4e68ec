// One GET of `/` per iteration, response not copied into the guest: the
// JavaScript counterpart of examples/rust/single-get, for benches/peers.py.
import { send } from 'loadtest:scenario/http@0.1.0';

const request = {
  method: 'GET',
  url: '/',
  headers: [],
  body: undefined,
  name: 'get',
  timeoutMs: undefined,
  discardBody: true,
  discardHeaders: true,
};

export function init(_params) {}

// A failed send throws; a result<_, string> export fails by throwing a string.
export function iteration() {
  try {
    send(request);
  } catch (e) {
    throw `request failed: ${JSON.stringify(e.payload ?? String(e))}`;
  }
}
