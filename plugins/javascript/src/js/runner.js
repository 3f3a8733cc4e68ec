// Calls an export with the setup data; what the plugin's describe and
// setup use (iterations call the export directly).
globalThis.__call = (name) => {
  const f = globalThis.__ns[name];
  if (typeof f !== 'function') {
    throw new Error(`the script exports no function \`${name}\``);
  }
  return f(globalThis.__data);
};
globalThis.__callJson = (name) => {
  const v = globalThis.__call(name);
  return v === undefined ? 'null' : JSON.stringify(v);
};
globalThis.__describe = () => JSON.stringify({
  options: globalThis.__ns.options === undefined ? {} : globalThis.__ns.options,
  exports: Object.keys(globalThis.__ns).filter((k) => typeof globalThis.__ns[k] === 'function'),
});
