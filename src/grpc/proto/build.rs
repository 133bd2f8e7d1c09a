//! Generates the gRPC service code from Qdrant's `.proto` files in this directory, with
//! `protox` (a protobuf compiler in Rust: no `protoc` to install, no network).

const PROTOS: &str = ".";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed={PROTOS}");
    let descriptors = protox::compile([format!("{PROTOS}/qdrant.proto")], [PROTOS])?;
    tonic_prost_build::configure()
        .build_client(false)
        .build_server(true)
        .build_transport(false)
        .compile_fds(descriptors)?;
    Ok(())
}
