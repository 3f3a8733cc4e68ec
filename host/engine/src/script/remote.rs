//! Modules a script imports by URL (`import { uuidv4 } from
//! 'https://jslib.k6.io/k6-utils/1.4.0/index.js'`), fetched once when the
//! script is bundled, as k6 fetches them at start. They then travel in
//! the Bundle under their URL, so the VUs and a cluster's nodes fetch
//! nothing. Fetched with the engine's own client (its TLS roots are the
//! system's), following redirects.

use crate::client::{Batching, Client, ClientOptions, Outgoing, Session};
use std::time::Duration;

/// Whether an import names a module by URL.
pub fn is_url(specifier: &str) -> bool {
    specifier.starts_with("https://") || specifier.starts_with("http://")
}

/// `specifier`, imported by module `base` (a URL), as a URL: resolved
/// by RFC 3986 alone (no further normalising), as the javascript plugin
/// resolves it, so that both name the module alike.
pub fn join(base: &str, specifier: &str) -> anyhow::Result<String> {
    use iri_string::types::{UriAbsoluteStr, UriReferenceStr};
    let base = UriAbsoluteStr::new(base).map_err(|e| anyhow::anyhow!("`{base}`: {e}"))?;
    let reference = UriReferenceStr::new(specifier)
        .map_err(|e| anyhow::anyhow!("`{specifier}` imported by {base}: {e}"))?;
    Ok(reference.resolve_against(base).to_string())
}

/// Largest module fetched: a script's dependency, not a download.
const MAX_MODULE: u64 = 16 << 20;
/// For one module, redirects included.
const TIMEOUT: Duration = Duration::from_secs(30);
/// How many modules, and how many bytes in all, a script may import by
/// URL: a server that makes up imports without end stops here.
pub const MAX_MODULES: usize = 200;
pub const MAX_TOTAL: usize = 64 << 20;

/// The module at `url`. Blocks: bundling is synchronous, and it may run
/// inside the engine's runtime, so the fetch gets a thread and a runtime
/// of its own.
pub fn fetch(url: &str) -> anyhow::Result<Vec<u8>> {
    let owned = url.to_owned();
    std::thread::scope(|s| {
        s.spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async {
                tokio::time::timeout(TIMEOUT, get(&owned))
                    .await
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("no answer within {TIMEOUT:?}")))
            })
        })
        .join()
        .unwrap_or_else(|_| Err(anyhow::anyhow!("the fetch of {url} panicked")))
    })
    .map_err(|e| {
        anyhow::anyhow!(
            "cannot import {url}: {e:#} (a module imported by URL is fetched when the script is bundled; \
             without network access, save it next to the script and import it as `./name.js`)"
        )
    })
}

async fn get(url: &str) -> anyhow::Result<Vec<u8>> {
    let client = Client::new(&ClientOptions {
        base: None,
        timeout: TIMEOUT,
        connect_timeout: Duration::from_secs(10),
        max_body: MAX_MODULE,
        max_redirects: 10,
        reset_cookies: false,
        batch: Batching::default(),
        http2_prior_knowledge: false,
        insecure_skip_tls_verify: false,
        egress: Default::default(),
        hosts: Default::default(),
        reuse: Default::default(),
        rps: 0.0,
        debug: Default::default(),
    })?;
    let mut session = Session::new(client, Default::default());
    let exchange = session.send(Outgoing::get(url), None, |_| {}).await;
    let res = exchange.result.map_err(|e| anyhow::anyhow!("{e}"))?;
    if !(200..300).contains(&res.status) {
        anyhow::bail!("the server answered {}", res.status);
    }
    Ok(res.body.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_imports_of_a_remote_module_resolve_against_its_url() {
        let base = "https://jslib.example/utils/1.0/index.js";
        assert_eq!(
            join(base, "./lib.js").unwrap(),
            "https://jslib.example/utils/1.0/lib.js"
        );
        assert_eq!(
            join(base, "../2.0/x.js").unwrap(),
            "https://jslib.example/utils/2.0/x.js"
        );
        assert_eq!(
            join(base, "/root.js").unwrap(),
            "https://jslib.example/root.js"
        );
    }
}
