//! Command-line flags.

use std::net::SocketAddr;

use clap::Parser;

/// The EKS workshop's carts service: a JSON API over a DynamoDB table.
///
/// Credentials, region and endpoints come from the AWS SDK's default chain (`AWS_*` variables,
/// web identity token file, container credentials, IMDS, shared config files).
#[derive(Debug, Clone, Parser)]
#[command(name = "carts", version)]
pub struct Args {
    /// Address to serve HTTP on (port 0 picks a free port; the bound address is printed).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// DynamoDB table holding the carts (hash key `customerId`, range key `itemId`).
    #[arg(
        long,
        value_name = "NAME",
        default_value = "Items",
        env = "CARTS_DYNAMODB_TABLENAME"
    )]
    pub table: String,

    /// Create the table (on-demand billing) if it does not exist, and wait until it is active.
    #[arg(long)]
    pub create_table: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_flags() {
        let args = Args::try_parse_from(["carts"]).unwrap();
        assert_eq!(args.listen, "127.0.0.1:8080".parse().unwrap());
        assert!(!args.create_table);

        let args = Args::try_parse_from([
            "carts",
            "--listen",
            "0.0.0.0:0",
            "--table",
            "eks-workshop-carts",
            "--create-table",
        ])
        .unwrap();
        assert_eq!(args.listen, "0.0.0.0:0".parse().unwrap());
        assert_eq!(args.table, "eks-workshop-carts");
        assert!(args.create_table);

        assert!(Args::try_parse_from(["carts", "--listen", "not-an-address"]).is_err());
    }

    #[test]
    fn help_is_consistent() {
        use clap::CommandFactory as _;
        Args::command().debug_assert();
    }
}
