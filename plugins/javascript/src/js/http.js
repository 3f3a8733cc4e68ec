// `k6/http` on the host's client: every request is timed and recorded by
// the host, with the VU's cookies, redirects and decoding.
const H = globalThis.__host;

// Bytes travel as they are: an ArrayBuffer, or a typed array or DataView
// (the part of its buffer it shows). A plain object (a form) is not
// bytes: asking `ArrayBuffer` about it would make the typed arrays
// (intrinsics.rs) for nothing.
const isBinary = (body) => typeof body === 'object' && body !== null
  && Object.getPrototypeOf(body) !== Object.prototype
  && (body instanceof ArrayBuffer || ArrayBuffer.isView(body));

// Shared with loadtest/http-more, which reads files in form bodies.
const FILE = Symbol.for('k6/http.file');

// What few scripts use (forms, selectors, cookies, web flows) is a module
// of its own, loaded when first needed: every VU that loads code holds
// its bytecode (with all of it here, a sleeping VU held 19 KiB more).
let extra;
const more = () => (extra ??= H.importModule('loadtest/http-more'));

// A request's body as the host takes it (a string or bytes), and the
// params with the Content-Type an object body (a form) implies.
function encoded(body, params) {
  if (body === undefined || body === null) return [null, params];
  if (typeof body === 'string' || isBinary(body)) return [body, params];
  return more().encodedForm(body, params);
}

// k6's `http.file`: a part of a multipart/form-data body.
export function file(data, filename, contentType) {
  if (typeof data !== 'string' && !isBinary(data)) {
    throw new Error('k6/http: file(data) takes a string, an ArrayBuffer (open(path, "b")) or a typed array');
  }
  return {
    [FILE]: true,
    data,
    filename: filename === undefined ? 'file' : String(filename),
    content_type: contentType === undefined ? 'application/octet-stream' : String(contentType),
  };
}

// A response arrives from the host as one array (status, url, body,
// error, error_code, headers as [name, value, ...], timings as seven
// numbers, the request's method and url, and the handle of what the host
// still holds): property names written here are resolved once, at compile
// time. Body, headers and timings stay on the host until read, and
// headers, timings and request become objects only when read.
const CONNECTION = ['proto', 'remote_ip', 'remote_port', 'tls_version', 'tls_cipher_suite'];
const TIMINGS = ['duration', 'blocked', 'connecting', 'tls_handshaking', 'sending', 'waiting', 'receiving'];

function own(target, name, value) {
  Object.defineProperty(target, name, { value, enumerable: true, writable: true, configurable: true });
  return value;
}

export class Response {
  #raw;

  constructor(raw) {
    this.status = raw[0];
    this.url = raw[1];
    this.error = raw[3];
    this.error_code = raw[4];
    this.#raw = raw;
  }

  get body() {
    const raw = this.#raw;
    if (raw[2] !== undefined) return own(this, 'body', raw[2]);
    return own(this, 'body', raw[10] ? H.bodyBytes(raw[9]) : H.body(raw[9]));
  }

  set body(value) {
    own(this, 'body', value);
  }

  get request() {
    return own(this, 'request', { method: this.#raw[7], url: this.#raw[8] });
  }

  set request(value) {
    own(this, 'request', value);
  }

  get headers() {
    const raw = this.#raw;
    const flat = raw[5] === undefined ? H.headers(raw[9]) : raw[5];
    const headers = {};
    for (let i = 0; i < flat.length; i += 2) headers[flat[i]] = flat[i + 1];
    return own(this, 'headers', headers);
  }

  set headers(value) {
    own(this, 'headers', value);
  }

  get status_text() {
    return own(this, 'status_text', H.statusText(this.status));
  }

  set status_text(value) {
    own(this, 'status_text', value);
  }

  // k6's `cookies`: the Set-Cookie headers of the response, by name.
  get cookies() {
    const raw = this.#raw;
    const flat = raw[5] === undefined ? H.headers(raw[9]) : raw[5];
    return own(this, 'cookies', more().responseCookies(flat));
  }

  set cookies(value) {
    own(this, 'cookies', value);
  }

  get timings() {
    const raw = this.#raw;
    const t = raw[6] === undefined ? H.timings(raw[9]) : raw[6];
    const timings = {};
    for (let i = 0; i < t.length; i++) timings[TIMINGS[i]] = t[i];
    return own(this, 'timings', timings);
  }

  set timings(value) {
    own(this, 'timings', value);
  }

  toJSON() {
    const { body, headers, timings, request, cookies } = this;
    return Object.assign({}, this, { body, headers, timings, request, cookies });
  }

  json(selector) {
    if (this.body === null || this.body === undefined) {
      throw new Error('the response has no body (responseType: none?)');
    }
    if (typeof this.body !== 'string') {
      throw new Error('the response body is binary (responseType: binary); json() needs a text body');
    }
    const value = JSON.parse(this.body);
    if (selector === undefined) return value;
    return more().select(value, String(selector));
  }

  // The body parsed as HTML (k6/html's Selection), narrowed by `selector`.
  html(selector) {
    if (typeof this.body !== 'string') {
      throw new Error('k6/http: Response.html() needs a text body (this response has responseType none or binary)');
    }
    const doc = H.importModule('k6/html').parseHTML(this.body, this.url);
    return selector === undefined ? doc : doc.find(selector);
  }

  // A form of this page filled in and submitted as a browser would.
  submitForm(options) {
    return more().submitForm(this, options, send);
  }

  // A link of this page followed.
  clickLink(options) {
    return more().clickLink(this, options, send);
  }

  // The connection that answered, read from the host when first asked:
  // `[proto, remote_ip, remote_port, tls_version, tls_cipher_suite]`,
  // empty for a request that got no response, as in k6.
  #connection() {
    const raw = this.#raw;
    if (raw[11] !== undefined) return raw[11];
    return (raw[11] = raw[9] === undefined ? ['', '', 0, '', ''] : H.connection(raw[9]));
  }

  static {
    CONNECTION.forEach((name, i) => Object.defineProperty(Response.prototype, name, {
      get() { return own(this, name, this.#connection()[i]); },
      set(value) { own(this, name, value); },
      configurable: true,
    }));
  }
}

// Response fields loadtest does not have yet fail by name when read.
Object.defineProperty(Response.prototype, 'ocsp', {
  get() { throw new Error('k6/http: response.ocsp is not supported yet'); },
  set(value) { own(this, 'ocsp', value); },
  configurable: true,
});

// k6's response callbacks: only what `expectedStatuses` returns (k6 takes
// no other), kept as its ranges, which the host judges every response by.
const RANGES = Symbol('expectedStatuses');
const DEFAULT_RANGES = [[200, 399]];
// The VU's callback, restored after a request that brought its own.
let current = DEFAULT_RANGES;

function statusRange(s, i) {
  const ok = (n) => Number.isInteger(n) && n >= 100 && n <= 999;
  if (ok(s)) return [s, s];
  if (s !== null && typeof s === 'object' && ok(s.min) && ok(s.max) && s.min <= s.max) return [s.min, s.max];
  throw new Error(`k6/http: expectedStatuses() argument ${i + 1} must be a status code or {min, max} with min <= max (100–999); got ${JSON.stringify(s)}`);
}

export function expectedStatuses(...statuses) {
  if (statuses.length === 0) throw new Error('k6/http: expectedStatuses() needs at least one status code or {min, max}');
  return Object.freeze({ [RANGES]: statuses.map(statusRange) });
}

function rangesOf(callback, where) {
  if (callback === null) return null;
  if (callback !== undefined && callback[RANGES]) return callback[RANGES];
  throw new Error(`k6/http: ${where} takes what http.expectedStatuses() returns, or null; a JavaScript function is not supported (k6 does not take one either)`);
}

export function setResponseCallback(callback) {
  current = rangesOf(callback, 'setResponseCallback()');
  H.expect(current);
}

// A request whose params bring a responseCallback is judged by it alone.
function withCallback(params, run) {
  H.expect(rangesOf(params.responseCallback, 'params.responseCallback'));
  try {
    return run();
  } finally {
    H.expect(current);
  }
}

// k6's `auth: 'digest'`: the challenge's 401 is expected on top of the
// request's own callback (or the VU's), as in k6.
function digestAuth(m, url, body, params) {
  const own = params.responseCallback === undefined
    ? current
    : rangesOf(params.responseCallback, 'params.responseCallback');
  const challenge = own === null ? null : expectedStatuses(...own.map(([min, max]) => ({ min, max })), 401);
  return more().digest(m, String(url), body, params, challenge, send);
}

// `m` is an upper-case method name.
function send(m, url, body, params) {
  if (params && params.auth === 'digest') return digestAuth(m, url, body, params);
  const [b, p] = encoded(body, params);
  const u = typeof url === 'string' ? url : String(url);
  if (p && p.responseCallback !== undefined) {
    return withCallback(p, () => new Response(H.send(m, u, b, p)));
  }
  return new Response(H.send(m, u, b, p));
}

// Requests without a body, the most frequent, in one frame.
function sendBare(m, url, params) {
  if (params && (params.responseCallback !== undefined || params.auth === 'digest')) return send(m, url, null, params);
  return new Response(H.send(m, typeof url === 'string' ? url : String(url), null, params));
}

export function request(method, url, body, params) {
  return send(String(method).toUpperCase(), url, body, params);
}

// k6's promise-returning request. Those made before the script next
// waits (an await, its return) go out together, in parallel as
// `http.batch` sends them, when it does: `Promise.all` over them has them
// in flight at once. One with its own responseCallback, or with digest
// auth (two requests in turn), goes out at once.
export function asyncRequest(method, url, body, params) {
  return new Promise((resolve, reject) => {
    const m = String(method).toUpperCase();
    if (params && (params.responseCallback !== undefined || params.auth === 'digest')) {
      resolve(send(m, url, body, params));
      return;
    }
    const u = typeof url === 'string' ? url : String(url);
    H.queue([m, u, ...encoded(body, params)], (raw) => resolve(new Response(raw)), reject);
  });
}

export const get = (url, params) => sendBare('GET', url, params);
export const head = (url, params) => sendBare('HEAD', url, params);
export const options = (url, body, params) => send('OPTIONS', url, body, params);
export const post = (url, body, params) => send('POST', url, body, params);
export const put = (url, body, params) => send('PUT', url, body, params);
export const patch = (url, body, params) => send('PATCH', url, body, params);
export const del = (url, body, params) => send('DELETE', url, body, params);

function batchItem(item) {
  if (typeof item === 'string') return ['GET', item, null, {}];
  if (Array.isArray(item)) {
    const [method, url, body, params] = item;
    return [String(method).toUpperCase(), String(url), body, params || {}];
  }
  return [String(item.method || 'GET').toUpperCase(), String(item.url), item.body, item.params || {}];
}

export function batch(requests) {
  const keys = Array.isArray(requests) ? null : Object.keys(requests);
  const list = keys === null ? requests : keys.map((k) => requests[k]);
  // A request's own responseCallback judges it alone, as in k6.
  const items = list.map(batchItem).map(([m, u, b, p]) => {
    const [body, params] = encoded(b, p);
    const own = params.responseCallback;
    return own === undefined ? [m, u, body, params]
      : [m, u, body, params, rangesOf(own, 'params.responseCallback')];
  });
  const out = H.batch(items).map((raw) => new Response(raw));
  if (keys === null) return out;
  const named = {};
  keys.forEach((k, i) => (named[k] = out[i]));
  return named;
}

export function url(strings, ...values) {
  return strings.reduce((acc, s, i) => acc + s + (i < values.length ? values[i] : ''), '');
}

// The VU's jar (each VU has one, emptied at each iteration's start unless
// `noCookiesReset`).
export function cookieJar() {
  return more().cookieJar();
}

// k6's `new http.CookieJar()`: a jar of the script's own, for requests
// whose params name it (`jar`). Unlike the VU's it is not emptied when an
// iteration starts; the host lets it go when this object is freed.
export class CookieJar {
  constructor() {
    const jar = H.newJar();
    Object.defineProperty(this, '__jar', { value: jar });
    more().jarMethods(this, jar);
  }
}

// k6's names for TLS versions, as `response.tls_version` gives them.
export const TLS_1_0 = 'tls1.0';
export const TLS_1_1 = 'tls1.1';
export const TLS_1_2 = 'tls1.2';
export const TLS_1_3 = 'tls1.3';

export default {
  request, asyncRequest, get, head, options, post, put, patch, del, batch, url, cookieJar,
  expectedStatuses, setResponseCallback, Response, file, CookieJar,
  TLS_1_0, TLS_1_1, TLS_1_2, TLS_1_3,
};
