// What the plugin asks a script for when it reads its options.
globalThis.__describe = () => JSON.stringify({
  options: globalThis.__ns.options === undefined ? {} : globalThis.__ns.options,
  exports: Object.keys(globalThis.__ns).filter((k) => typeof globalThis.__ns[k] === 'function'),
});
