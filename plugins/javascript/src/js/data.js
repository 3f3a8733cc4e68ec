// `k6/data`. A SharedArray is built once per process: the first VU to
// construct it (or the run's options probe) calls the function and hands
// the items to the host as JSON; every VU then reads items through the
// host, each read a fresh copy as in k6. So 1,000 VUs hold one copy of a
// data file's rows, not 1,000, and the others never call the function.
const N = globalThis.__host.dataNatives();

function readOnly(name) {
  throw new TypeError(`SharedArray ${name} is read-only: build the data in its function`);
}

// The item number a property key names, or -1 (k6 indexes with canonical
// numbers only: '01' and '1.0' are not items).
function itemOf(key, length) {
  if (typeof key !== 'string') return -1;
  const i = Number(key);
  return Number.isInteger(i) && i >= 0 && i < length && String(i) === key ? i : -1;
}

export class SharedArray {
  constructor(name, fn) {
    if (typeof name !== 'string' || name === '') {
      throw new TypeError('SharedArray needs a name (a non-empty string) as its first argument');
    }
    if (typeof fn !== 'function') throw new TypeError('SharedArray needs a function that returns an array');
    let length = N.len(name);
    if (length === undefined) {
      const data = fn();
      if (!Array.isArray(data)) throw new TypeError(`SharedArray ${name}: the function must return an array`);
      length = N.put(name, data);
    }
    // An array as the target, so Array.isArray, JSON.stringify, for-of and
    // Array.prototype's methods see an array; items come from the host.
    return new Proxy([], {
      get(target, key, receiver) {
        if (key === 'length') return length;
        const i = itemOf(key, length);
        return i >= 0 ? N.get(name, i) : Reflect.get(target, key, receiver);
      },
      has(target, key) {
        return key === 'length' || itemOf(key, length) >= 0 || Reflect.has(target, key);
      },
      ownKeys() {
        const keys = [];
        for (let i = 0; i < length; i++) keys.push(String(i));
        keys.push('length');
        return keys;
      },
      getOwnPropertyDescriptor(target, key) {
        if (key === 'length') return { value: length, writable: true, enumerable: false, configurable: false };
        const i = itemOf(key, length);
        return i >= 0 ? { value: N.get(name, i), writable: false, enumerable: true, configurable: true } : undefined;
      },
      set: () => readOnly(name),
      defineProperty: () => readOnly(name),
      deleteProperty: () => readOnly(name),
      setPrototypeOf: () => readOnly(name),
    });
  }
}

export default { SharedArray };
