//! Generates the gRPC code for `proto/monk.proto` (needs `protoc` on PATH; CI installs
//! Debian's `protobuf-compiler`).
fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/monk.proto");
    tonic_prost_build::configure().compile_protos(&["proto/monk.proto"], &["proto"])?;
    Ok(())
}
