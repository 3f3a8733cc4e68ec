// Globals every k6 script sees: __ENV, __VU, __ITER, console, open().
(function () {
  const H = globalThis.__host;
  Object.defineProperty(globalThis, '__VU', { get: () => H.vuId() });
  Object.defineProperty(globalThis, '__ITER', { get: () => H.iteration() });
  // Seeded per VU by the host (QuickJS seeds from the clock), or by randomSeed.
  Math.random = H.random;
  const line = (args) => args.map((a) => (typeof a === 'string' ? a : JSON.stringify(a))).join(' ');
  globalThis.console = {
    debug: (...a) => H.log(1, line(a)),
    log: (...a) => H.log(2, line(a)),
    info: (...a) => H.log(2, line(a)),
    warn: (...a) => H.log(3, line(a)),
    error: (...a) => H.log(4, line(a)),
  };
  globalThis.open = (path, mode) => {
    if (mode !== undefined && mode !== 'b') throw new Error(`open(path, mode): mode is "b" (an ArrayBuffer) or left out (a string), not ${JSON.stringify(mode)}`);
    const text = mode === 'b' ? H.openBinary(String(path)) : H.open(String(path));
    if (text === undefined || text === null) {
      throw new Error(`open: ${path} did not travel with the script (only files named by a string literal in open() do)`);
    }
    return text;
  };
})();
