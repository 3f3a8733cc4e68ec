// `k6/execution`: what the VU knows about itself and the test.
const H = globalThis.__host;

const vu = {
  get idInTest() { return H.vuId(); },
  get idInInstance() { return H.vuId(); },
  get iterationInScenario() { return H.iteration(); },
  get iterationInInstance() { return H.iteration(); },
};

const scenario = {
  get name() { return H.scenario(); },
  get iterationInTest() { return H.iteration(); },
};

const test = {
  abort(message) { throw new Error('test aborted: ' + (message || '')); },
};

export { vu, scenario, test };
export default { vu, scenario, test };
