// `k6/http` on the host's client: every request is timed and recorded by
// the host, with the VU's cookies, redirects and decoding.
const H = globalThis.__host;

function formEncode(obj) {
  return Object.keys(obj)
    .map((k) => encodeURIComponent(k) + '=' + encodeURIComponent(String(obj[k])))
    .join('&');
}

function bodyOf(body) {
  if (body === undefined || body === null) return null;
  if (typeof body === 'string') return body;
  if (body instanceof ArrayBuffer) throw new Error('k6/http: ArrayBuffer bodies are not supported yet; pass a string');
  return formEncode(body);
}

function withFormType(body, params) {
  if (body !== null && typeof body === 'object' && !(body instanceof ArrayBuffer)) {
    const headers = Object.assign({}, params.headers || {});
    const has = Object.keys(headers).some((k) => k.toLowerCase() === 'content-type');
    if (!has) headers['Content-Type'] = 'application/x-www-form-urlencoded';
    return Object.assign({}, params, { headers });
  }
  return params;
}

export class Response {
  constructor(raw, request) {
    Object.assign(this, raw);
    this.request = request;
  }

  json(selector) {
    if (this.body === null || this.body === undefined) {
      throw new Error('the response has no body (responseType: none?)');
    }
    const value = JSON.parse(this.body);
    if (selector === undefined) return value;
    return String(selector)
      .split('.')
      .filter((p) => p.length > 0)
      .reduce((v, key) => (v === undefined || v === null ? undefined : v[key]), value);
  }

  html() {
    throw new Error('k6/http: Response.html() is not supported by loadtest yet');
  }
}

export function request(method, url, body, params) {
  params = withFormType(body, params || {});
  const m = String(method).toUpperCase();
  const raw = H.send(m, String(url), bodyOf(body), params);
  return new Response(raw, { method: m, url: String(url) });
}

export const get = (url, params) => request('GET', url, null, params);
export const head = (url, params) => request('HEAD', url, null, params);
export const options = (url, body, params) => request('OPTIONS', url, body, params);
export const post = (url, body, params) => request('POST', url, body, params);
export const put = (url, body, params) => request('PUT', url, body, params);
export const patch = (url, body, params) => request('PATCH', url, body, params);
export const del = (url, body, params) => request('DELETE', url, body, params);

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
  const items = list.map(batchItem).map(([m, u, b, p]) => [m, u, bodyOf(b), withFormType(b, p)]);
  const raws = H.batch(items);
  const out = raws.map((raw, i) => new Response(raw, { method: items[i][0], url: items[i][1] }));
  if (keys === null) return out;
  const named = {};
  keys.forEach((k, i) => (named[k] = out[i]));
  return named;
}

export function url(strings, ...values) {
  return strings.reduce((acc, s, i) => acc + s + (i < values.length ? values[i] : ''), '');
}

export function expectedStatuses() {
  throw new Error('k6/http: expectedStatuses() is not supported by loadtest yet');
}

export function setResponseCallback() {
  throw new Error('k6/http: setResponseCallback() is not supported by loadtest yet');
}

export function cookieJar() {
  return {
    cookiesForURL: (u) => {
      const out = {};
      for (const [k, v] of H.cookies(String(u))) (out[k] = out[k] || []).push(v);
      return out;
    },
    set: (u, name, value) => H.setCookie(String(u), `${name}=${value}`),
    clear: () => H.clearCookies(),
  };
}

export default {
  request, get, head, options, post, put, patch, del, batch, url, cookieJar,
  expectedStatuses, setResponseCallback, Response,
};
