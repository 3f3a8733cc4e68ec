// `k6/data`. Each VU is its own instance here, so a SharedArray is built
// once per VU (in init), not shared: the same values, more memory.
export class SharedArray {
  constructor(name, fn) {
    if (typeof fn !== 'function') throw new Error('SharedArray needs a function that returns an array');
    const data = fn();
    if (!Array.isArray(data)) throw new Error(`SharedArray ${name}: the function must return an array`);
    return Object.freeze(data);
  }
}

export default { SharedArray };
