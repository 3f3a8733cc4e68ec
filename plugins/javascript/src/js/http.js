// `k6/http` on the host's client: every request is timed and recorded by
// the host, with the VU's cookies, redirects and decoding.
const H = globalThis.__host;

function formEncode(obj) {
  return Object.keys(obj)
    .map((k) => encodeURIComponent(k) + '=' + encodeURIComponent(String(obj[k])))
    .join('&');
}

// A form field as browsers send it (application/x-www-form-urlencoded).
const formPart = (s) => encodeURIComponent(s).replace(/%20/g, '+');

// Bytes travel as they are: an ArrayBuffer, or a typed array or DataView
// (the part of its buffer it shows). A plain object (a form) is not
// bytes: asking `ArrayBuffer` about it would make the typed arrays
// (intrinsics.rs) for nothing.
const isBinary = (body) => typeof body === 'object' && body !== null
  && Object.getPrototypeOf(body) !== Object.prototype
  && (body instanceof ArrayBuffer || ArrayBuffer.isView(body));

const FILE = Symbol('http.file');

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

function withType(params, type) {
  const headers = Object.assign({}, (params && params.headers) || {});
  if (!Object.keys(headers).some((k) => k.toLowerCase() === 'content-type')) headers['Content-Type'] = type;
  return Object.assign({}, params, { headers });
}

function part(name, value) {
  if (value !== null && typeof value === 'object' && value[FILE]) return [name, value.data, value.filename, value.content_type];
  return [name, isBinary(value) ? value : String(value), null, null];
}

// A request's body as the host takes it (a string or bytes), and the
// params with the Content-Type an object body implies: a form, or
// multipart/form-data when one of its fields is an `http.file`.
function encoded(body, params) {
  if (body === undefined || body === null) return [null, params];
  if (typeof body === 'string' || isBinary(body)) return [body, params];
  const keys = Object.keys(body);
  if (keys.some((k) => body[k] !== null && typeof body[k] === 'object' && body[k][FILE])) {
    const [bytes, boundary] = H.multipart(keys.map((k) => part(k, body[k])));
    return [bytes, withType(params, `multipart/form-data; boundary=${boundary}`)];
  }
  return [formEncode(body), withType(params, 'application/x-www-form-urlencoded')];
}

// A response arrives from the host as one array (status, url, body,
// error, error_code, headers as [name, value, ...], timings as seven
// numbers, the request's method and url, and the handle of what the host
// still holds): property names written here are resolved once, at compile
// time. Body, headers and timings stay on the host until read, and
// headers, timings and request become objects only when read.
const TIMINGS = ['duration', 'blocked', 'connecting', 'tls_handshaking', 'sending', 'waiting', 'receiving'];

function own(target, name, value) {
  Object.defineProperty(target, name, { value, enumerable: true, writable: true, configurable: true });
  return value;
}

// One Set-Cookie header as k6 gives it: `expires` in ms since the epoch
// and `max_age` in seconds, 0 when absent.
function setCookie(header) {
  const [pair, ...attrs] = header.split(';');
  const eq = pair.indexOf('=');
  if (eq <= 0) return null;
  const c = {
    name: pair.slice(0, eq).trim(), value: pair.slice(eq + 1).trim().replace(/^"(.*)"$/, '$1'),
    domain: '', path: '', http_only: false, secure: false, max_age: 0, expires: 0,
  };
  for (const attr of attrs) {
    const at = attr.indexOf('=');
    const key = (at < 0 ? attr : attr.slice(0, at)).trim().toLowerCase();
    const value = at < 0 ? '' : attr.slice(at + 1).trim();
    if (key === 'domain') c.domain = value.replace(/^\./, '');
    else if (key === 'path') c.path = value;
    else if (key === 'httponly') c.http_only = true;
    else if (key === 'secure') c.secure = true;
    else if (key === 'max-age') c.max_age = Number.parseInt(value, 10) || 0;
    else if (key === 'expires') c.expires = Date.parse(value) || 0;
  }
  return c;
}

// k6's `json(selector)` paths (gjson's syntax): `a.b`, `list.0`, `list.#`
// (its length), `list.#.name` (each element's), `list.#(age>40).name`
// (the first match; `#(...)#` every match), `*` and `?` in keys, `\.`
// for a dot in a key. No match is undefined.
function select(value, selector) {
  const parts = pathParts(selector);
  if (parts.some((p) => p.startsWith('@') || /(^|[^\\])\|/.test(p))) {
    throw new Error(`json(): modifiers (@) and pipes (|) in the selector \`${selector}\` are not supported yet`);
  }
  return walk(value, parts, 0);
}

// Splits on dots outside escapes and `#(...)`.
function pathParts(path) {
  const parts = [];
  let cur = '';
  let depth = 0;
  for (let i = 0; i < path.length; i++) {
    const c = path[i];
    if (c === '\\' && i + 1 < path.length) {
      cur += c + path[++i];
      continue;
    }
    if (c === '(') depth++;
    else if (c === ')') depth--;
    if (c === '.' && depth === 0) {
      parts.push(cur);
      cur = '';
    } else {
      cur += c;
    }
  }
  parts.push(cur);
  return parts;
}

function walk(v, parts, i) {
  if (i === parts.length) return v;
  if (v === null || typeof v !== 'object') return undefined;
  const p = parts[i];
  if (p === '#') {
    if (!Array.isArray(v)) return undefined;
    if (i + 1 === parts.length) return v.length;
    return v.map((e) => walk(e, parts, i + 1)).filter((x) => x !== undefined);
  }
  if (p.startsWith('#(')) {
    if (!Array.isArray(v)) return undefined;
    const every = p.endsWith(')#');
    const test = condition(p.slice(2, every ? -2 : -1));
    if (every) return v.filter(test).map((e) => walk(e, parts, i + 1)).filter((x) => x !== undefined);
    const hit = v.find(test);
    return hit === undefined ? undefined : walk(hit, parts, i + 1);
  }
  const key = Array.isArray(v) ? p : keyOf(v, p);
  if (key === undefined || !Object.prototype.hasOwnProperty.call(v, key)) return undefined;
  return walk(v[key], parts, i + 1);
}

// An unescaped `*` or `?` makes the part a pattern: its first matching key.
function keyOf(obj, part) {
  if (!/(^|[^\\])[*?]/.test(part)) return part.replace(/\\(.)/g, '$1');
  const re = like(part);
  return Object.keys(obj).find((k) => re.test(k));
}

function like(pattern) {
  let src = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '\\' && i + 1 < pattern.length) src += pattern[++i].replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    else if (c === '*') src += '.*';
    else if (c === '?') src += '.';
    else src += c.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${src}$`, 's');
}

const OPERATORS = ['==', '!=', '<=', '>=', '!%', '<', '>', '%'];

// `[path, operator, value]` at the condition's top level (not inside a
// nested query or a quoted value), or null.
function operatorOf(text) {
  let depth = 0;
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '\\') i++;
      else if (c === '"') quoted = false;
      continue;
    }
    if (c === '"') quoted = true;
    else if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (depth === 0) {
      const op = OPERATORS.find((o) => text.startsWith(o, i));
      if (op !== undefined) return [text.slice(0, i), op, text.slice(i + op.length)];
    }
  }
  return null;
}

// A query's condition: `path op value` (==, !=, <, <=, >, >=, % and !%
// for a pattern), or a bare path that must exist.
function condition(text) {
  const m = operatorOf(text);
  if (m === null) {
    const path = pathParts(text.trim());
    return (e) => walk(e, path, 0) !== undefined;
  }
  const lhs = m[0].trim();
  const path = lhs === '' ? [] : pathParts(lhs);
  const raw = m[2].trim();
  let want;
  try {
    want = JSON.parse(raw);
  } catch {
    throw new Error(`json(): \`${raw}\` in the query \`#(${text})\` is not a value (a "string", a number, true, false or null)`);
  }
  const test = {
    '==': (x) => x === want,
    '!=': (x) => x !== want,
    '<': (x) => x < want,
    '<=': (x) => x <= want,
    '>': (x) => x > want,
    '>=': (x) => x >= want,
    '%': (x) => typeof x === 'string' && like(String(want)).test(x),
    '!%': (x) => typeof x === 'string' && !like(String(want)).test(x),
  }[m[1]];
  return (e) => {
    const x = walk(e, path, 0);
    return x !== undefined && test(x);
  };
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
    const cookies = {};
    for (let i = 0; i < flat.length; i += 2) {
      if (flat[i].toLowerCase() !== 'set-cookie') continue;
      const c = setCookie(flat[i + 1]);
      if (c !== null) (cookies[c.name] ??= []).push(c);
    }
    return own(this, 'cookies', cookies);
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
    return select(value, String(selector));
  }

  // The body parsed as HTML (k6/html's Selection), narrowed by `selector`.
  html(selector) {
    if (typeof this.body !== 'string') {
      throw new Error('k6/http: Response.html() needs a text body (this response has responseType none or binary)');
    }
    const doc = H.importModule('k6/html').parseHTML(this.body, this.url);
    return selector === undefined ? doc : doc.find(selector);
  }

  // Fills in and submits a form of this page as a browser would: the
  // form's own fields, the submit button's name, then `fields` on top; to
  // the form's action (resolved against this response's URL) with its
  // method.
  submitForm({ formSelector = 'form', fields = {}, submitSelector = '[type="submit"]', params } = {}) {
    const form = this.html(formSelector).first();
    if (form.size() === 0) {
      throw new Error(`k6/http: submitForm(): no element matches formSelector \`${formSelector}\` in the page from ${this.url}`);
    }
    const given = (name) => Object.prototype.hasOwnProperty.call(fields, name);
    const pairs = form.serializeArray().filter(({ name }) => !given(name));
    const submit = form.find(submitSelector).first();
    const button = submit.attr('name');
    if (button && !given(button)) pairs.push({ name: button, value: submit.attr('value') ?? '' });
    for (const [name, value] of Object.entries(fields)) {
      for (const v of Array.isArray(value) ? value : [value]) pairs.push({ name, value: String(v) });
    }
    const data = pairs.map(({ name, value }) => `${formPart(name)}=${formPart(value)}`).join('&');
    const method = (form.attr('method') || 'GET').toUpperCase();
    const action = H.resolveUrl(this.url, form.attr('action') || this.url);
    if (method === 'GET') {
      const bare = action.split('#')[0].split('?')[0];
      return send('GET', data ? `${bare}?${data}` : bare, null, params);
    }
    return send(method, action, data, withType(params, 'application/x-www-form-urlencoded'));
  }

  // Follows a link of this page: `selector`'s first match's href,
  // resolved against this response's URL.
  clickLink({ selector = 'a[href]', params } = {}) {
    const link = this.html(selector).first();
    const href = link.attr('href');
    if (href === undefined) {
      throw new Error(`k6/http: clickLink(): no element with an href matches selector \`${selector}\` in the page from ${this.url}`);
    }
    return send('GET', H.resolveUrl(this.url, href), null, params);
  }
}

// Response fields loadtest does not have yet fail by name when read.
for (const name of ['proto', 'remote_ip', 'remote_port', 'tls_version', 'tls_cipher_suite', 'ocsp']) {
  Object.defineProperty(Response.prototype, name, {
    get() { throw new Error(`k6/http: response.${name} is not supported yet`); },
    set(value) { own(this, name, value); },
    configurable: true,
  });
}

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

// `m` is an upper-case method name.
function send(m, url, body, params) {
  const [b, p] = encoded(body, params);
  const u = typeof url === 'string' ? url : String(url);
  if (p && p.responseCallback !== undefined) {
    return withCallback(p, () => new Response(H.send(m, u, b, p)));
  }
  return new Response(H.send(m, u, b, p));
}

// Requests without a body, the most frequent, in one frame.
function sendBare(m, url, params) {
  if (params && params.responseCallback !== undefined) return send(m, url, null, params);
  return new Response(H.send(m, typeof url === 'string' ? url : String(url), null, params));
}

export function request(method, url, body, params) {
  return send(String(method).toUpperCase(), url, body, params);
}

// k6's promise-returning request. Those made before the script next
// waits (an await, its return) go out together, in parallel as
// `http.batch` sends them, when it does: `Promise.all` over them has them
// in flight at once. One with its own responseCallback goes out at once.
export function asyncRequest(method, url, body, params) {
  return new Promise((resolve, reject) => {
    const m = String(method).toUpperCase();
    if (params && params.responseCallback !== undefined) {
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

// A Set-Cookie value from k6's `jar.set()` options.
function setCookieText(name, value, o) {
  let text = `${name}=${value}`;
  if (o === undefined || o === null) return text;
  if (o.domain) text += `; Domain=${o.domain}`;
  if (o.path) text += `; Path=${o.path}`;
  if (o.expires) text += `; Expires=${new Date(o.expires).toUTCString()}`;
  if (o.max_age) text += `; Max-Age=${Number(o.max_age)}`;
  if (o.secure) text += '; Secure';
  if (o.http_only) text += '; HttpOnly';
  return text;
}

// The VU's jar (each VU has one, emptied at each iteration's start unless
// `noCookiesReset`). A cookie is taken off by storing it expired.
export function cookieJar() {
  const cookiesForURL = (u) => {
    const out = {};
    for (const [k, v] of H.cookies(String(u))) (out[k] = out[k] || []).push(v);
    return out;
  };
  const drop = (u, name) => H.setCookie(String(u), `${name}=; Max-Age=0`);
  return {
    cookiesForURL,
    set: (u, name, value, options) => {
      if (!H.setCookie(String(u), setCookieText(name, value, options))) {
        throw new Error(`k6/http: jar.set(): the cookie \`${name}\` cannot be stored for ${u}`);
      }
    },
    delete: (u, name) => drop(u, name),
    clear: (u) => {
      if (u === undefined) return H.clearCookies();
      for (const name of Object.keys(cookiesForURL(u))) drop(u, name);
    },
  };
}

// k6's `new http.CookieJar()`: a jar of its own, which loadtest does not
// offer yet (each VU has one, `http.cookieJar()`).
export class CookieJar {
  constructor() {
    throw new Error('k6/http: new http.CookieJar() is not supported yet; each VU has one jar, http.cookieJar()');
  }
}

export default {
  request, asyncRequest, get, head, options, post, put, patch, del, batch, url, cookieJar,
  expectedStatuses, setResponseCallback, Response, file, CookieJar,
};
