//! Compiles `proto/` with protox (pure Rust, no system `protoc`) and writes the file
//! descriptor set that gRPC reflection serves.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Read when the script runs, not when it was compiled: a compiled build script can
    // be reused for a checkout in another directory.
    let proto_root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let files = [
        "haven/common/v1/events.proto",
        "haven/common/v1/paging.proto",
        "haven/intake/v1/intake.proto",
        "haven/intake/v1/clocks.proto",
        "haven/intake/v1/indicator_sets.proto",
        "haven/case/v1/case.proto",
        "haven/referral/v1/referral.proto",
        "haven/reporting/v1/reporting.proto",
    ];
    println!("cargo:rerun-if-changed={}", proto_root.display());

    let mut compiler = protox::Compiler::new([&proto_root])?;
    compiler.include_imports(true).include_source_info(true);
    compiler.open_files(files)?;

    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("haven_descriptor.bin"),
        compiler.encode_file_descriptor_set(),
    )?;

    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(compiler.file_descriptor_set())?;
    Ok(())
}
