use super::{ConfigError, HumanDuration, Scenario};
use crate::threshold::{Threshold, ThresholdSpec};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A whole test: where to send load, with which plugins, in which shapes.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Config {
    /// Shown in reports; defaults to the config file's name.
    #[serde(default)]
    pub name: Option<String>,
    /// Base URL that relative request paths are joined to.
    #[serde(default)]
    pub target: Option<String>,
    #[serde(default)]
    pub plugins: BTreeMap<String, PluginSource>,
    /// Data files plugins read by name (`vu::file`); paths are relative to
    /// the config file and the bytes travel with the test.
    #[serde(default)]
    pub files: BTreeMap<String, PathBuf>,
    pub scenarios: BTreeMap<String, Scenario>,
    #[serde(default)]
    pub http: HttpOptions,
    #[serde(default)]
    pub sandbox: SandboxOptions,
    /// Pass/fail criteria (k6 syntax); a failed one makes the exit code 99.
    #[serde(default)]
    pub thresholds: Thresholds,
    /// Where the metrics are streamed while the run goes, written as
    /// `--out` takes them and added to the command line's. In a cluster
    /// the leader streams the merged series.
    #[serde(default)]
    pub outputs: Vec<Output>,
}

/// One of the config's `outputs`, checked while reading the YAML so that
/// a typo is reported with its position.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(try_from = "String")]
pub struct Output(pub String);

impl TryFrom<String> for Output {
    type Error = String;

    fn try_from(o: String) -> Result<Self, String> {
        let known = o.split_once('=').is_some_and(|(kind, to)| {
            matches!(kind, "prometheus" | "otlp" | "json") && !to.trim().is_empty()
        });
        if !known {
            return Err(format!(
                "`{o}` is not an output: write prometheus=URL (remote write), otlp=URL (OTLP/HTTP) or json=FILE"
            ));
        }
        Ok(Output(o))
    }
}

/// The config's `thresholds`, parsed while reading the YAML so that a bad
/// expression is reported with its position.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(try_from = "BTreeMap<String, Vec<ThresholdSpec>>")]
pub struct Thresholds(pub Vec<Threshold>);

impl TryFrom<BTreeMap<String, Vec<ThresholdSpec>>> for Thresholds {
    type Error = String;
    fn try_from(map: BTreeMap<String, Vec<ThresholdSpec>>) -> Result<Self, String> {
        crate::threshold::parse_all(&map)
            .map(Thresholds)
            .map_err(|(key, e)| format!("threshold `{key}`: {e}"))
    }
}

/// Where a plugin's bytes come from: a file (relative to the config file),
/// one of the plugins built into the binary, or a k6-style script run by
/// the builtin javascript plugin (its scenarios come from this config).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, try_from = "RawPluginSource")]
pub enum PluginSource {
    Path(PathBuf),
    Builtin(String),
    Script(PathBuf),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPluginSource {
    path: Option<PathBuf>,
    builtin: Option<String>,
    script: Option<PathBuf>,
}

impl TryFrom<RawPluginSource> for PluginSource {
    type Error = String;
    fn try_from(r: RawPluginSource) -> Result<Self, String> {
        match (r.path, r.builtin, r.script) {
            (Some(p), None, None) => Ok(PluginSource::Path(p)),
            (None, None, Some(s)) => Ok(PluginSource::Script(s)),
            (None, Some(b), None) => {
                if crate::plugin::builtin::names().contains(&b.as_str()) {
                    Ok(PluginSource::Builtin(b))
                } else {
                    Err(format!(
                        "`{b}` is not a builtin plugin; builtins: {}",
                        crate::plugin::builtin::names().join(", ")
                    ))
                }
            }
            _ => Err(
                "a plugin needs exactly one of `path: file.wasm`, `builtin: http-steps` or `script: test.js`"
                    .into(),
            ),
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct HttpOptions {
    /// Whole-request timeout (send to last body byte).
    pub timeout: HumanDuration,
    pub connect_timeout: HumanDuration,
    /// Speak HTTP/2 without TLS (h2c) instead of HTTP/1.1; TLS targets
    /// negotiate HTTP/2 through ALPN regardless.
    pub http2_prior_knowledge: bool,
    /// Accept any server certificate (k6's `insecureSkipTLSVerify`): for
    /// test environments with self-signed certificates only.
    #[serde(rename = "insecureSkipTLSVerify")]
    pub insecure_skip_tls_verify: bool,
    /// Redirects followed per request (k6's `maxRedirects`); 0 returns
    /// the 3xx response itself. Each hop is a request in the metrics.
    pub max_redirects: u32,
    /// Keep each VU's cookies across iterations (k6's `noCookiesReset`);
    /// by default every iteration starts with an empty jar.
    pub no_cookies_reset: bool,
    /// Largest response body read, on the wire and again once decoded: a
    /// larger or endless body fails the request as `body_too_large`.
    pub max_body_bytes: u64,
    /// Requests one `http.batch` call has in flight at once (k6's `batch`).
    pub batch: u32,
    /// ... and at most this many to one host (k6's `batchPerHost`).
    pub batch_per_host: u32,
    /// Names answered without DNS (k6's `hosts`): `name`, `name:port` or
    /// `*.example.com` to `ip` or `ip:port`. `Host` and the TLS server
    /// name stay the URL's.
    pub hosts: BTreeMap<String, String>,
    /// A new connection for every request (k6's `noConnectionReuse`).
    pub no_connection_reuse: bool,
    /// No connection kept from one iteration to the next (k6's
    /// `noVUConnectionReuse`).
    #[serde(rename = "noVUConnectionReuse")]
    pub no_vu_connection_reuse: bool,
    /// Requests per second at most, over the whole test (k6's `rps`); a
    /// cluster's nodes each take their share. 0: no cap.
    pub rps: u32,
    /// Prints every request and response on stderr (k6's `httpDebug`):
    /// `true` or `headers` for heads, `full` with bodies.
    pub http_debug: crate::client::debug::HttpDebug,
}

impl HttpOptions {
    /// How long a VU keeps a connection.
    pub fn reuse(&self) -> crate::client::Reuse {
        use crate::client::Reuse;
        match (self.no_connection_reuse, self.no_vu_connection_reuse) {
            (true, _) => Reuse::Never,
            (false, true) => Reuse::WithinIteration,
            (false, false) => Reuse::Always,
        }
    }

    pub fn hosts(&self) -> Result<crate::client::hosts::Hosts, String> {
        crate::client::hosts::Hosts::new(&self.hosts)
    }
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            timeout: HumanDuration(Duration::from_secs(60)),
            connect_timeout: HumanDuration(Duration::from_secs(10)),
            http2_prior_knowledge: false,
            insecure_skip_tls_verify: false,
            max_redirects: 10,
            no_cookies_reset: false,
            max_body_bytes: 64 << 20,
            batch: 20,
            batch_per_host: 6,
            hosts: BTreeMap::new(),
            no_connection_reuse: false,
            no_vu_connection_reuse: false,
            rps: 0,
            http_debug: Default::default(),
        }
    }
}

/// Limits that keep a plugin from hurting the host.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct SandboxOptions {
    /// Guest CPU time one `init` or `iteration` call may use (time spent
    /// waiting on HTTP or sleep does not count).
    pub cpu_per_call: HumanDuration,
    /// Linear memory one VU instance may grow to, in MiB.
    pub memory_mb: u32,
    /// Wall-clock time a VU's instantiation and `init`, or a `setup` or
    /// `teardown`, may take, waiting included: a plugin that never returns
    /// from them cannot hold the run.
    pub init_timeout: HumanDuration,
    /// Log lines a scenario's plugin may write per second; the rest are
    /// dropped and counted.
    pub logs_per_second: u32,
    /// Host names (or `*.example.com` patterns) requests may not go to,
    /// besides the cloud metadata names always blocked.
    pub block_hostnames: Vec<String>,
    /// Addresses or ranges requests may not go to, checked on what a name
    /// resolves to, besides link-local and the metadata addresses.
    #[serde(rename = "blockIPs")]
    pub block_ips: Vec<String>,
    /// Addresses or ranges let through although blocked above or by
    /// default (a lab whose target lives at a link-local address).
    #[serde(rename = "allowIPs")]
    pub allow_ips: Vec<String>,
}

impl SandboxOptions {
    /// Where requests may go, from the three lists.
    pub fn egress(&self) -> Result<crate::client::egress::Egress, String> {
        crate::client::egress::Egress::new(&self.block_hostnames, &self.block_ips, &self.allow_ips)
    }
}

impl Default for SandboxOptions {
    fn default() -> Self {
        SandboxOptions {
            cpu_per_call: HumanDuration(Duration::from_secs(2)),
            memory_mb: 128,
            init_timeout: HumanDuration(Duration::from_secs(60)),
            logs_per_second: 100,
            block_hostnames: Vec::new(),
            block_ips: Vec::new(),
            allow_ips: Vec::new(),
        }
    }
}

impl Config {
    /// The scripts named as plugins (`script: ./shop.js`): plugin name to
    /// the file the javascript plugin runs (`params.main`), which is how
    /// the script is named among the files that travel with it.
    pub fn script_mains(&self) -> BTreeMap<String, String> {
        self.plugins
            .iter()
            .filter_map(|(name, s)| match s {
                PluginSource::Script(p) => p
                    .file_name()
                    .map(|f| (name.clone(), f.to_string_lossy().into_owned())),
                _ => None,
            })
            .collect()
    }

    /// The `outputs` as written.
    pub fn output_specs(&self) -> Vec<String> {
        self.outputs.iter().map(|o| o.0.clone()).collect()
    }

    /// Checks that need the whole config (cross references, URLs).
    pub(super) fn validate(&self, file: &Path) -> Result<(), ConfigError> {
        if self.scenarios.is_empty() {
            return Err(ConfigError::new(
                file,
                Some("scenarios".into()),
                "at least one scenario is needed",
            ));
        }
        for (name, scenario) in &self.scenarios {
            if name == crate::metrics::NO_SCENARIO {
                return Err(ConfigError::new(
                    file,
                    Some("scenarios".into()),
                    "a scenario's name may not be empty (the empty name is what setup and \
                     teardown record under); name it, e.g. `browse:`",
                ));
            }
            if !self.plugins.contains_key(&scenario.plugin) {
                let known: Vec<_> = self.plugins.keys().map(String::as_str).collect();
                return Err(ConfigError::new(
                    file,
                    Some(format!("scenarios.{name}.plugin")),
                    format!(
                        "plugin `{}` is not defined under `plugins` (defined: {})",
                        scenario.plugin,
                        if known.is_empty() {
                            "none".to_string()
                        } else {
                            known.join(", ")
                        }
                    ),
                ));
            }
        }
        if let Some(target) = &self.target {
            crate::client::parse_base_url(target)
                .map_err(|e| ConfigError::new(file, Some("target".into()), e))?;
        }
        if let Err(e) = self.sandbox.egress() {
            return Err(ConfigError::new(file, Some("sandbox".into()), e));
        }
        if let Err(e) = self.http.hosts() {
            return Err(ConfigError::new(file, Some("http.hosts".into()), e));
        }
        if self.sandbox.memory_mb == 0 {
            return Err(ConfigError::new(
                file,
                Some("sandbox.memoryMb".into()),
                "must be at least 1",
            ));
        }
        Ok(())
    }

    /// The name reports use: `name`, else the config file's stem.
    pub fn display_name(&self, file: &Path) -> String {
        self.name.clone().unwrap_or_else(|| {
            file.file_stem()
                .map_or("loadtest".into(), |s| s.to_string_lossy().into_owned())
        })
    }
}
