// `k6/execution`: what the VU knows about itself and the test.
const H = globalThis.__host;

// `[iteration in instance, iteration in test, VU id in test, executor]`.
const now = () => H.execution();

// What loadtest does not offer yet fails by name when read, never as an
// undefined the script would carry on with.
function missing(path, target, names) {
  for (const name of names) {
    Object.defineProperty(target, name, {
      get() {
        throw new Error(`k6/execution: ${path}.${name} is not supported by loadtest yet`);
      },
    });
  }
  return target;
}

const tagValue = (key, value) => {
  if (value === null || (typeof value === 'object') || typeof value === 'function' || typeof value === 'symbol') {
    throw new TypeError(`exec.vu.tags.${key}: a tag's value must be a string, number or boolean`);
  }
  return String(value);
};

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
  metrics: missing('exec.vu.metrics', { get tags() { return vuTags(); } }, ['metadata']),
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

// k6's `test.abort()`: the whole test ends (every VU stops, teardown
// still runs, the run exits with 108). This iteration ends here.
const test = missing('exec.test', {
  abort(message) {
    const reason = message === undefined ? 'exec.test.abort() called' : String(message);
    H.abortTest(reason);
    throw new Error('test aborted: ' + reason);
  },
}, ['options', 'fail']);

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
