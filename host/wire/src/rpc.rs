//! The generated gRPC code and the JSON payload helpers.

#![allow(clippy::all)]

pub mod pb {
    tonic::include_proto!("loadtest.cluster.v1");
}

use crate::{FORMAT, check_format};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tonic::Status;

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
