// The `k6` module: checks, groups, sleep and fail, on the host's metrics.
const H = globalThis.__host;

// Natively (host.rs), with no JavaScript frame around it: it runs on
// every checked request. `tags` are not kept yet.
export const check = H.check;

export function group(name, fn) {
  H.groupStart(String(name));
  try {
    return fn();
  } finally {
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
