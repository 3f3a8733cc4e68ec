//! A small scenario: log in (when `params.user` is set), fetch the home
//! page, post a JSON order to the echo route with the session's token and
//! check it comes back, then think for a moment.

use loadtest_sdk::{Params, Result, Scenario, check, http, vu};
use serde::Deserialize;
use std::time::Duration;

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct Config {
    /// Think time between iterations, in milliseconds.
    think_ms: u64,
    /// Log in as this user (suffixed with the VU id) before the first iteration.
    user: Option<String>,
}

#[derive(Deserialize)]
struct Session {
    token: String,
}

struct Quickstart {
    think: Duration,
    /// `Bearer <token>` once logged in.
    auth: Option<String>,
}

impl Scenario for Quickstart {
    fn init(params: &Params) -> Result<Self> {
        let config: Config = params.deserialize()?;
        let auth = match config.user {
            Some(user) => Some(log_in(&format!("{user}-{}", vu::id()))?),
            None => None,
        };
        Ok(Quickstart {
            think: Duration::from_millis(config.think_ms),
            auth,
        })
    }

    fn iteration(&mut self) -> Result<()> {
        let home = http::get("/").name("home").send()?;
        check("home status is 200", home.status() == 200);

        let order = format!(r#"{{"vu":{},"item":{}}}"#, vu::id(), vu::iteration());
        let mut post = http::post("/echo")
            .name("order")
            .header("content-type", "application/json")
            .body(order.clone());
        if let Some(auth) = &self.auth {
            post = post.header("authorization", auth.clone());
        }
        let echoed = post.send()?;
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

/// Posts the user to `/login` and returns the `authorization` value.
fn log_in(user: &str) -> Result<String> {
    let res = http::post("/login")
        .name("login")
        .header("content-type", "application/json")
        .body(format!(r#"{{"user":"{user}"}}"#))
        .send()?;
    check("logged in", res.status() == 200);
    if res.status() != 200 {
        return Err(format!("login as {user}: status {}", res.status()).into());
    }
    let session: Session = res.json()?;
    Ok(format!("Bearer {}", session.token))
}

loadtest_sdk::export_scenario!(Quickstart);
