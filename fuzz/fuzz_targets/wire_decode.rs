//! What a peer can send a node: protobuf frames, and the JSON inside
//! them for every message type a node decodes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use loadtest_wire::command::{Command, Op, TypeConfig};
use loadtest_wire::plan::{Batch, Plan};
use loadtest_wire::rpc::{decode, pb};
use openraft::raft::{AppendEntriesRequest, InstallSnapshotRequest, VoteRequest};
use prost::Message;

fuzz_target!(|data: &[u8]| {
    let _ = pb::Payload::decode(data);
    let _ = pb::HelloRequest::decode(data);
    let _ = pb::HelloReply::decode(data);
    let _ = pb::BlobChunk::decode(data);
    let p = pb::Payload { json: data.to_vec(), format: 1, data: Vec::new() };
    let _ = decode::<Batch>(&p);
    let _ = decode::<Plan>(&p);
    let _ = decode::<Op>(&p);
    let _ = decode::<Command>(&p);
    let _ = decode::<AppendEntriesRequest<TypeConfig>>(&p);
    let _ = decode::<InstallSnapshotRequest<TypeConfig>>(&p);
    let _ = decode::<VoteRequest<u64>>(&p);
});
