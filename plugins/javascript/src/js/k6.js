// The `k6` module: checks, groups, sleep and fail, on the host's metrics.
const H = globalThis.__host;

// Natively (host.rs), with no JavaScript frame around it: it runs on
// every checked request. Its `tags` go on the checks' samples.
export const check = H.check;

// As in k6, not for async functions: the group would end at the first
// await, and what follows would be counted outside it.
export function group(name, fn) {
  if (typeof fn !== 'function') throw new TypeError('group(name, fn): fn must be a function');
  if (fn.constructor && fn.constructor.name === 'AsyncFunction') {
    throw new Error('group() does not support async functions; await inside the group is counted outside it');
  }
  // Requests asyncRequest queued go out in the group they were made in.
  H.sendQueued();
  H.groupStart(String(name));
  try {
    const result = fn();
    if (result instanceof Promise) {
      throw new Error('group() does not support functions that return a promise; await inside the group is counted outside it');
    }
    return result;
  } finally {
    H.sendQueued();
    H.groupEnd();
  }
}

export function sleep(seconds) {
  H.sleep(Math.max(0, Number(seconds) * 1000));
}

export function fail(message) {
  throw new Error(message === undefined ? 'test failed' : String(message));
}

export function randomSeed(seed) {
  H.randomSeed(Number(seed));
}

export default { check, group, sleep, fail, randomSeed };
