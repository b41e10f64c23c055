//! The generated `ladder.v1` API: messages, service traits and clients.

#[allow(clippy::all, clippy::pedantic)]
pub mod v1 {
    tonic::include_proto!("ladder.v1");
}

/// The encoded descriptor set of the `ladder.v1` protos, served by reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/ladder_descriptor.bin"));

/// The `ladder.v1` descriptors, decoded once: for the checks and
/// comparisons that walk a message by its fields.
pub fn descriptor_pool() -> &'static prost_reflect::DescriptorPool {
    static POOL: std::sync::LazyLock<prost_reflect::DescriptorPool> =
        std::sync::LazyLock::new(|| {
            prost_reflect::DescriptorPool::decode(FILE_DESCRIPTOR_SET)
                .expect("the compiled ladder.v1 descriptor set")
        });
    &POOL
}
