//! Exercises what 0.2 added, one `mode` at a time, and reports what it saw
//! as checks, so the tests read the outcome from the JSON report.

use loadtest_sdk::{Params, Result, Scenario, check, cookies, fail, gauge, group, http, rate, vu};
use serde::Deserialize;

#[derive(Deserialize, Default)]
#[serde(default)]
struct Config {
    mode: String,
    /// Requests in one batch.
    batch: usize,
    /// Whether setup fails, to show it stops the run before any load.
    fail_setup: bool,
}

struct Features {
    config: Config,
}

impl Scenario for Features {
    fn init(params: &Params) -> Result<Self> {
        Ok(Features {
            config: params.deserialize()?,
        })
    }

    fn iteration(&mut self) -> Result<()> {
        match self.config.mode.as_str() {
            "timings" => timings(),
            "groups" => groups(),
            "batch" => batch(self.config.batch),
            "cookies" => cookies_api(),
            "setup" => uses_setup(),
            "later" => later_imports(),
            other => fail!("unknown mode `{other}`"),
        }
    }

    fn setup(params: &Params) -> Result<Option<String>> {
        let config: Config = params.deserialize()?;
        if config.mode != "setup" {
            return Ok(None);
        }
        if config.fail_setup {
            fail!("the login service said no");
        }
        let res = http::get("/").name("setup login").send()?;
        check("setup ran as VU 0", vu::id() == 0);
        Ok(Some(format!("token-{}", res.status())))
    }

    fn teardown(params: &Params, data: Option<&str>) -> Result<()> {
        let config: Config = params.deserialize()?;
        if config.mode == "setup" {
            http::get("/").name("teardown").send()?;
            check("teardown got setup's data", data == Some("token-200"));
        }
        Ok(())
    }
}

fn timings() -> Result<()> {
    for n in 0..2 {
        let res = http::get("/").send()?;
        let t = res.timings();
        let phases = t.sending + t.waiting + t.receiving;
        check("phases add up to the duration", phases == t.duration);
        check("waiting is within the duration", t.waiting <= t.duration);
        check(
            "the whole request covers connect, TLS and the exchange",
            res.duration() >= t.connecting + t.tls_handshaking + t.duration,
        );
        if vu::iteration() == 0 && n == 0 {
            check(
                "a new connection has a connect time",
                t.connecting > std::time::Duration::ZERO,
            );
        } else {
            check("a reused connection has none", t.connecting.is_zero());
        }
    }
    Ok(())
}

fn groups() -> Result<()> {
    vu::set_tag("tier", "gold");
    group("checkout", || -> Result<()> {
        http::get("/").name("cart").send()?;
        group("pay", || -> Result<()> {
            let res = http::get("/status/503").name("pay").send()?;
            check("paid", res.status() == 200);
            Ok(())
        })
    })?;
    vu::remove_tag("tier");
    http::get("/").name("home").tag("kind", "landing").send()?;
    gauge("vu_id", f64::from(vu::id()));
    rate("even_iteration", vu::iteration().is_multiple_of(2));
    Ok(())
}

fn batch(n: usize) -> Result<()> {
    let reqs: Vec<_> = (0..n)
        .map(|i| http::get(format!("/?i={i}")).name("batched"))
        .collect();
    let results = http::batch(&reqs);
    check("a result for every request", results.len() == n);
    check(
        "every batched request answered 200",
        results
            .iter()
            .all(|r| r.as_ref().is_ok_and(|r| r.status() == 200)),
    );
    Ok(())
}

fn cookies_api() -> Result<()> {
    check(
        "the jar starts empty",
        cookies::for_url("/cookies").is_empty(),
    );
    cookies::set("/", "flavour=oat; Path=/")?;
    let res = http::get("/cookies").send()?;
    check(
        "a cookie the scenario set is sent",
        res.text().contains("oat"),
    );
    check(
        "the jar reads it back",
        cookies::get("/cookies", "flavour").as_deref() == Some("oat"),
    );
    check(
        "a refused cookie says why",
        cookies::set("/", "no equals sign here; Path=/").is_err(),
    );
    let res = http::get("/redirect/2").max_redirects(1).send();
    check(
        "a per-request redirect limit ends the chain",
        matches!(res, Err(http::HttpError::TooManyRedirects(1))),
    );
    let res = http::get("/redirect/1").send()?;
    check(
        "the final URL is the last hop's",
        res.url().ends_with("/get") && res.redirects() == 1,
    );
    let held = http::get("/redirect/1").send_held()?;
    let body = String::from_utf8_lossy(&held.body()).into_owned();
    check(
        "a held response gives its body and headers when asked",
        held.status() == 200
            && held.redirects() == 1
            && held.url().is_some_and(|u| u.ends_with("/get"))
            && body.contains("/get")
            && held
                .headers()
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("content-type")),
    );
    cookies::clear();
    check(
        "clear empties the jar",
        cookies::for_url("/cookies").is_empty(),
    );
    Ok(())
}

/// What WIT 0.2 gained last: a jar of the scenario's own, a held
/// response's connection, `batch-held`, `progress` and `fail-test`.
fn later_imports() -> Result<()> {
    let jar = cookies::Jar::new();
    jar.set("/", "own=1; Path=/")?;
    let within = jar.within(|| http::get("/cookies").send())?;
    let outside = http::get("/cookies").send()?;
    check(
        "an own jar is used within it only",
        within.text().contains("own") && !outside.text().contains("own"),
    );
    let c = http::get("/get").send_held()?.connection();
    check(
        "a held response tells its connection",
        c.proto == "HTTP/1.1"
            && c.remote_ip == "127.0.0.1"
            && c.remote_port > 0
            && c.tls_version.is_none(),
    );
    let both = http::batch_held(&[
        (http::get("/get"), http::Judged::AsVu),
        (http::get("/status/404"), http::Judged::By(vec![(404, 404)])),
    ]);
    check(
        "batch_held keeps each response",
        matches!(&both[..], [Ok(a), Ok(b)] if a.status() == 200 && b.status() == 404),
    );
    let p = vu::progress();
    check(
        "progress counts this node's run",
        p.vus_initialized == 1
            && p.iterations_completed == vu::iteration()
            && p.scenario_progress < 1.0,
    );
    if vu::iteration() == 1 {
        vu::fail_test("seen enough");
    }
    Ok(())
}

fn uses_setup() -> Result<()> {
    check(
        "every VU sees setup's data",
        vu::setup_data().as_deref() == Some("token-200"),
    );
    http::get("/").name("work").send()?;
    Ok(())
}

loadtest_sdk::export_scenario!(Features);
