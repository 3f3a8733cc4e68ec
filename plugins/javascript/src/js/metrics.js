// `k6/metrics`: custom metrics of k6's four kinds, recorded by the host.
const H = globalThis.__host;

function named(name) {
  if (typeof name !== 'string' || name.length === 0) throw new Error('a metric needs a name');
  return name;
}

export class Counter {
  constructor(name) { this.name = named(name); }
  add(value) { H.counter(this.name, Number(value)); }
}

export class Gauge {
  constructor(name) { this.name = named(name); }
  add(value) { H.gauge(this.name, Number(value)); }
}

export class Rate {
  constructor(name) { this.name = named(name); }
  add(value) { H.rate(this.name, !!value); }
}

// Trends made with isTime, by name: handleSummary()'s data says they
// hold times, as k6's does, so summary helpers print them in ms.
export class Trend {
  constructor(name, isTime) {
    this.name = named(name);
    if (isTime) (globalThis.__timeTrends ??= {})[name] = true;
  }
  add(value) { H.trend(this.name, Number(value)); }
}

export default { Counter, Gauge, Rate, Trend };
