//! Consul, as a cluster uses it: a config source in its KV store, and a
//! service registry (tags that follow Raft, peers found through it).
//!
//! rs-consul does what it covers well (KV writes). The rest goes through
//! the same hyper client stack here: the agent's service API (rs-consul
//! only has the catalog's register), and KV reads with `?raw`, because
//! rs-consul's `read_key` always sends `recurse=<bool>`, which Consul
//! takes as recursive whatever the value (reading `loadtest/config`
//! returned every chunk under `loadtest/config.blobs/` too), decodes it
//! through a reader whose every byte re-sums the body's buffer list
//! (quadratic: a 20 MiB plugin took minutes), and insists on UTF-8.

pub mod agent;
pub mod kv;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use rs_consul::{Config, Consul};

/// The agent's address: `CONSUL_ADDR`, else `CONSUL_HTTP_ADDR` (Consul's
/// own variable, with or without a scheme), else the local agent.
pub fn address(explicit: Option<&str>) -> String {
    let raw = explicit
        .map(str::to_owned)
        .or_else(|| std::env::var("CONSUL_ADDR").ok())
        .or_else(|| std::env::var("CONSUL_HTTP_ADDR").ok())
        .filter(|a| !a.trim().is_empty())
        .unwrap_or_else(|| "http://127.0.0.1:8500".into());
    let raw = raw.trim().trim_end_matches('/');
    if raw.contains("://") {
        raw.to_owned()
    } else {
        format!("http://{raw}")
    }
}

/// How long an ordinary call to the agent may take.
const CALL_LIMIT: std::time::Duration = std::time::Duration::from_secs(10);

/// One agent, with `CONSUL_HTTP_TOKEN` on every call when set.
pub struct Client {
    consul: Consul,
    pub addr: String,
    token: Option<String>,
    http: hyper_util::client::legacy::Client<HttpConnector, Full<Bytes>>,
}

/// A raw answer from the agent.
pub struct Answer {
    pub status: u16,
    pub body: Bytes,
    /// `X-Consul-Index`, for blocking queries.
    pub index: u64,
}

impl Answer {
    /// `Ok` for a 200, else the error that explains the answer.
    fn ok_or_error(&self, client: &Client, what: &str) -> anyhow::Result<()> {
        if self.status == 200 {
            Ok(())
        } else {
            Err(self.error(client, what))
        }
    }

    fn error(&self, client: &Client, what: &str) -> anyhow::Error {
        let hint = match self.status {
            401 | 403 => " (set CONSUL_HTTP_TOKEN to a token allowed to do this)",
            _ => "",
        };
        anyhow::anyhow!(
            "Consul at {}: {what}: {} {}{hint}",
            client.addr,
            self.status,
            String::from_utf8_lossy(&self.body).trim()
        )
    }
}

impl Client {
    pub fn new(addr: &str) -> Client {
        let token = std::env::var("CONSUL_HTTP_TOKEN")
            .ok()
            .filter(|t| !t.is_empty());
        let consul = Consul::new(Config {
            address: addr.to_owned(),
            token: token.clone(),
            ..Config::default()
        });
        let http =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http();
        Client {
            consul,
            addr: addr.to_owned(),
            token,
            http,
        }
    }

    /// One HTTP call to the agent, bounded by 10 s; `what` names it in errors.
    pub async fn call(
        &self,
        method: hyper::Method,
        path_and_query: &str,
        body: Option<Vec<u8>>,
        what: &str,
    ) -> anyhow::Result<Answer> {
        self.call_within(CALL_LIMIT, method, path_and_query, body, what)
            .await
    }

    /// A call bounded by `limit`: a hung agent (a half-open connection)
    /// must not stall the node's loops that ask it.
    pub async fn call_within(
        &self,
        limit: std::time::Duration,
        method: hyper::Method,
        path_and_query: &str,
        body: Option<Vec<u8>>,
        what: &str,
    ) -> anyhow::Result<Answer> {
        tokio::time::timeout(limit, self.call_once(method, path_and_query, body, what))
            .await
            .map_err(|_| {
                anyhow::anyhow!(
                    "Consul at {}: {what}: no answer within {}s",
                    self.addr,
                    limit.as_secs()
                )
            })?
    }

    async fn call_once(
        &self,
        method: hyper::Method,
        path_and_query: &str,
        body: Option<Vec<u8>>,
        what: &str,
    ) -> anyhow::Result<Answer> {
        let fail =
            |e: &dyn std::fmt::Display| anyhow::anyhow!("Consul at {}: {what}: {e}", self.addr);
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(format!("{}{path_and_query}", self.addr));
        if let Some(t) = &self.token {
            req = req.header("X-Consul-Token", t);
        }
        let req = req
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| fail(&e))?;
        let resp = self.http.request(req).await.map_err(|e| fail(&e))?;
        let status = resp.status().as_u16();
        let index = resp
            .headers()
            .get("x-consul-index")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| fail(&e))?
            .to_bytes();
        Ok(Answer {
            status,
            body,
            index,
        })
    }
}
