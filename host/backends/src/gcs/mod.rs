//! Google Cloud Storage, as a cluster uses it: a config source (a pushed
//! config and the plugin and data objects next to it), and a registry of
//! heartbeat objects for discovery.
//!
//! Reads and writes go through the `google-cloud-storage` client with
//! Application Default Credentials. That client lists and deletes objects
//! only over gRPC (storage.v2), which no emulator speaks, so those two
//! calls use the JSON API directly, with the same credentials.
//! `STORAGE_EMULATOR_HOST` points everything at an emulator.

pub mod objects;

use google_cloud_auth::credentials::{Credentials, anonymous};
use google_cloud_gax::retry_policy::RetryPolicyExt as _;
use google_cloud_storage::client::Storage;
use google_cloud_storage::retry_policy::RetryableErrors;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long one call may keep retrying a transient error (including
/// fetching a token) before it is reported.
const RETRY_FOR: Duration = Duration::from_secs(5);

/// What went wrong, sorted by what the caller should do about it.
#[derive(Debug, Clone, PartialEq)]
pub enum Problem {
    /// The object (or its bucket) is not there.
    Missing(String),
    /// The credentials cannot be had, or do not allow the call.
    Denied(String),
    /// A write or delete whose generation precondition did not hold.
    Precondition,
    /// Anything that may pass by itself: a network error, a 5xx, a timeout.
    Transient(String),
}

impl Problem {
    /// A config problem: asking again will not help until someone acts.
    pub fn is_permanent(&self) -> bool {
        matches!(self, Problem::Missing(_) | Problem::Denied(_))
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::Missing(m) | Problem::Denied(m) | Problem::Transient(m) => f.write_str(m),
            Problem::Precondition => f.write_str("the object changed meanwhile"),
        }
    }
}

impl std::error::Error for Problem {}

/// An object as listed: its name, generation, and age by the store's clock.
#[derive(Debug, Clone)]
pub struct Listed {
    pub name: String,
    pub generation: i64,
    pub age: Duration,
    /// The object's custom metadata (`x-goog-meta-*`).
    pub metadata: std::collections::HashMap<String, String>,
}

/// One bucket store, with the credentials every call uses.
#[derive(Clone)]
pub struct Gcs {
    clients: Arc<Mutex<Arc<Clients>>>,
    /// `https://storage.googleapis.com`, or the emulator.
    endpoint: String,
    /// Talking to `STORAGE_EMULATOR_HOST`.
    emulator: bool,
    http: reqwest::Client,
}

/// The storage client and its credentials, replaced together.
struct Clients {
    storage: Storage,
    credentials: Credentials,
}

/// `gs://bucket/object` split into its parts.
pub fn parse_url(url: &str) -> anyhow::Result<(String, String)> {
    let rest = url.strip_prefix("gs://").ok_or_else(|| {
        anyhow::anyhow!("`{url}` is not a GCS URL; write it as gs://bucket/path/config.yaml")
    })?;
    match rest.split_once('/') {
        Some((b, o)) if !b.is_empty() && !o.is_empty() && !o.ends_with('/') => {
            Ok((b.to_owned(), o.to_owned()))
        }
        _ => anyhow::bail!("`{url}` names no object; write it as gs://bucket/path/config.yaml"),
    }
}

impl Clients {
    async fn connect(endpoint: &str, emulator: bool) -> Result<Clients, Problem> {
        let explicit = ["GOOGLE_APPLICATION_CREDENTIALS", "GCE_METADATA_HOST"]
            .iter()
            .any(|v| std::env::var_os(v).is_some());
        let credentials = if emulator && !explicit {
            anonymous::Builder::new().build()
        } else {
            google_cloud_auth::credentials::Builder::default()
                .build()
                .map_err(|e| {
                    Problem::Denied(format!(
                        "no Google credentials: {e}; on GCP give the VM or workload a service account, \
                         elsewhere set GOOGLE_APPLICATION_CREDENTIALS to a key file"
                    ))
                })?
        };
        let storage = Storage::builder()
            .with_endpoint(endpoint.to_owned())
            .with_credentials(credentials.clone())
            .with_retry_policy(RetryableErrors.with_time_limit(RETRY_FOR))
            .build()
            .await
            .map_err(|e| Problem::Transient(format!("starting the GCS client: {e}")))?;
        Ok(Clients {
            storage,
            credentials,
        })
    }
}

fn bucket_path(bucket: &str) -> String {
    format!("projects/_/buckets/{bucket}")
}

impl Gcs {
    /// A client with Application Default Credentials: the metadata server
    /// on GCP (`GCE_METADATA_HOST` moves it), `GOOGLE_APPLICATION_CREDENTIALS`
    /// or gcloud's login elsewhere. Against an emulator with none of these
    /// set, no credentials are sent.
    pub async fn new() -> Result<Gcs, Problem> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let emulator = std::env::var("STORAGE_EMULATOR_HOST")
            .ok()
            .filter(|h| !h.trim().is_empty());
        let endpoint = match &emulator {
            Some(h) if h.contains("://") => h.trim_end_matches('/').to_owned(),
            Some(h) => format!("http://{}", h.trim_end_matches('/')),
            None => "https://storage.googleapis.com".to_owned(),
        };
        let clients = Clients::connect(&endpoint, emulator.is_some()).await?;
        let http = reqwest::Client::builder()
            .timeout(RETRY_FOR)
            .build()
            .map_err(|e| Problem::Transient(format!("starting an HTTP client: {e}")))?;
        Ok(Gcs {
            clients: Arc::new(Mutex::new(Arc::new(clients))),
            endpoint,
            emulator: emulator.is_some(),
            http,
        })
    }

    fn clients(&self) -> Arc<Clients> {
        self.clients
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// After a credentials problem: the auth library keeps failing a
    /// credential whose token was once refused, so the next call starts
    /// with fresh ones (a fixed service account then works without a
    /// restart).
    async fn renew(&self, problem: &Problem) {
        if !matches!(problem, Problem::Denied(_)) {
            return;
        }
        if let Ok(c) = Clients::connect(&self.endpoint, self.emulator).await {
            *self.clients.lock().unwrap_or_else(|p| p.into_inner()) = Arc::new(c);
        }
    }

    /// An object's bytes and generation; `Ok(None)` when the object is
    /// absent from a bucket that exists.
    pub async fn read(
        &self,
        bucket: &str,
        object: &str,
    ) -> Result<Option<(Vec<u8>, i64)>, Problem> {
        let r = self.read_once(bucket, object).await;
        if let Err(p) = &r {
            self.renew(p).await;
        }
        r
    }

    async fn read_once(
        &self,
        bucket: &str,
        object: &str,
    ) -> Result<Option<(Vec<u8>, i64)>, Problem> {
        let what = format!("reading gs://{bucket}/{object}");
        let mut resp = match self
            .clients()
            .storage
            .read_object(bucket_path(bucket), object)
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) if e.http_status_code() == Some(404) => {
                return match self.bucket_exists(bucket).await? {
                    true => Ok(None),
                    false => Err(Problem::Missing(format!(
                        "{what}: bucket `{bucket}` does not exist (or is not visible to these credentials)"
                    ))),
                };
            }
            Err(e) => return Err(classify(&what, &e)),
        };
        let generation = resp.object().generation;
        let mut bytes = Vec::new();
        while let Some(chunk) = resp.next().await {
            bytes.extend_from_slice(&chunk.map_err(|e| classify(&what, &e))?);
        }
        Ok(Some((bytes, generation)))
    }

    /// Writes an object; with `if_generation` the write happens only if
    /// the object is at that generation (0: absent). Returns the new
    /// generation.
    pub async fn write(
        &self,
        bucket: &str,
        object: &str,
        bytes: Vec<u8>,
        if_generation: Option<i64>,
    ) -> Result<i64, Problem> {
        self.write_with(bucket, object, bytes, if_generation, &[])
            .await
    }

    /// [`write`](Self::write) with custom metadata, which listings return.
    pub async fn write_with(
        &self,
        bucket: &str,
        object: &str,
        bytes: Vec<u8>,
        if_generation: Option<i64>,
        metadata: &[(&str, &str)],
    ) -> Result<i64, Problem> {
        let what = format!("writing gs://{bucket}/{object}");
        let mut w = self.clients().storage.write_object(
            bucket_path(bucket),
            object,
            bytes::Bytes::from(bytes),
        );
        if let Some(g) = if_generation {
            w = w.set_if_generation_match(g);
        }
        if !metadata.is_empty() {
            w = w.set_metadata(metadata.iter().copied());
        }
        let problem = match w.send_buffered().await {
            Ok(o) => return Ok(o.generation),
            Err(e) if e.http_status_code() == Some(412) => Problem::Precondition,
            Err(e) => classify(&what, &e),
        };
        self.renew(&problem).await;
        Err(problem)
    }

    /// The objects under `prefix`, with their age by the store's clock
    /// (its `Date` against their `updated`), so nodes' clocks need not agree.
    pub async fn list(&self, bucket: &str, prefix: &str) -> Result<Vec<Listed>, Problem> {
        let what = format!("listing gs://{bucket}/{prefix}");
        let url = format!("{}/storage/v1/b/{bucket}/o", self.endpoint);
        let mut out = Vec::new();
        let mut page: Option<String> = None;
        loop {
            let mut query = vec![("prefix", prefix.to_owned())];
            if let Some(p) = &page {
                query.push(("pageToken", p.clone()));
            }
            let req = self.http.get(&url).query(&query);
            let resp = match self.send(req, &what).await {
                Err(Problem::Missing(_)) => {
                    return Err(Problem::Missing(format!(
                        "{what}: bucket `{bucket}` does not exist (or is not visible to these credentials)"
                    )));
                }
                r => r?,
            };
            let now = server_time(resp.headers());
            let body: ObjectList = resp
                .json()
                .await
                .map_err(|e| Problem::Transient(format!("{what}: unreadable answer: {e}")))?;
            for o in body.items {
                let updated = humantime::parse_rfc3339(&o.updated).unwrap_or(now);
                out.push(Listed {
                    name: o.name,
                    generation: o.generation.parse().unwrap_or(0),
                    age: now.duration_since(updated).unwrap_or_default(),
                    metadata: o.metadata,
                });
            }
            match body.next_page_token {
                Some(t) if !t.is_empty() => page = Some(t),
                _ => return Ok(out),
            }
        }
    }

    /// Deletes an object if it is still at `generation`; an object already
    /// gone counts as deleted.
    pub async fn delete(&self, bucket: &str, object: &str, generation: i64) -> Result<(), Problem> {
        let what = format!("deleting gs://{bucket}/{object}");
        let url = format!(
            "{}/storage/v1/b/{bucket}/o/{}",
            self.endpoint,
            percent_encode(object)
        );
        let req = self
            .http
            .delete(&url)
            .query(&[("ifGenerationMatch", generation.to_string())]);
        match self.send(req, &what).await {
            Ok(_) | Err(Problem::Missing(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn bucket_exists(&self, bucket: &str) -> Result<bool, Problem> {
        let what = format!("reading bucket `{bucket}`");
        let url = format!("{}/storage/v1/b/{bucket}", self.endpoint);
        match self.send(self.http.get(&url), &what).await {
            Ok(_) => Ok(true),
            Err(Problem::Missing(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// One JSON API call with the credentials' headers; a non-2xx answer
    /// becomes the matching problem.
    async fn send(
        &self,
        req: reqwest::RequestBuilder,
        what: &str,
    ) -> Result<reqwest::Response, Problem> {
        let headers = match self.clients().credentials.headers(Default::default()).await {
            Ok(google_cloud_auth::credentials::CacheableResource::New { data, .. }) => data,
            Ok(_) => Default::default(),
            Err(e) => {
                let problem = credentials_problem(what, &e.to_string());
                self.renew(&problem).await;
                return Err(problem);
            }
        };
        let resp = req
            .headers(headers)
            .send()
            .await
            .map_err(|e| Problem::Transient(format!("{what}: {e}")))?;
        let status = resp.status().as_u16();
        if resp.status().is_success() {
            return Ok(resp);
        }
        let body = resp.text().await.unwrap_or_default();
        Err(by_status(what, status, body.trim()))
    }
}

fn classify(what: &str, e: &google_cloud_storage::Error) -> Problem {
    if e.is_authentication() {
        return credentials_problem(what, &e.to_string());
    }
    match e.http_status_code() {
        Some(code) => {
            let body = e
                .http_payload()
                .map(|b| String::from_utf8_lossy(b).trim().to_owned())
                .unwrap_or_else(|| e.to_string());
            by_status(what, code, &body)
        }
        None => Problem::Transient(format!("{what}: {e}")),
    }
}

fn credentials_problem(what: &str, e: &str) -> Problem {
    Problem::Denied(format!(
        "{what}: no usable Google credentials ({e}); on GCP give the VM or workload a service account \
         that may read the bucket, elsewhere set GOOGLE_APPLICATION_CREDENTIALS to a key file"
    ))
}

fn by_status(what: &str, status: u16, body: &str) -> Problem {
    let detail = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
        .unwrap_or_else(|| body.to_owned());
    match status {
        401 | 403 => Problem::Denied(format!(
            "{what}: permission denied ({status} {detail}); grant the node's service account \
             roles/storage.objectViewer on the bucket (objectAdmin to push or use bucket discovery)"
        )),
        404 => Problem::Missing(format!("{what}: not found ({detail})")),
        412 => Problem::Precondition,
        _ => Problem::Transient(format!("{what}: {status} {detail}")),
    }
}

/// The store's clock, from the answer's `Date`.
fn server_time(headers: &reqwest::header::HeaderMap) -> std::time::SystemTime {
    headers
        .get(reqwest::header::DATE)
        .and_then(|d| d.to_str().ok())
        .and_then(|d| httpdate::parse_http_date(d).ok())
        .unwrap_or_else(std::time::SystemTime::now)
}

/// An object name as one path segment (`/` included).
fn percent_encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ObjectList {
    #[serde(default)]
    items: Vec<ObjectEntry>,
    next_page_token: Option<String>,
}

#[derive(serde::Deserialize)]
struct ObjectEntry {
    name: String,
    #[serde(default)]
    generation: String,
    #[serde(default)]
    updated: String,
    #[serde(default)]
    metadata: std::collections::HashMap<String, String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_a_bucket_and_an_object() {
        assert_eq!(
            parse_url("gs://b/dir/c.yaml").unwrap(),
            ("b".into(), "dir/c.yaml".into())
        );
        for bad in [
            "b/c.yaml",
            "gs://b",
            "gs://b/",
            "gs:///c.yaml",
            "gs://b/dir/",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn listing_times_are_read() {
        // As fake-gcs-server and GCS write `updated`.
        let t = humantime::parse_rfc3339("2026-11-21T09:44:46.868905Z").unwrap();
        assert_eq!(
            humantime::format_rfc3339_micros(t).to_string(),
            "2026-11-21T09:44:46.868905Z"
        );
        let mut h = reqwest::header::HeaderMap::new();
        h.insert(
            reqwest::header::DATE,
            "Sun, 06 Nov 1994 08:49:37 GMT".parse().unwrap(),
        );
        assert_eq!(
            humantime::format_rfc3339(server_time(&h)).to_string(),
            "1994-11-06T08:49:37Z"
        );
    }

    #[test]
    fn statuses_sort_into_what_to_do() {
        assert!(by_status("x", 404, "").is_permanent());
        assert!(by_status("x", 403, r#"{"error":{"message":"no"}}"#).is_permanent());
        assert_eq!(by_status("x", 412, ""), Problem::Precondition);
        assert!(!by_status("x", 503, "").is_permanent());
    }
}
