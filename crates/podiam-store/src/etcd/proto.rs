//! etcd's gRPC messages and clients, as tonic-prost-build generates them from `proto/etcd`.

#![expect(
    clippy::all,
    clippy::pedantic,
    unused_qualifications,
    reason = "generated code, checked in unchanged"
)]

pub(crate) mod mvccpb {
    include!("generated/mvccpb.rs");
}

pub(crate) mod etcdserverpb {
    include!("generated/etcdserverpb.rs");
}
