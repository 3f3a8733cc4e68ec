//! A small scenario: fetch the home page, post a JSON order to the echo
//! route and check it comes back, then think for a moment.

use loadtest_sdk::{Params, Result, Scenario, check, http, vu};
use serde::Deserialize;
use std::time::Duration;

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct Config {
    /// Think time between iterations, in milliseconds.
    think_ms: u64,
}

struct Quickstart {
    think: Duration,
}

impl Scenario for Quickstart {
    fn init(params: &Params) -> Result<Self> {
        let config: Config = params.deserialize()?;
        Ok(Quickstart {
            think: Duration::from_millis(config.think_ms),
        })
    }

    fn iteration(&mut self) -> Result<()> {
        let home = http::get("/").name("home").send()?;
        check("home status is 200", home.status() == 200);

        let order = format!(r#"{{"vu":{},"item":{}}}"#, vu::id(), vu::iteration());
        let echoed = http::post("/echo")
            .name("order")
            .header("content-type", "application/json")
            .body(order.clone())
            .send()?;
        check(
            "order echoed",
            echoed.status() == 200 && echoed.body() == order.as_bytes(),
        );

        if !self.think.is_zero() {
            vu::sleep(self.think);
        }
        Ok(())
    }
}

loadtest_sdk::export_scenario!(Quickstart);
