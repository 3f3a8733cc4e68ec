//! The generated gRPC code, JSON payload helpers, and the shared-token
//! check every cluster RPC goes through.

#![allow(clippy::all)]

pub mod pb {
    tonic::include_proto!("loadtest.cluster.v1");
}

use serde::Serialize;
use serde::de::DeserializeOwned;
use tonic::metadata::MetadataValue;
use tonic::{Request, Status};

pub fn encode<T: Serialize>(v: &T) -> Result<pb::Payload, Status> {
    serde_json::to_vec(v)
        .map(|json| pb::Payload { json })
        .map_err(|e| Status::internal(format!("encode: {e}")))
}

pub fn decode<T: DeserializeOwned>(p: &pb::Payload) -> Result<T, Status> {
    serde_json::from_slice(&p.json).map_err(|e| Status::invalid_argument(format!("decode: {e}")))
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
