//! Compiles the protos with protox (pure Rust), so that a fresh machine needs no
//! system `protoc`, and keeps the descriptor set that server reflection serves.

use std::path::PathBuf;

const PROTOS: &[&str] = &[
    "proto/ladder/v1/common.proto",
    "proto/ladder/v1/rubric.proto",
    "proto/ladder/v1/assessment.proto",
    "proto/ladder/v1/recommendation.proto",
    "proto/ladder/v1/calibration.proto",
    "proto/ladder/v1/framework.proto",
    "proto/ladder/v1/xapi.proto",
    "proto/ladder/v1/oversight.proto",
    "proto/ladder/v1/audit.proto",
    "proto/ladder/v1/subject_rights.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let mut compiler = protox::Compiler::new(["proto"])?;
    compiler
        .include_source_info(true)
        .include_imports(true)
        .open_files(PROTOS)?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    // Encoded by protox itself: prost's FieldOptions would drop the
    // `google.api.field_behavior` extension the server enforces
    // (src/transport/required.rs).
    std::fs::write(
        out_dir.join("ladder_descriptor.bin"),
        compiler.encode_file_descriptor_set(),
    )?;
    let fds = compiler.file_descriptor_set();
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .generate_default_stubs(true)
        // Bounds requests on their bytes before decoding (src/transport/wire.rs).
        .codec_path("crate::transport::wire::BoundedCodec")
        .compile_fds(fds)?;
    Ok(())
}
