// `k6/execution`: what the VU knows about itself and the test.
const H = globalThis.__host;

// `[iteration in instance, iteration in test, VU id in test, executor]`.
const now = () => H.execution();

const vu = {
  get idInTest() { return now()[2]; },
  get idInInstance() { return H.vuId(); },
  get iterationInScenario() { return H.iteration(); },
  get iterationInInstance() { return H.iteration(); },
};

const scenario = {
  get name() { return H.scenario(); },
  get executor() { return now()[3]; },
  get iterationInInstance() { return now()[0]; },
  get iterationInTest() { return now()[1]; },
};

// k6's `test.abort()`: the whole test ends (every VU stops, teardown
// still runs, the run exits with 108). This iteration ends here.
const test = {
  abort(message) {
    const reason = message === undefined ? 'exec.test.abort() called' : String(message);
    H.abortTest(reason);
    throw new Error('test aborted: ' + reason);
  },
};

export { vu, scenario, test };
export default { vu, scenario, test };
