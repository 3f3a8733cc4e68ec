// `k6/metrics`: custom metrics of k6's four kinds, recorded by the host.
const H = globalThis.__host;

function named(name) {
  if (typeof name !== 'string' || name.length === 0) throw new Error('a metric needs a name');
  return name;
}

// k6's `add(value, tags)` with tags: the sample carries them over the
// VU's. An add without tags records directly, with no closure made.
function tagged(tags, record) {
  H.tagsPush(pairsOf(tags));
  try {
    return record();
  } finally {
    H.tagsPop();
  }
}

function pairsOf(tags) {
  if (typeof tags !== 'object') throw new Error(`metric tags must be an object of names and values; got ${typeof tags}`);
  return Object.keys(tags).map((k) => [k, String(tags[k])]);
}

export class Counter {
  constructor(name) { this.name = named(name); }
  add(value, tags) {
    if (tags === undefined || tags === null) H.counter(this.name, Number(value));
    else tagged(tags, () => H.counter(this.name, Number(value)));
  }
}

export class Gauge {
  constructor(name) { this.name = named(name); }
  add(value, tags) {
    if (tags === undefined || tags === null) H.gauge(this.name, Number(value));
    else tagged(tags, () => H.gauge(this.name, Number(value)));
  }
}

export class Rate {
  constructor(name) { this.name = named(name); }
  add(value, tags) {
    if (tags === undefined || tags === null) H.rate(this.name, !!value);
    else tagged(tags, () => H.rate(this.name, !!value));
  }
}

// Trends made with isTime, by name: handleSummary()'s data says they
// hold times, as k6's does, so summary helpers print them in ms.
export class Trend {
  constructor(name, isTime) {
    this.name = named(name);
    if (isTime) (globalThis.__timeTrends ??= {})[name] = true;
  }
  add(value, tags) {
    if (tags === undefined || tags === null) H.trend(this.name, Number(value));
    else tagged(tags, () => H.trend(this.name, Number(value)));
  }
}

export default { Counter, Gauge, Rate, Trend };
