// `k6/html`: jQuery-style selections over a page parsed by the host-side
// natives (html.rs). A selection is a document and a list of node numbers
// (document order); this file only shapes what k6 scripts call.
const H = globalThis.__host.htmlNatives();

const REVERSED = new Set(['parents', 'prevAll']);

function nodesOf(doc, arg, what) {
  if (arg instanceof Selection) return arg.nodes;
  if (arg instanceof Element) return [arg.node];
  throw new TypeError(`k6/html: ${what} takes a selector string, a Selection or an Element, not ${typeof arg}`);
}

function sameDoc(doc, arg) {
  if ((arg instanceof Selection || arg instanceof Element) && arg.doc !== doc) {
    throw new Error('k6/html: a Selection or Element from another document cannot be mixed with this one');
  }
}

// Node numbers without repeats, in document order.
const ordered = (nodes) => [...new Set(nodes)].sort((x, y) => x - y);
const union = (a, b) => ordered([...a, ...b]);

function jsonish(v) {
  if (v === undefined) return undefined;
  if (/^(true|false|null)$|^-?\d+(\.\d+)?([eE][+-]?\d+)?$|^[[{]/.test(v)) {
    try {
      return JSON.parse(v);
    } catch (_) {
      return v;
    }
  }
  return v;
}

const camel = (s) => s.replace(/-([a-z])/g, (_, c) => c.toUpperCase());

export class Selection {
  constructor(doc, nodes, url) {
    this.doc = doc;
    this.nodes = nodes;
    this.url = url;
  }

  get length() {
    return this.nodes.length;
  }

  // A selection made from this one; `end()` goes back to this.
  _with(nodes) {
    const s = new Selection(this.doc, nodes, this.url);
    s._end = this;
    return s;
  }

  // The selection before the last filtering or traversal, as jQuery's.
  end() {
    return this._end || new Selection(this.doc, [], this.url);
  }

  // No argument: the first node's place among its element siblings. A
  // selector: its place among the nodes the selector matches in the
  // document. A Selection or Element: where its (first) node is in this
  // selection. -1 when not found, as k6's.
  index(arg) {
    if (arg === undefined) {
      return this.nodes.length === 0 ? -1 : H.walk(this.doc, [this.nodes[0]], 'prevAll').length;
    }
    if (typeof arg === 'string') {
      return this.nodes.length === 0 ? -1 : H.find(this.doc, [0], arg).indexOf(this.nodes[0]);
    }
    sameDoc(this.doc, arg);
    const [node] = nodesOf(this.doc, arg, 'index()');
    return node === undefined ? -1 : this.nodes.indexOf(node);
  }

  _walk(how, filter) {
    let nodes = H.walk(this.doc, this.nodes, how);
    if (filter !== undefined && filter !== null) nodes = H.filter(this.doc, nodes, String(filter));
    if (REVERSED.has(how)) nodes.reverse();
    return this._with(nodes);
  }

  _until(how, until, filter) {
    const out = [];
    for (const n of this.nodes) {
      let steps = H.walk(this.doc, [n], how);
      if (REVERSED.has(how)) steps.reverse();
      const stop = until === undefined || until === null ? [] : this._match(steps, until);
      for (const s of steps) {
        if (stop.includes(s)) break;
        out.push(s);
      }
    }
    let nodes = ordered(out);
    if (filter !== undefined && filter !== null) nodes = H.filter(this.doc, nodes, String(filter));
    if (REVERSED.has(how)) nodes.reverse();
    return this._with(nodes);
  }

  // The nodes of `nodes` that `arg` picks: a selector, a Selection, an
  // Element, or a function(index, Selection) returning true.
  _match(nodes, arg) {
    if (typeof arg === 'string') return H.filter(this.doc, nodes, arg);
    if (typeof arg === 'function') {
      return nodes.filter((n, i) => arg.call(this._with([n]), i, this._with([n])));
    }
    sameDoc(this.doc, arg);
    const picked = new Set(nodesOf(this.doc, arg, 'a filter'));
    return nodes.filter((n) => picked.has(n));
  }

  size() {
    return this.nodes.length;
  }

  find(arg) {
    if (typeof arg === 'string') return this._with(H.find(this.doc, this.nodes, arg));
    sameDoc(this.doc, arg);
    const within = new Set(H.find(this.doc, this.nodes, '*'));
    return this._with(nodesOf(this.doc, arg, 'find()').filter((n) => within.has(n)));
  }

  filter(arg) {
    return this._with(this._match(this.nodes, arg));
  }

  not(arg) {
    const out = new Set(this._match(this.nodes, arg));
    return this._with(this.nodes.filter((n) => !out.has(n)));
  }

  is(arg) {
    return this._match(this.nodes, arg).length > 0;
  }

  has(arg) {
    return this._with(this.nodes.filter((n) => this._with([n]).find(arg).size() > 0));
  }

  add(arg) {
    if (typeof arg === 'string') return this._with(union(this.nodes, H.find(this.doc, [0], arg)));
    sameDoc(this.doc, arg);
    return this._with(union(this.nodes, nodesOf(this.doc, arg, 'add()')));
  }

  closest(sel) {
    const out = [];
    for (const n of this.nodes) {
      const line = [n, ...H.walk(this.doc, [n], 'parents').reverse()];
      const hit = line.find((m) => this._match([m], sel).length > 0);
      if (hit !== undefined) out.push(hit);
    }
    return this._with(ordered(out));
  }

  children(sel) {
    return this._walk('children', sel);
  }

  contents() {
    return this._walk('contents');
  }

  parent(sel) {
    return this._walk('parent', sel);
  }

  parents(sel) {
    return this._walk('parents', sel);
  }

  parentsUntil(until, filter) {
    return this._until('parents', until, filter);
  }

  next(sel) {
    return this._walk('next', sel);
  }

  nextAll(sel) {
    return this._walk('nextAll', sel);
  }

  nextUntil(until, filter) {
    return this._until('nextAll', until, filter);
  }

  prev(sel) {
    return this._walk('prev', sel);
  }

  prevAll(sel) {
    return this._walk('prevAll', sel);
  }

  prevUntil(until, filter) {
    return this._until('prevAll', until, filter);
  }

  siblings(sel) {
    return this._walk('siblings', sel);
  }

  eq(i) {
    const at = i < 0 ? this.nodes.length + i : i;
    return this._with(at >= 0 && at < this.nodes.length ? [this.nodes[at]] : []);
  }

  first() {
    return this.eq(0);
  }

  last() {
    return this.eq(-1);
  }

  slice(start, end) {
    return this._with(this.nodes.slice(start, end));
  }

  get(i) {
    if (i === undefined) return this.nodes.map((n) => new Element(this.doc, n, this.url));
    const at = i < 0 ? this.nodes.length + i : i;
    const n = this.nodes[at];
    return n === undefined ? undefined : new Element(this.doc, n, this.url);
  }

  toArray() {
    return this.nodes.map((n) => this._with([n]));
  }

  each(fn) {
    if (typeof fn !== 'function') throw new TypeError('k6/html: each() takes a function(index, element)');
    // k6 hands each() an Element (and map() a Selection).
    this.nodes.forEach((n, i) => fn(i, new Element(this.doc, n, this.url)));
    return this;
  }

  // As in k6 (goquery): each element comes as a Selection of its own,
  // and every value returned is kept as it is.
  map(fn) {
    if (typeof fn !== 'function') throw new TypeError('k6/html: map() takes a function(index, selection)');
    return this.nodes.map((n, i) => fn(i, this._with([n])));
  }

  text() {
    return H.text(this.doc, this.nodes);
  }

  html() {
    return this.nodes.length === 0 ? undefined : H.inner(this.doc, this.nodes[0]);
  }

  attr(name, fallback) {
    const v = this.nodes.length === 0 ? undefined : H.attr(this.doc, this.nodes[0], String(name));
    return v === undefined ? fallback : v;
  }

  data(key) {
    if (this.nodes.length === 0) return undefined;
    const flat = H.attrs(this.doc, this.nodes[0]);
    const all = {};
    for (let i = 0; i < flat.length; i += 2) {
      if (flat[i].startsWith('data-')) all[camel(flat[i].slice(5))] = jsonish(flat[i + 1]);
    }
    return key === undefined ? all : all[camel(String(key))];
  }

  val() {
    if (this.nodes.length === 0) return undefined;
    return fieldValue(this.doc, this.nodes[0]);
  }

  serializeArray() {
    const fields = [];
    for (const n of formFields(this)) {
      const name = H.attr(this.doc, n, 'name');
      const v = fieldValue(this.doc, n);
      for (const value of Array.isArray(v) ? v : [v]) fields.push({ name, value });
    }
    return fields;
  }

  serializeObject() {
    const out = {};
    for (const { name, value } of this.serializeArray()) {
      if (!(name in out)) out[name] = value;
      else if (Array.isArray(out[name])) out[name].push(value);
      else out[name] = [out[name], value];
    }
    return out;
  }

  serialize() {
    return this.serializeArray()
      .map(({ name, value }) => `${formEncode(name)}=${formEncode(value)}`)
      .join('&');
  }
}

const formEncode = (s) => encodeURIComponent(s).replace(/%20/g, '+');

const kindOf = (doc, n) => H.kind(doc, n);
const tagOf = (doc, n) => kindOf(doc, n)[1];

// What a browser would submit from the selection: its own fields and
// those inside it, named, enabled, checked where that applies; not
// buttons, files or images (jQuery's `serializeArray` rules).
function formFields(sel) {
  const CONTROLS = 'input,select,textarea';
  const own = H.filter(sel.doc, sel.nodes, CONTROLS);
  const inside = H.find(sel.doc, sel.nodes, CONTROLS);
  return union(own, inside).filter((n) => {
    const attr = (a) => H.attr(sel.doc, n, a);
    if (!attr('name') || attr('disabled') !== undefined) return false;
    const type = (attr('type') || '').toLowerCase();
    if (['submit', 'button', 'image', 'reset', 'file'].includes(type)) return false;
    if ((type === 'checkbox' || type === 'radio') && attr('checked') === undefined) return false;
    return true;
  });
}

function fieldValue(doc, n) {
  const attr = (a) => H.attr(doc, n, a);
  switch (tagOf(doc, n)) {
    case 'input': {
      const v = attr('value');
      if (v !== undefined) return v;
      const type = (attr('type') || '').toLowerCase();
      return type === 'checkbox' || type === 'radio' ? 'on' : '';
    }
    case 'button':
      return attr('value') ?? '';
    case 'textarea':
      return H.text(doc, [n]);
    case 'option':
      return attr('value') ?? H.text(doc, [n]);
    case 'select': {
      const options = H.find(doc, [n], 'option');
      const chosen = H.filter(doc, options, 'option[selected]');
      const value = (o) => H.attr(doc, o, 'value') ?? H.text(doc, [o]);
      if (attr('multiple') !== undefined) return chosen.map(value);
      const pick = chosen.length > 0 ? chosen[0] : options[0];
      return pick === undefined ? '' : value(pick);
    }
    default:
      return undefined;
  }
}

// A DOM node, with k6's Element methods (values are read by calling them).
export class Element {
  constructor(doc, node, url) {
    this.doc = doc;
    this.node = node;
    this.url = url;
  }

  _one(nodes) {
    return nodes.length === 0 ? undefined : new Element(this.doc, nodes[0], this.url);
  }

  _all(nodes) {
    return nodes.map((n) => new Element(this.doc, n, this.url));
  }

  selection() {
    return new Selection(this.doc, [this.node], this.url);
  }

  nodeType() {
    return kindOf(this.doc, this.node)[0];
  }

  nodeName() {
    const [type, name] = kindOf(this.doc, this.node);
    return type === 1 ? name.toUpperCase() : name;
  }

  nodeValue() {
    const type = this.nodeType();
    return type === 3 || type === 8 ? H.inner(this.doc, this.node) : null;
  }

  textContent() {
    return H.text(this.doc, [this.node]);
  }

  innerHTML() {
    return H.inner(this.doc, this.node);
  }

  outerHTML() {
    return H.outer(this.doc, this.node);
  }

  getAttribute(name) {
    return H.attr(this.doc, this.node, String(name));
  }

  hasAttribute(name) {
    return this.getAttribute(name) !== undefined;
  }

  hasAttributes() {
    return H.attrs(this.doc, this.node).length > 0;
  }

  attributes() {
    const flat = H.attrs(this.doc, this.node);
    const out = {};
    for (let i = 0; i < flat.length; i += 2) {
      out[flat[i]] = { name: flat[i], localName: flat[i], value: flat[i + 1], prefix: '', namespaceURI: '' };
    }
    return out;
  }

  id() {
    return this.getAttribute('id') ?? '';
  }

  className() {
    return this.getAttribute('class') ?? '';
  }

  classList() {
    return this.className().split(/\s+/).filter((c) => c.length > 0);
  }

  lang() {
    return this.getAttribute('lang') ?? '';
  }

  // Attributes k6 gives their own getters on the elements that have them.
  name() {
    return this.getAttribute('name') ?? '';
  }

  type() {
    return (this.getAttribute('type') ?? '').toLowerCase();
  }

  value() {
    return fieldValue(this.doc, this.node);
  }

  // URLs as k6 gives them: resolved against the page's URL when the
  // selection came from a response (`Response.html()`).
  _url(name) {
    const v = this.getAttribute(name);
    if (v === undefined) return '';
    return this.url ? H.resolve(this.url, v) : v;
  }

  href() {
    return this._url('href');
  }

  src() {
    return this._url('src');
  }

  action() {
    return this._url('action');
  }

  method() {
    return (this.getAttribute('method') ?? 'get').toLowerCase();
  }

  checked() {
    return this.hasAttribute('checked');
  }

  selected() {
    return this.hasAttribute('selected');
  }

  disabled() {
    return this.hasAttribute('disabled');
  }

  text() {
    return this.textContent();
  }

  childNodes() {
    return this._all(H.walk(this.doc, [this.node], 'contents'));
  }

  children() {
    return this._all(H.walk(this.doc, [this.node], 'children'));
  }

  childElementCount() {
    return H.walk(this.doc, [this.node], 'children').length;
  }

  hasChildNodes() {
    return H.walk(this.doc, [this.node], 'contents').length > 0;
  }

  firstChild() {
    return this._one(H.walk(this.doc, [this.node], 'contents'));
  }

  lastChild() {
    return this._one(H.walk(this.doc, [this.node], 'contents').reverse());
  }

  firstElementChild() {
    return this._one(H.walk(this.doc, [this.node], 'children'));
  }

  lastElementChild() {
    return this._one(H.walk(this.doc, [this.node], 'children').reverse());
  }

  nextElementSibling() {
    return this._one(H.walk(this.doc, [this.node], 'next'));
  }

  previousElementSibling() {
    return this._one(H.walk(this.doc, [this.node], 'prev'));
  }

  parentElement() {
    return this._one(H.walk(this.doc, [this.node], 'parent'));
  }

  parentNode() {
    return this.parentElement();
  }

  matches(sel) {
    return H.filter(this.doc, [this.node], String(sel)).length > 0;
  }

  contains(other) {
    return other instanceof Element && H.find(this.doc, [this.node], '*').includes(other.node);
  }

  isSameNode(other) {
    return other instanceof Element && other.doc === this.doc && other.node === this.node;
  }

  querySelector(sel) {
    return this._one(H.find(this.doc, [this.node], String(sel)));
  }

  querySelectorAll(sel) {
    return this._all(H.find(this.doc, [this.node], String(sel)));
  }

  getElementsByTagName(tag) {
    return this.querySelectorAll(String(tag));
  }

  getElementsByClassName(names) {
    const sel = String(names).split(/\s+/).filter((c) => c).map((c) => `.${CSS_ESCAPE(c)}`).join('');
    return sel ? this.querySelectorAll(sel) : [];
  }

  toString() {
    return `[object ${this.nodeName()}]`;
  }
}

const CSS_ESCAPE = (s) => s.replace(/[^a-zA-Z0-9_-]/g, (c) => `\\${c.codePointAt(0).toString(16)} `);

export function parseHTML(src, url) {
  if (typeof src !== 'string') {
    throw new TypeError(`k6/html: parseHTML() takes the page as a string, not ${src === null ? 'null' : typeof src}`);
  }
  return new Selection(H.parse(src), [0], url);
}

export default { parseHTML };
