//! Where to send calls and which region to sign for, found as the AWS CLI finds them.

/// `explicit`, else `AWS_ENDPOINT_URL_<SERVICE>` (e.g. `EKS_AUTH`), else `AWS_ENDPOINT_URL`.
pub fn endpoint(explicit: Option<&str>, service: &str) -> Option<String> {
    explicit
        .map(str::to_owned)
        .or_else(|| std::env::var(format!("AWS_ENDPOINT_URL_{service}")).ok())
        .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok())
        .filter(|e| !e.is_empty())
}

/// `explicit`, else `AWS_REGION`, else `AWS_DEFAULT_REGION`, else `us-east-1`.
pub fn region(explicit: Option<&str>) -> String {
    explicit
        .map(str::to_owned)
        .or_else(|| std::env::var("AWS_REGION").ok())
        .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok())
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| "us-east-1".to_owned())
}
