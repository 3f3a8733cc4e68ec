//! The cluster token: added to outgoing calls, checked on incoming ones
//! in constant time, and proved by a peer before the token is sent to it.
//!
//! Discovery hands a node addresses it did not choose (whatever passes a
//! Consul check, whatever heartbeat object is in the bucket), so a node
//! must not send the token to an address just because discovery named
//! it. A peer proves it holds the token by answering a fresh challenge
//! with an HMAC over the challenge and its own address; binding the
//! address in means a rogue cannot relay a real node's answer as its own.

use hmac::{KeyInit, Mac};
use subtle::ConstantTimeEq;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::{Request, Status};

type HmacSha256 = hmac::Hmac<sha2_11::Sha256>;

const AUTH: &str = "authorization";
const PROOF_CONTEXT: &[u8] = b"loadtest hello proof v1\0";

/// Adds the token to outgoing calls.
#[derive(Clone)]
pub struct AddToken(pub Option<MetadataValue<Ascii>>);

impl AddToken {
    pub fn new(token: Option<&str>) -> anyhow::Result<Self> {
        let value = token
            .map(|t| {
                let mut v: MetadataValue<Ascii> = format!("Bearer {t}").parse()?;
                // Kept out of HPACK's tables and out of debug output.
                v.set_sensitive(true);
                Ok::<_, tonic::metadata::errors::InvalidMetadataValue>(v)
            })
            .transpose()
            .map_err(|_| anyhow::anyhow!("CLUSTER_TOKEN must be printable ASCII"))?;
        Ok(AddToken(value))
    }

    /// A copy that sends nothing, for calls to peers not yet proven.
    pub fn none() -> Self {
        AddToken(None)
    }
}

impl std::fmt::Debug for AddToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "AddToken(<redacted>)"
        } else {
            "AddToken(none)"
        })
    }
}

impl tonic::service::Interceptor for AddToken {
    fn call(&mut self, mut req: Request<()>) -> Result<Request<()>, Status> {
        if let Some(v) = &self.0 {
            req.metadata_mut().insert(AUTH, v.clone());
        }
        Ok(req)
    }
}

/// Rejects incoming calls without the token (when one is configured).
#[derive(Clone)]
pub struct CheckToken(Option<String>);

impl CheckToken {
    pub fn new(token: Option<&str>) -> Self {
        CheckToken(token.map(str::to_owned))
    }

    /// Whether `header` (an `Authorization` value) carries the token;
    /// true when no token is configured.
    pub fn accepts(&self, header: Option<&str>) -> bool {
        let Some(token) = &self.0 else { return true };
        header
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|given| tokens_equal(given, token))
    }
}

impl tonic::service::Interceptor for CheckToken {
    fn call(&mut self, req: Request<()>) -> Result<Request<()>, Status> {
        let header = req.metadata().get(AUTH).and_then(|v| v.to_str().ok());
        match (self.accepts(header), header) {
            (true, _) => Ok(req),
            (false, Some(_)) => Err(Status::unauthenticated("wrong cluster token")),
            (false, None) => Err(Status::unauthenticated(
                "this cluster requires a token (CLUSTER_TOKEN) or a client certificate",
            )),
        }
    }
}

/// Constant time in the contents; only the lengths leak.
pub fn tokens_equal(given: &str, token: &str) -> bool {
    bool::from(given.as_bytes().ct_eq(token.as_bytes()))
}

fn mac(token: &str, challenge: &[u8], addr: &str) -> HmacSha256 {
    let mut m = <HmacSha256 as KeyInit>::new_from_slice(token.as_bytes())
        .expect("HMAC takes a key of any length");
    m.update(PROOF_CONTEXT);
    m.update(&(challenge.len() as u32).to_be_bytes());
    m.update(challenge);
    m.update(addr.as_bytes());
    m
}

/// The answer to a hello's challenge by the node at `addr`.
pub fn proof(token: &str, challenge: &[u8], addr: &str) -> Vec<u8> {
    mac(token, challenge, addr).finalize().into_bytes().to_vec()
}

/// Whether `proof` answers `challenge` for a node at `addr` that holds
/// `token` (compared in constant time).
pub fn proof_ok(token: &str, challenge: &[u8], addr: &str, proof: &[u8]) -> bool {
    !challenge.is_empty() && mac(token, challenge, addr).verify_slice(proof).is_ok()
}

/// Fresh random challenge bytes.
pub fn challenge() -> Vec<u8> {
    use rand::{RngCore, SeedableRng, TryRngCore};
    let mut c = [0u8; 16];
    if rand::rngs::OsRng.try_fill_bytes(&mut c).is_err() {
        // No OS randomness (never seen): still fresh per call.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        rand::rngs::SmallRng::seed_from_u64(nanos).fill_bytes(&mut c);
    }
    c.to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proof_holds_only_for_its_token_challenge_and_address() {
        let c = challenge();
        let p = proof("s3cret", &c, "10.0.0.1:7000");
        assert!(proof_ok("s3cret", &c, "10.0.0.1:7000", &p));
        assert!(!proof_ok("other", &c, "10.0.0.1:7000", &p));
        // A rogue at another address relaying a real node's answer.
        assert!(!proof_ok("s3cret", &c, "10.0.0.9:7000", &p));
        assert!(!proof_ok("s3cret", &challenge(), "10.0.0.1:7000", &p));
        assert!(!proof_ok("s3cret", &c, "10.0.0.1:7000", &[]));
        assert!(!proof_ok(
            "s3cret",
            &[],
            "10.0.0.1:7000",
            &proof("s3cret", &[], "10.0.0.1:7000")
        ));
    }

    #[test]
    fn the_token_check_takes_only_the_exact_bearer_token() {
        let check = CheckToken::new(Some("s3cret"));
        assert!(check.accepts(Some("Bearer s3cret")));
        assert!(!check.accepts(Some("Bearer s3cre")));
        assert!(!check.accepts(Some("Bearer s3cretX")));
        assert!(!check.accepts(Some("s3cret")));
        assert!(!check.accepts(None));
        assert!(CheckToken::new(None).accepts(None));
        let shown = format!("{:?}", AddToken::new(Some("s3cret")).unwrap());
        assert!(!shown.contains("s3cret"), "{shown}");
    }
}
