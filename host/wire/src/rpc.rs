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
            data: Vec::new(),
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

#[cfg(test)]
mod props {
    use super::*;
    use crate::command::{Command, Op, TypeConfig};
    use crate::plan::{Batch, Plan};
    use openraft::raft::{AppendEntriesRequest, InstallSnapshotRequest, VoteRequest};
    use proptest::prelude::*;
    use prost::Message;

    /// Every message a node decodes from a peer, from arbitrary JSON.
    fn decode_all(p: &pb::Payload) {
        let _ = decode::<Batch>(p);
        let _ = decode::<Plan>(p);
        let _ = decode::<Op>(p);
        let _ = decode::<Command>(p);
        let _ = decode::<AppendEntriesRequest<TypeConfig>>(p);
        let _ = decode::<InstallSnapshotRequest<TypeConfig>>(p);
        let _ = decode::<VoteRequest<u64>>(p);
    }

    proptest! {
        #[test]
        fn any_payload_decodes_or_fails_cleanly(bytes in proptest::collection::vec(any::<u8>(), 0..512), format in 0u32..4) {
            decode_all(&pb::Payload { json: bytes.clone(), format, data: bytes.clone() });
            // The same bytes as a protobuf frame of each message type.
            let _ = pb::Payload::decode(bytes.as_slice());
            let _ = pb::HelloRequest::decode(bytes.as_slice());
            let _ = pb::BlobChunk::decode(bytes.as_slice());
        }

        #[test]
        fn json_shaped_payloads_decode_or_fail_cleanly(text in r#"[\[\]{}",:0-9a-z_ .-]{0,300}"#) {
            decode_all(&pb::Payload { json: text.into_bytes(), format: FORMAT, data: Vec::new() });
        }
    }
}
