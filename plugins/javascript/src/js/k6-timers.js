// `k6/timers`: the global timers (timers.js), as a module.
export const { setTimeout, clearTimeout, setInterval, clearInterval } = globalThis;
export default { setTimeout, clearTimeout, setInterval, clearInterval };
