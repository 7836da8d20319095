//! The etcd client's gRPC code is generated from `proto/etcd/*.proto` and checked in, so that
//! building podiam needs no `protoc`. This test generates it again, with protox (a protobuf
//! compiler in Rust) and tonic-prost-build, and fails when the checked-in code differs.
//!
//! After changing a `.proto` file: `PODIAM_REGENERATE=1 cargo nextest run -p podiam-store
//! --test etcd_generated_code` writes the new code.

use std::path::{Path, PathBuf};

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn generate(out: &Path) -> Result<(), String> {
    let proto = crate_dir().join("proto/etcd");
    let files = protox::compile([proto.join("rpc.proto")], [&proto])
        .map_err(|e| format!("the etcd protos do not compile: {e:?}"))?;
    tonic_prost_build::configure()
        .build_server(false)
        .build_transport(false)
        .out_dir(out)
        .compile_fds(files)
        .map_err(|e| format!("generating the etcd client failed: {e}"))
}

#[test]
fn checked_in_etcd_code_is_current() {
    let out = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
    if let Err(e) = generate(out.path()) {
        panic!("{e}");
    }
    let checked_in = crate_dir().join("src/etcd/generated");
    let regenerate = std::env::var_os("PODIAM_REGENERATE").is_some();
    for name in ["etcdserverpb.rs", "mvccpb.rs"] {
        let fresh = std::fs::read_to_string(out.path().join(name))
            .unwrap_or_else(|e| panic!("{name} was not generated: {e}"));
        let path = checked_in.join(name);
        if regenerate {
            std::fs::write(&path, &fresh).unwrap_or_else(|e| panic!("writing {name}: {e}"));
            continue;
        }
        let current = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            current == fresh,
            "src/etcd/generated/{name} is not what proto/etcd generates; run \
             PODIAM_REGENERATE=1 cargo nextest run -p podiam-store --test etcd_generated_code"
        );
    }
}
