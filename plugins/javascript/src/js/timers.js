// Timers, as k6 has them (globals, and `k6/timers`): kept here, fired by
// the plugin's event loop (event_loop.rs) once the call that set them
// has returned; a call is over when its timers are.
(function () {
  const H = globalThis.__host;
  let timers = null;
  let last = 0;
  function add(fn, ms, args, repeat) {
    if (typeof fn !== 'function') throw new TypeError('setTimeout/setInterval: the callback must be a function');
    if (timers === null) timers = new Map();
    const delay = Math.max(0, Number(ms) || 0);
    timers.set(++last, { fn, args, at: Date.now() + delay, every: repeat ? delay : -1 });
    H.armTimers();
    return last;
  }
  const clear = (id) => {
    if (timers !== null) timers.delete(id);
  };
  globalThis.setTimeout = (fn, ms, ...args) => add(fn, ms, args, false);
  globalThis.setInterval = (fn, ms, ...args) => add(fn, ms, args, true);
  globalThis.clearTimeout = clear;
  globalThis.clearInterval = clear;
  globalThis.__timers = {
    // Milliseconds until the earliest timer is due (0: due), -1 with none.
    wait() {
      if (timers === null || timers.size === 0) return -1;
      let at = Infinity;
      for (const t of timers.values()) at = Math.min(at, t.at);
      return Math.max(0, at - Date.now());
    },
    // Runs the earliest timer alone, so that the jobs it queues run
    // before the next one, as in browsers.
    fire() {
      let id = 0;
      let first = null;
      for (const [k, t] of timers) {
        if (first === null || t.at < first.at) [id, first] = [k, t];
      }
      if (first === null) return;
      if (first.every >= 0) first.at = Date.now() + first.every;
      else timers.delete(id);
      first.fn(...first.args);
    },
    // What a failed call left.
    clear() {
      if (timers !== null) timers.clear();
    },
  };
})();
