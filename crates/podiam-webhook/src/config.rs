//! The mutation's configuration: the reference webhook's flags and their defaults.

/// How pods are mutated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MutationConfig {
    /// Annotation (and label) prefix: `eks.amazonaws.com`.
    pub annotation_prefix: String,
    /// IRSA token audience: `sts.amazonaws.com`.
    pub token_audience: String,
    /// Where the IRSA token is mounted.
    pub token_mount_path: String,
    /// Default token lifetime in seconds (at least 600).
    pub token_expiration: i64,
    /// `AWS_DEFAULT_REGION`/`AWS_REGION` to inject (none when empty).
    pub aws_default_region: String,
    /// Inject `AWS_STS_REGIONAL_ENDPOINTS=regional` by default.
    pub sts_regional_endpoint: bool,
    /// Pod Identity token audience: `pods.eks.amazonaws.com`.
    pub container_credentials_audience: String,
    /// Where the Pod Identity token is mounted.
    pub container_credentials_token_mount_path: String,
    /// The Pod Identity token volume's name.
    pub container_credentials_token_volume_name: String,
    /// The Pod Identity token file's name in the volume.
    pub container_credentials_token_path: String,
    /// `AWS_CONTAINER_CREDENTIALS_FULL_URI`.
    pub container_credentials_full_uri: String,
    /// podiam's STS, injected as `AWS_ENDPOINT_URL_STS` into IRSA containers so that their SDK
    /// exchanges the token with podiam rather than AWS (none when empty, as the reference).
    pub sts_endpoint_url: String,
}

/// The agent's address as an IPv6 cluster's pods reach it.
pub const FULL_URI_IPV6: &str = "http://[fd00:ec2::23]/v1/credentials";

/// The IRSA token volume's name.
pub const IRSA_VOLUME: &str = "aws-iam-token";

/// The IRSA token file's name in its volume.
pub const IRSA_TOKEN_PATH: &str = "token";

/// The default token lifetime, which Pod Identity spreads (see [`crate::mutate`]).
pub const DEFAULT_EXPIRATION: i64 = 86_400;

/// The shortest token lifetime Kubernetes accepts.
pub const MIN_EXPIRATION: i64 = 600;

impl Default for MutationConfig {
    fn default() -> Self {
        Self {
            annotation_prefix: "eks.amazonaws.com".to_owned(),
            token_audience: "sts.amazonaws.com".to_owned(),
            token_mount_path: "/var/run/secrets/eks.amazonaws.com/serviceaccount".to_owned(),
            token_expiration: DEFAULT_EXPIRATION,
            aws_default_region: String::new(),
            sts_regional_endpoint: false,
            container_credentials_audience: "pods.eks.amazonaws.com".to_owned(),
            container_credentials_token_mount_path:
                "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount".to_owned(),
            container_credentials_token_volume_name: "eks-pod-identity-token".to_owned(),
            container_credentials_token_path: "eks-pod-identity-token".to_owned(),
            container_credentials_full_uri: "http://169.254.170.23/v1/credentials".to_owned(),
            sts_endpoint_url: String::new(),
        }
    }
}
