//! Generates the gRPC client for the few etcd v3 calls the comparison harness makes
//! (`compare/proto/etcd.proto`; needs `protoc` on PATH, as `node` does).
fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=compare/proto/etcd.proto");
    tonic_prost_build::configure()
        .build_server(false)
        .compile_protos(&["compare/proto/etcd.proto"], &["compare/proto"])?;
    Ok(())
}
