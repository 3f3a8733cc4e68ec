//! One GET of `path` (default `/`) per iteration, body counted but not
//! copied: the cheapest useful scenario, for comparing with wrk. With
//! `think_ms`, each iteration first sleeps that long (memory benchmarks).

use loadtest_sdk::{Params, Result, Scenario, http, vu};
use std::time::Duration;

struct SingleGet {
    request: http::Request,
    think: Duration,
}

impl Scenario for SingleGet {
    fn init(params: &Params) -> Result<Self> {
        let path = params.str("path").unwrap_or("/").to_owned();
        let think = Duration::from_millis(params.get::<u64>("think_ms")?.unwrap_or(0));
        let request = http::get(path).name("get").discard_body().discard_headers();
        Ok(SingleGet { request, think })
    }

    fn iteration(&mut self) -> Result<()> {
        if !self.think.is_zero() {
            vu::sleep(self.think);
        }
        self.request.send()?;
        Ok(())
    }
}

loadtest_sdk::export_scenario!(SingleGet);
