//! `podiam cluster publish-issuer`: a cluster's OpenID discovery document and keys, written to
//! the S3 bucket its issuer URL names, so that AWS STS can verify its tokens (IRSA into AWS).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::Args;
use podiam_aws::S3Objects;
use podiam_aws::issuer::{
    DISCOVERY_PATH, JWKS_PATH, S3Destination, check_jwks, discovery_document,
};
use serde_json::Value;

use crate::apiserver_jwks::Apiserver;
use crate::cli_io::read_input;
use crate::cluster_cmd::{Connection, explain, runtime};

/// Publish a cluster's issuer to S3 for AWS: its discovery document and JWKS.
///
/// The cluster's issuer URL must be the bucket's public HTTPS URL
/// (https://BUCKET.s3.REGION.amazonaws.com/PREFIX), since tokens name their issuer and AWS
/// fetches its keys from there; create the cluster with that --issuer-url. The keys are the
/// hosted issuer's from the podiam server (a rotated-out key stays until its tokens have
/// expired: publish again after `podiam keys rotate --kind issuer`), or an external issuer's
/// (read from its apiserver with --apiserver, or saved with
/// `kubectl get --raw /openid/v1/jwks > jwks.json` and given with --jwks-file). The bucket must
/// let anyone read the two objects. S3 is reached with the AWS SDK's standard configuration
/// (AWS_ENDPOINT_URL_S3, not AWS_ENDPOINT_URL); the podiam server with --endpoint or
/// AWS_ENDPOINT_URL.
#[derive(Debug, Args)]
pub(crate) struct PublishIssuerArgs {
    /// The cluster.
    #[arg(long)]
    name: String,
    /// Where to write: s3://BUCKET/PREFIX
    #[arg(long, value_name = "S3_URL")]
    to: String,
    /// The JWKS to publish instead of the one the server holds (an external issuer's)
    #[arg(long, value_name = "FILE", conflicts_with = "apiserver")]
    jwks_file: Option<PathBuf>,
    /// Read an external issuer's JWKS from its kube-apiserver (https://HOST:6443), at
    /// /openid/v1/jwks, after checking that its issuer is the cluster's
    #[arg(long, value_name = "URL")]
    apiserver: Option<String>,
    /// CAs to trust for --apiserver (PEM), besides the system's: the cluster's CA
    #[arg(long, value_name = "FILE", requires = "apiserver")]
    apiserver_ca: Option<PathBuf>,
    /// A bearer token for --apiserver, from a file (e.g. `kubectl create token`'s output)
    #[arg(long, value_name = "FILE", requires = "apiserver")]
    apiserver_token_file: Option<PathBuf>,
    /// The AWS profile whose credentials write to S3 [default: the standard credential chain]
    #[arg(long, value_name = "NAME")]
    aws_profile: Option<String>,
    #[command(flatten)]
    connection: Connection,
}

pub(crate) fn publish_issuer(args: &PublishIssuerArgs) -> anyhow::Result<ExitCode> {
    let destination = S3Destination::parse(&args.to).map_err(anyhow::Error::msg)?;
    let client = args.connection.client()?;
    let path = format!(
        "/clusters/{}/podiam/jwks",
        podiam_sigv4::encode_component(args.name.as_bytes(), true)
    );
    let runtime = runtime()?;
    let answer = runtime
        .block_on(client.rest_json("eks", http::Method::GET, &path, None))
        .map_err(explain)?;
    let issuer = answer
        .body
        .get("issuer")
        .and_then(Value::as_str)
        .context("the server's answer has no issuer")?
        .trim_end_matches('/')
        .to_owned();
    destination
        .check_issuer(&issuer)
        .map_err(anyhow::Error::msg)?;
    let jwks: Value = match (&args.jwks_file, &args.apiserver) {
        (Some(file), _) => serde_json::from_str(&read_input(file)?)
            .with_context(|| format!("{} is not a JWKS (JSON)", file.display()))?,
        (None, Some(url)) => {
            let apiserver = Apiserver {
                url,
                ca_file: args.apiserver_ca.as_deref(),
                token_file: args.apiserver_token_file.as_deref(),
            };
            runtime.block_on(apiserver.jwks(&issuer))?
        }
        (None, None) => answer
            .body
            .get("jwks")
            .cloned()
            .context("the server's answer has no jwks")?,
    };
    let keys = check_jwks(&jwks).map_err(anyhow::Error::msg)?;
    let discovery = discovery_document(&issuer);
    runtime.block_on(async {
        let s3 = S3Objects::from_environment(args.aws_profile.as_deref()).await;
        for (path, document) in [(JWKS_PATH, &jwks), (DISCOVERY_PATH, &discovery)] {
            let key = destination.key(path);
            let body = serde_json::to_vec_pretty(document)?;
            if let Err(e) = s3.put_json(&destination.bucket, &key, body).await {
                bail!(
                    "cannot write s3://{}/{key}: {e} (S3 uses the standard AWS credentials; pass --aws-profile if those are podiam's)",
                    destination.bucket
                );
            }
            eprintln!("wrote s3://{}/{key}", destination.bucket);
        }
        Ok(())
    })?;
    println!("Published issuer {issuer} ({keys} key(s)).");
    println!("Register it with AWS IAM once (the bucket must allow public reads of both objects):");
    println!(
        "  aws iam create-open-id-connect-provider --url {issuer} --client-id-list sts.amazonaws.com"
    );
    Ok(ExitCode::SUCCESS)
}
