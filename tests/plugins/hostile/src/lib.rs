//! Sends one request (to `path`, default `/`) per iteration, then
//! misbehaves as `mode` says on every `every`-th iteration (counted by the
//! host, so it survives the fresh instance a trap brings). Modes: ok, error,
//! trap, loop, oom, log (a flood of warnings), init-fail, init-hang (one
//! request, then an `init` that never returns). Two modes send nothing
//! and act on every iteration: fast-fail (an error at once) and burn
//! (`burn_ms` of CPU, then success). `init_sleep_ms` makes `init` slow.

use loadtest_sdk::{Params, Result, Scenario, fail, http, log, vu};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    mode: String,
    #[serde(default = "one")]
    every: u64,
    /// Think time inside `init`: makes new VUs slow to get ready.
    #[serde(default)]
    init_sleep_ms: u64,
    /// Request path (default `/`).
    #[serde(default)]
    path: Option<String>,
    /// CPU time an iteration of `burn` spends.
    #[serde(default = "ten")]
    burn_ms: u64,
}

fn ten() -> u64 {
    10
}

fn one() -> u64 {
    1
}

struct Hostile(Config);

impl Scenario for Hostile {
    fn init(params: &Params) -> Result<Self> {
        let config: Config = params.deserialize()?;
        if config.init_sleep_ms > 0 {
            vu::sleep(std::time::Duration::from_millis(config.init_sleep_ms));
        }
        if config.mode == "init-fail" {
            fail!("init refused: no credentials for this VU");
        }
        if config.mode == "init-hang" {
            http::get(config.path.as_deref().unwrap_or("/")).send()?;
            loop {
                vu::sleep(std::time::Duration::from_secs(3600));
            }
        }
        Ok(Hostile(config))
    }

    fn iteration(&mut self) -> Result<()> {
        match self.0.mode.as_str() {
            "fast-fail" => fail!("failed at once, on purpose"),
            "burn" => {
                burn(self.0.burn_ms);
                return Ok(());
            }
            _ => {}
        }
        // With `exec` weights in the config, the pick names the request.
        let exec = vu::exec();
        let name = if exec.is_empty() {
            "hostile".to_string()
        } else {
            exec
        };
        http::get(self.0.path.as_deref().unwrap_or("/"))
            .name(name)
            .send()?;
        if !(vu::iteration() + 1).is_multiple_of(self.0.every.max(1)) {
            return Ok(());
        }
        match self.0.mode.as_str() {
            "error" => fail!("iteration {} failed on purpose", vu::iteration()),
            "trap" => std::process::abort(),
            "loop" => spin(),
            "oom" => grow_forever(),
            "log" => {
                for i in 0..1000 {
                    log::warn(&format!("flood {i}"));
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

fn spin() -> ! {
    let mut x: u64 = 0;
    loop {
        x = std::hint::black_box(x.wrapping_add(1));
    }
}

fn burn(ms: u64) {
    let until = std::time::Instant::now() + std::time::Duration::from_millis(ms);
    let mut x: u64 = 0;
    while std::time::Instant::now() < until {
        x = std::hint::black_box(x.wrapping_add(1));
    }
}

fn grow_forever() -> ! {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        hoard.push(vec![1u8; 1 << 20]);
        std::hint::black_box(&hoard);
    }
}

loadtest_sdk::export_scenario!(Hostile);
