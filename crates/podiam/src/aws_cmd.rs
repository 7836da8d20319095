//! `podiam aws`: what real AWS must be told about podiam (issue 20).

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use podiam_aws::trust::{pod_identity_trust_policy, principal_of};
use podiam_aws::{AwsIdentity as _, SdkAws};
use podiam_eks::{Upstream, UpstreamAccounts};
use podiam_process::exit_on;

/// `podiam aws` subcommands. podiam's identity comes from the AWS SDK's standard
/// configuration: credentials, region, `AWS_ENDPOINT_URL_STS`.
#[derive(Debug, Subcommand)]
pub(crate) enum AwsCommand {
    TrustPolicy(TrustPolicyArgs),
}

/// Print the trust policy of an AWS role that podiam hands to one workload.
///
/// As EKS Pod Identity's: it trusts podiam's own principal with sts:AssumeRole and
/// sts:TagSession, only when the session tags name this cluster, namespace and service
/// account. The principal is podiam's own AWS identity (sts:GetCallerIdentity), unless --principal
/// names it. Put the policy on the role with `aws iam update-assume-role-policy`.
#[derive(Debug, Args)]
pub(crate) struct TrustPolicyArgs {
    /// The cluster (the eks-cluster-name session tag)
    #[arg(long)]
    cluster: String,
    /// The service account's namespace (the kubernetes-namespace session tag)
    #[arg(long)]
    namespace: String,
    /// The service account (the kubernetes-service-account session tag)
    #[arg(long)]
    service_account: String,
    /// The principal to trust, instead of asking AWS who podiam is: an IAM user, a role, an
    /// account root, or an assumed role's session ARN (its role is named)
    #[arg(long, value_name = "ARN")]
    principal: Option<String>,
}

/// `--aws-upstream-account`, for `podiam server` and `podiam dev`.
#[derive(Debug, Args)]
pub(crate) struct UpstreamArgs {
    /// An AWS account whose roles are real AWS roles (repeatable). For an association's role
    /// or target role there, AssumeRoleForPodIdentity verifies the pod as always, then calls
    /// AWS STS AssumeRole as podiam, with EKS's session name and session tags; the role's
    /// trust policy decides (`podiam aws trust-policy` prints it). podiam's AWS identity comes
    /// from the AWS SDK's standard configuration (environment, profile, credential_process,
    /// web identity, instance profile; AWS_ENDPOINT_URL_STS)
    #[arg(long = "aws-upstream-account", value_name = "ACCOUNT_ID", value_parser = account_id)]
    accounts: Vec<String>,
}

fn account_id(value: &str) -> Result<String, String> {
    if value.len() == 12 && value.bytes().all(|b| b.is_ascii_digit()) {
        Ok(value.to_owned())
    } else {
        Err("an AWS account id is 12 digits".to_owned())
    }
}

impl UpstreamArgs {
    /// The broker's view of AWS, when any account is given.
    pub(crate) async fn upstream(&self) -> Option<Upstream> {
        if self.accounts.is_empty() {
            return None;
        }
        Some(Upstream {
            accounts: UpstreamAccounts::new(self.accounts.iter().cloned()),
            roles: Arc::new(SdkAws::from_environment().await),
        })
    }
}

pub(crate) fn run(command: AwsCommand) -> ExitCode {
    exit_on(match command {
        AwsCommand::TrustPolicy(args) => trust_policy(&args),
    })
}

fn trust_policy(args: &TrustPolicyArgs) -> anyhow::Result<ExitCode> {
    let caller = match &args.principal {
        Some(arn) => arn.clone(),
        None => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            runtime
                .block_on(async { SdkAws::from_environment().await.caller().await })
                .context(
                    "cannot ask AWS who podiam is (sts:GetCallerIdentity with the standard credentials); check them, or pass --principal",
                )?
                .arn
        }
    };
    let principal = principal_of(&caller)?;
    if let Some(caveat) = &principal.caveat {
        eprintln!("note: {caveat}");
    }
    let policy = pod_identity_trust_policy(
        &principal.arn,
        &args.cluster,
        &args.namespace,
        &args.service_account,
    );
    println!("{}", serde_json::to_string_pretty(&policy)?);
    Ok(ExitCode::SUCCESS)
}
