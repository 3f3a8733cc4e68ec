// `k6/timers`: the global timers (event_loop.rs), as a module.
export const { setTimeout, clearTimeout, setInterval, clearInterval } = globalThis;
export default { setTimeout, clearTimeout, setInterval, clearInterval };
