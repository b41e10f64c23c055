//! The generated `ladder.v1` API: messages, service traits and clients.

#[allow(clippy::all, clippy::pedantic)]
pub mod v1 {
    tonic::include_proto!("ladder.v1");
}

/// The encoded descriptor set of the `ladder.v1` protos, served by reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/ladder_descriptor.bin"));
