//! A small AWS client for podiam's own tools (the CLI and the node agent): the standard
//! credential chain (environment, shared credentials file re-read on change, a web identity
//! token file, IMDSv2) and
//! SigV4-signed rest-json and awsQuery calls to one endpoint or several replicas of it (circuits
//! that skip a replica that does not answer, hedging of calls that are safe to repeat).

mod client;
mod config;
mod credentials;
mod error;
mod imds;
mod web_identity;
pub mod xml;

pub use client::{Answer, AwsClient, Failover, FailoverStats, Repeat, Timeouts, caller_account};
pub use config::{endpoint, region};
pub use credentials::{
    ChainCredentials, Credentials, EnvCredentials, ProfileCredentials, ProvideCredentials,
    StaticCredentials,
};
pub use error::ClientError;
pub use imds::ImdsCredentials;
pub use web_identity::WebIdentityCredentials;
