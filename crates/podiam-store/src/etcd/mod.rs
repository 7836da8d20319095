//! The store over an etcd v3 cluster: [`EtcdStore`].
//!
//! - `client`: one member's gRPC client (tonic), with etcd's auth token and leader header;
//! - `members`: failover across the members, inside the store;
//! - `store`: the [`crate::Store`] contract over etcd's KV and Watch services;
//! - `proto`: the gRPC messages and clients, generated from `proto/etcd` and checked in, so
//!   that building podiam needs no `protoc` (`tests/etcd_generated_code.rs` checks they are
//!   current).

mod client;
mod members;
mod proto;
mod store;

pub use store::{EtcdOptions, EtcdStore};
