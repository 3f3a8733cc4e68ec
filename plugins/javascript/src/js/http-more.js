// The parts of `k6/http` few scripts use, loaded by it on first need:
// form bodies, json() selectors, response cookies, submitForm/clickLink
// and the cookie jar.
const H = globalThis.__host;

const FILE = Symbol.for('k6/http.file');

const isBinary = (body) => typeof body === 'object' && body !== null
  && Object.getPrototypeOf(body) !== Object.prototype
  && (body instanceof ArrayBuffer || ArrayBuffer.isView(body));

function formEncode(obj) {
  return Object.keys(obj)
    .map((k) => encodeURIComponent(k) + '=' + encodeURIComponent(String(obj[k])))
    .join('&');
}

// A form field as browsers send it (application/x-www-form-urlencoded).
const formPart = (s) => encodeURIComponent(s).replace(/%20/g, '+');

function withType(params, type) {
  const headers = Object.assign({}, (params && params.headers) || {});
  if (!Object.keys(headers).some((k) => k.toLowerCase() === 'content-type')) headers['Content-Type'] = type;
  return Object.assign({}, params, { headers });
}

function part(name, value) {
  if (value !== null && typeof value === 'object' && value[FILE]) return [name, value.data, value.filename, value.content_type];
  return [name, isBinary(value) ? value : String(value), null, null];
}

// An object body: multipart/form-data when one of its fields is an
// `http.file`, else a URL-encoded form; with the Content-Type it implies.
export function encodedForm(body, params) {
  const keys = Object.keys(body);
  if (keys.some((k) => body[k] !== null && typeof body[k] === 'object' && body[k][FILE])) {
    const [bytes, boundary] = H.multipart(keys.map((k) => part(k, body[k])));
    return [bytes, withType(params, `multipart/form-data; boundary=${boundary}`)];
  }
  return [formEncode(body), withType(params, 'application/x-www-form-urlencoded')];
}

// The Set-Cookie headers among a response's flat headers, by name.
export function responseCookies(flat) {
  const cookies = {};
  for (let i = 0; i < flat.length; i += 2) {
    if (flat[i].toLowerCase() !== 'set-cookie') continue;
    const c = setCookie(flat[i + 1]);
    if (c !== null) (cookies[c.name] ??= []).push(c);
  }
  return cookies;
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
export function select(value, selector) {
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

// Fills in and submits a form of `res`'s page as a browser would: the
// form's own fields, the submit button's name, then `fields` on top; to
// the form's action (resolved against the page's URL) with its method.
export function submitForm(res, { formSelector = 'form', fields = {}, submitSelector = '[type="submit"]', params } = {}, send) {
  const form = res.html(formSelector).first();
  if (form.size() === 0) {
    throw new Error(`k6/http: submitForm(): no element matches formSelector \`${formSelector}\` in the page from ${res.url}`);
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
  const action = H.resolveUrl(res.url, form.attr('action') || res.url);
  if (method === 'GET') {
    const bare = action.split('#')[0].split('?')[0];
    return send('GET', data ? `${bare}?${data}` : bare, null, params);
  }
  return send(method, action, data, withType(params, 'application/x-www-form-urlencoded'));
}

// Follows a link of `res`'s page: `selector`'s first match's href,
// resolved against the page's URL.
export function clickLink(res, { selector = 'a[href]', params } = {}, send) {
  const link = res.html(selector).first();
  const href = link.attr('href');
  if (href === undefined) {
    throw new Error(`k6/http: clickLink(): no element with an href matches selector \`${selector}\` in the page from ${res.url}`);
  }
  return send('GET', H.resolveUrl(res.url, href), null, params);
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
// `noCookiesReset`).
export function cookieJar() {
  return jarMethods({}, undefined);
}

// k6's CookieJar methods on `target`, over the VU's jar (`jar`
// undefined) or one of the script's own. A cookie is taken off by
// storing it expired.
export function jarMethods(target, jar) {
  const own = jar !== undefined;
  const get = (u) => (own ? H.jarCookies(jar, u) : H.cookies(u));
  const put = (u, text) => (own ? H.jarSet(jar, u, text) : H.setCookie(u, text));
  const cookiesForURL = (u) => {
    const out = {};
    for (const [k, v] of get(String(u))) (out[k] = out[k] || []).push(v);
    return out;
  };
  const drop = (u, name) => put(String(u), `${name}=; Max-Age=0`);
  const methods = {
    cookiesForURL,
    set: (u, name, value, options) => {
      if (!put(String(u), setCookieText(name, value, options))) {
        throw new Error(`k6/http: jar.set(): the cookie \`${name}\` cannot be stored for ${u}`);
      }
    },
    delete: (u, name) => drop(u, name),
    clear: (u) => {
      if (u === undefined) return own ? H.jarClear(jar) : H.clearCookies();
      for (const name of Object.keys(cookiesForURL(u))) drop(u, name);
    },
  };
  for (const [name, value] of Object.entries(methods)) {
    Object.defineProperty(target, name, { value, writable: true, configurable: true });
  }
  return target;
}

// k6's `auth: 'digest'` (RFC 7616: MD5 or SHA-256, their -sess forms,
// qop auth or none): the request goes out without credentials, and a 401
// with a Digest challenge is answered once with them, from the URL's
// `user:pass@`. `challenge` judges the first response.
export function digest(m, url, body, params, challenge, send) {
  const at = /^([a-z][a-z0-9+.-]*:\/\/)([^@/?#]*)@/i.exec(url);
  if (!at) {
    throw new Error("k6/http: auth: 'digest' takes the credentials from the URL (http://user:pass@host/path), and this URL has none");
  }
  const bare = at[1] + url.slice(at[0].length);
  const colon = at[2].indexOf(':');
  const user = decodeURIComponent(colon < 0 ? at[2] : at[2].slice(0, colon));
  const pass = colon < 0 ? '' : decodeURIComponent(at[2].slice(colon + 1));
  const plain = Object.assign({}, params, { auth: undefined });
  const first = send(m, bare, body, Object.assign({}, plain, { responseCallback: challenge }));
  const header = first.status === 401 ? headerOf(first.headers, 'www-authenticate') : undefined;
  if (header === undefined || !/^\s*digest\s/i.test(header)) return first;
  const authorization = digestAnswer(parseChallenge(header), m, bare, user, pass);
  const headers = Object.assign({}, plain.headers, { Authorization: authorization });
  return send(m, bare, body, Object.assign({}, plain, { headers }));
}

function headerOf(headers, lower) {
  for (const name of Object.keys(headers)) if (name.toLowerCase() === lower) return headers[name];
  return undefined;
}

// `Digest realm="x", qop="auth,auth-int", nonce="n"` as { realm, qop, nonce }.
function parseChallenge(header) {
  const out = {};
  const re = /([a-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))/gi;
  for (const m of header.replace(/^\s*digest\s+/i, '').matchAll(re)) {
    out[m[1].toLowerCase()] = m[2] !== undefined ? m[2].replace(/\\(.)/g, '$1') : m[3];
  }
  return out;
}

const DIGESTS = { 'md5': 'md5', 'md5-sess': 'md5', 'sha-256': 'sha256', 'sha-256-sess': 'sha256' };

function digestAnswer(c, method, url, user, pass) {
  const algorithm = c.algorithm || 'MD5';
  const hash = DIGESTS[algorithm.toLowerCase()];
  if (hash === undefined) throw new Error(`k6/http: auth: 'digest' with algorithm ${algorithm} is not supported (MD5, MD5-sess, SHA-256, SHA-256-sess)`);
  const h = (text) => H.hash(hash, [text], 'hex');
  const qops = (c.qop || '').split(',').map((q) => q.trim());
  if (c.qop && !qops.includes('auth')) throw new Error(`k6/http: auth: 'digest' with qop ${c.qop} is not supported (auth)`);
  const qop = qops.includes('auth') ? 'auth' : '';
  const uri = url.replace(/^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i, '').replace(/#.*/, '') || '/';
  const cnonce = h(String(Math.random())).slice(0, 16);
  const nc = '00000001';
  let ha1 = h(`${user}:${c.realm}:${pass}`);
  if (algorithm.toLowerCase().endsWith('-sess')) ha1 = h(`${ha1}:${c.nonce}:${cnonce}`);
  const ha2 = h(`${method}:${uri}`);
  const response = qop ? h(`${ha1}:${c.nonce}:${nc}:${cnonce}:${qop}:${ha2}`) : h(`${ha1}:${c.nonce}:${ha2}`);
  let text = `Digest username="${user}", realm="${c.realm}", nonce="${c.nonce}", uri="${uri}", algorithm=${algorithm}, response="${response}"`;
  if (c.opaque !== undefined) text += `, opaque="${c.opaque}"`;
  if (qop) text += `, qop=${qop}, nc=${nc}, cnonce="${cnonce}"`;
  return text;
}
