// The `k6` module: checks, groups, sleep and fail, on the host's metrics.
const H = globalThis.__host;

export function check(value, sets, tags) {
  let all = true;
  // An indexed loop: `for...of` would allocate an iterator per check.
  const names = Object.keys(sets || {});
  for (let i = 0; i < names.length; i++) {
    const name = names[i];
    const test = sets[name];
    let ok;
    try {
      ok = typeof test === 'function' ? !!test(value) : !!test;
    } catch (e) {
      ok = false;
    }
    H.check(name, ok);
    all = all && ok;
  }
  return all;
}

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
