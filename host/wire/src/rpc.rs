//! The generated gRPC code, JSON payload helpers, and the shared-token
//! check every cluster RPC goes through.

#![allow(clippy::all)]

pub mod pb {
    tonic::include_proto!("loadtest.cluster.v1");
}

use crate::{FORMAT, check_format};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tonic::metadata::MetadataValue;
use tonic::{Request, Status};

pub fn encode<T: Serialize>(v: &T) -> Result<pb::Payload, Status> {
    serde_json::to_vec(v)
        .map(|json| pb::Payload {
            json,
            format: FORMAT,
        })
        .map_err(|e| Status::internal(format!("encode: {e}")))
}

pub fn decode<T: DeserializeOwned>(p: &pb::Payload) -> Result<T, Status> {
    format_ok("this message", p.format)?;
    serde_json::from_slice(&p.json).map_err(|e| Status::invalid_argument(format!("decode: {e}")))
}

/// Refuses a message of a newer format than this build reads, saying so.
pub fn format_ok(what: &str, format: u32) -> Result<(), Status> {
    check_format(what, format).map_err(Status::failed_precondition)
}

const AUTH: &str = "authorization";

/// Adds the token to outgoing calls.
#[derive(Clone)]
pub struct AddToken(pub Option<MetadataValue<tonic::metadata::Ascii>>);

impl AddToken {
    pub fn new(token: Option<&str>) -> anyhow::Result<Self> {
        let value = token
            .map(|t| format!("Bearer {t}").parse())
            .transpose()
            .map_err(|_| anyhow::anyhow!("CLUSTER_TOKEN must be printable ASCII"))?;
        Ok(AddToken(value))
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
pub struct CheckToken(pub Option<String>);

impl tonic::service::Interceptor for CheckToken {
    fn call(&mut self, req: Request<()>) -> Result<Request<()>, Status> {
        let Some(token) = &self.0 else { return Ok(req) };
        let given = req
            .metadata()
            .get(AUTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        match given {
            Some(g) if constant_time_eq(g.as_bytes(), token.as_bytes()) => Ok(req),
            Some(_) => Err(Status::unauthenticated("wrong cluster token")),
            None => Err(Status::unauthenticated(
                "this cluster requires a token (CLUSTER_TOKEN)",
            )),
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_of_a_newer_format_is_refused_as_such() {
        let mut p = encode(&vec!["a"]).unwrap();
        assert_eq!(p.format, FORMAT);
        assert_eq!(decode::<Vec<String>>(&p).unwrap(), ["a"]);
        p.format = FORMAT + 1;
        let err = decode::<Vec<String>>(&p).unwrap_err();
        assert_eq!(err.code(), tonic::Code::FailedPrecondition);
        assert!(
            err.message().contains("upgrade this node"),
            "{}",
            err.message()
        );
        // Builds from before versioning send no format (0): read as format 1.
        p.format = 0;
        assert_eq!(decode::<Vec<String>>(&p).unwrap(), ["a"]);
    }
}
