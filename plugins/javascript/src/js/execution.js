// `k6/execution`: what the VU knows about itself and the test.
const H = globalThis.__host;

// `[iteration in instance, iteration in test, VU id in test, executor]`.
const now = () => H.execution();

const tagValue = (key, value, what = 'tags') => {
  if (value === null || (typeof value === 'object') || typeof value === 'function' || typeof value === 'symbol') {
    throw new TypeError(`exec.vu.${what}.${key}: a value must be a string, number or boolean`);
  }
  return String(value);
};

// k6's `exec.vu.metrics.metadata`: entries kept with the VU's later
// samples but not indexed like tags. No loadtest output lists samples one
// by one (where k6 shows metadata), so they stay on the VU, readable.
let metadata;
function vuMetadata() {
  metadata ??= new Proxy({}, {
    set: (target, k, v) => { target[String(k)] = tagValue(String(k), v, 'metrics.metadata'); return true; },
  });
  return metadata;
}

// k6's `exec.vu.tags`: setting a tag puts it on every later sample of the
// VU (`scenario` reads as the VU's scenario unless set); deleting takes it
// off. Made when first read: it needs Proxy.
let tags;
function vuTags() {
  tags ??= new Proxy({}, {
    get: (_, k) => (typeof k !== 'string' ? undefined : H.vuTag(k) ?? (k === 'scenario' ? H.scenario() : undefined)),
    set: (_, k, v) => { H.setVuTag(String(k), tagValue(String(k), v)); return true; },
    deleteProperty: (_, k) => { H.setVuTag(String(k), null); return true; },
    has: (_, k) => typeof k === 'string' && H.vuTag(k) !== undefined,
    ownKeys: () => H.vuTagNames(),
    getOwnPropertyDescriptor: (_, k) => {
      const value = typeof k === 'string' ? H.vuTag(k) : undefined;
      return value === undefined ? undefined : { value, writable: true, enumerable: true, configurable: true };
    },
  });
  return tags;
}

const vu = {
  get idInTest() { return now()[2]; },
  get idInInstance() { return H.vuId(); },
  get iterationInScenario() { return H.iteration(); },
  get iterationInInstance() { return H.iteration(); },
  get tags() { return vuTags(); },
  metrics: { get tags() { return vuTags(); }, get metadata() { return vuMetadata(); } },
};

// `[vusActive, vusInitialized, iterationsCompleted, iterationsInterrupted,
// currentTestRunDuration, scenario startTime, scenario progress]`.
const progress = () => H.progress();

const scenario = {
  get name() { return H.scenario(); },
  get executor() { return now()[3]; },
  get startTime() { return progress()[5]; },
  get progress() { return progress()[6]; },
  get iterationInInstance() { return now()[0]; },
  get iterationInTest() { return now()[1]; },
};

// Frozen all the way down, as k6's: a script cannot change what it reads.
function frozen(o) {
  if (o !== null && typeof o === 'object') {
    for (const v of Object.values(o)) frozen(v);
    Object.freeze(o);
  }
  return o;
}

let testOptions;

// k6's `test.abort()`: the whole test ends (every VU stops, teardown
// still runs, the run exits with 108). This iteration ends here.
// `test.fail()` marks the test failed and lets it run on (exit 110).
const test = {
  // The script's options as the run uses them (k6's consolidated options).
  get options() {
    testOptions ??= frozen(JSON.parse(H.testOptions()));
    return testOptions;
  },
  abort(message) {
    const reason = message === undefined ? 'exec.test.abort() called' : String(message);
    H.abortTest(reason);
    throw new Error('test aborted: ' + reason);
  },
  fail(message) {
    const reason = message === undefined ? 'exec.test.fail() called' : String(message);
    // Each call logged, as k6 logs it; the report keeps the first reason.
    console.error(message === undefined ? 'test marked as failed' : 'test marked as failed: ' + reason);
    H.failTest(reason);
  },
};

// This node's part of the test (k6's instance).
const instance = {
  get vusActive() { return progress()[0]; },
  get vusInitialized() { return progress()[1]; },
  get iterationsCompleted() { return progress()[2]; },
  get iterationsInterrupted() { return progress()[3]; },
  get currentTestRunDuration() { return progress()[4]; },
};

export { vu, scenario, test, instance };
export default { vu, scenario, test, instance };
