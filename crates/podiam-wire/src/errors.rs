//! Typed errors to AWS error codes, in one place.

use podiam_eks::{EksError, UpstreamError};
use podiam_http::BodyError;
use podiam_iam::IamError;
use podiam_oidc::{TokenError, TokenErrorKind};
use podiam_policy::{PolicyError, ProblemKind};
use podiam_sigv4::SigV4Error;
use podiam_sts::StsError;

/// Which API answers: the code for the same failure differs between protocol families.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// STS (awsQuery).
    Sts,
    /// IAM (awsQuery).
    Iam,
    /// EKS (rest-json).
    Eks,
    /// EKS Auth (rest-json).
    EksAuth,
    /// DynamoDB (awsJson1.0), answered by `podiam gateway`: every client fault is a 400.
    DynamoDb,
}

impl Api {
    fn is_query(self) -> bool {
        matches!(self, Self::Sts | Self::Iam)
    }
}

/// An error as it goes on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireError {
    /// The AWS error code (`<Code>` for query APIs, `x-amzn-ErrorType` for rest-json).
    pub code: &'static str,
    /// The HTTP status.
    pub status: u16,
    /// The message.
    pub message: String,
}

impl WireError {
    /// An error with a code, status and message.
    pub fn new(code: &'static str, status: u16, message: impl Into<String>) -> Self {
        Self {
            code,
            status,
            message: message.into(),
        }
    }

    /// A `ValidationError` (400): a parameter breaks the model's constraints.
    pub fn validation(message: impl Into<String>) -> Self {
        Self::new("ValidationError", 400, message)
    }

    /// `Sender` for client faults, `Receiver` for server faults (query-protocol `<Type>`).
    pub fn fault(&self) -> &'static str {
        if self.status >= 500 {
            "Receiver"
        } else {
            "Sender"
        }
    }
}

/// A refused web-identity or pod-identity token.
pub fn token_error(error: &TokenError, api: Api) -> WireError {
    let message = error.to_string();
    match (api, error.kind()) {
        (Api::EksAuth | Api::Eks, TokenErrorKind::Expired) => {
            WireError::new("ExpiredTokenException", 400, message)
        }
        (Api::EksAuth | Api::Eks, _) => WireError::new("InvalidTokenException", 400, message),
        (_, TokenErrorKind::Expired) => WireError::new("ExpiredTokenException", 400, message),
        (_, TokenErrorKind::RejectedClaim) => WireError::new("IDPRejectedClaim", 403, message),
        (_, TokenErrorKind::Invalid) => WireError::new("InvalidIdentityToken", 400, message),
    }
}

/// A refused request signature.
pub fn sigv4_error(error: &SigV4Error, api: Api) -> WireError {
    let message = error.to_string();
    let query = api.is_query();
    let (code, status) = match error {
        SigV4Error::MissingAuthenticationToken if query => ("MissingAuthenticationToken", 403),
        SigV4Error::MissingAuthenticationToken => ("MissingAuthenticationTokenException", 403),
        SigV4Error::IncompleteSignature(_) if query => ("IncompleteSignature", 400),
        SigV4Error::IncompleteSignature(_) => ("IncompleteSignatureException", 400),
        SigV4Error::InvalidClientTokenId(_) if query => ("InvalidClientTokenId", 403),
        SigV4Error::InvalidClientTokenId(_) => ("UnrecognizedClientException", 403),
        // STS and IAM answer a stale or future `X-Amz-Date` with `SignatureDoesNotMatch`
        // ("Signature expired: …"), which botocore's clock-skew correction recognises.
        SigV4Error::SignatureDoesNotMatch(_) | SigV4Error::RequestExpired(_) if query => {
            ("SignatureDoesNotMatch", 403)
        }
        SigV4Error::SignatureExpired(_) if query => ("SignatureExpired", 403),
        SigV4Error::SignatureDoesNotMatch(_)
        | SigV4Error::RequestExpired(_)
        | SigV4Error::SignatureExpired(_) => ("InvalidSignatureException", 403),
        SigV4Error::ExpiredToken(_) if query => ("ExpiredToken", 403),
        SigV4Error::ExpiredToken(_) => ("ExpiredTokenException", 403),
        _ => ("AccessDenied", 403),
    };
    // DynamoDB answers every authentication failure with 400.
    let status = if api == Api::DynamoDb { 400 } else { status };
    WireError::new(code, status, message)
}

/// A request body that was not read: too large, throttled by the body budget, too slow, or
/// cut off. Throttling uses each protocol's code, which the SDKs back off on.
pub fn body_error(error: &BodyError, api: Api) -> WireError {
    let message = error.to_string();
    match error {
        BodyError::TooLarge { limit } => WireError::new(
            "RequestEntityTooLarge",
            413,
            format!("The request body is larger than {limit} bytes."),
        ),
        BodyError::Busy => throttled(api),
        BodyError::TimedOut => WireError::new(
            "RequestTimeout",
            400,
            "Your socket connection to the server was not read from or written to within the timeout period.",
        ),
        _ => WireError::new("IncompleteBody", 400, message),
    }
}

/// The server is at capacity: `Throttling` (query), `ThrottlingException` (rest-json and
/// DynamoDB), as AWS answers and the SDKs retry with back-off.
pub fn throttled(api: Api) -> WireError {
    match api {
        Api::Sts | Api::Iam => WireError::new("Throttling", 400, "Rate exceeded"),
        Api::DynamoDb => WireError::new(
            "ThrottlingException",
            400,
            "Rate of requests exceeds the allowed throughput.",
        ),
        Api::Eks | Api::EksAuth => WireError::new("ThrottlingException", 429, "Rate exceeded"),
    }
}

/// A refused policy document (IAM: `MalformedPolicyDocument` or `LimitExceeded`; STS session
/// policies: `MalformedPolicyDocument` or `PackedPolicyTooLarge`).
pub fn policy_error(error: &PolicyError, api: Api) -> WireError {
    let too_large = matches!(error, PolicyError::TooLarge { .. })
        || error
            .problems()
            .first()
            .is_some_and(|p| p.kind == ProblemKind::TooLarge);
    match (too_large, api) {
        (true, Api::Sts) => WireError::new("PackedPolicyTooLarge", 400, error.iam_message()),
        (true, _) => WireError::new("LimitExceeded", 409, error.iam_message()),
        (false, _) => WireError::new("MalformedPolicyDocument", 400, error.iam_message()),
    }
}

/// An IAM failure.
pub fn iam_error(error: &IamError) -> WireError {
    let message = error.to_string();
    match error {
        IamError::NoSuchEntity(_) => WireError::new("NoSuchEntity", 404, message),
        IamError::EntityAlreadyExists(_) => WireError::new("EntityAlreadyExists", 409, message),
        IamError::LimitExceeded(_) => WireError::new("LimitExceeded", 409, message),
        IamError::InvalidInput(_) => WireError::new("InvalidInput", 400, message),
        IamError::Policy(e) => policy_error(e, Api::Iam),
        IamError::DeleteConflict(_) => WireError::new("DeleteConflict", 409, message),
        IamError::ConcurrentModification(_) => {
            WireError::new("ConcurrentModification", 409, message)
        }
        IamError::AccessDenied(_) => WireError::new("AccessDenied", 403, message),
        _ => WireError::new(
            "ServiceFailure",
            500,
            "The request processing has failed because of an unknown error, exception or failure.",
        ),
    }
}

/// An STS failure.
pub fn sts_error(error: &StsError) -> WireError {
    let message = error.to_string();
    match error {
        StsError::Token(e) => token_error(e, Api::Sts),
        StsError::UnknownProvider(_) => WireError::new("InvalidIdentityToken", 400, message),
        StsError::IdpCommunication(_) => WireError::new("IDPCommunicationError", 400, message),
        StsError::AccessDenied { .. } => WireError::new("AccessDenied", 403, message),
        StsError::Validation(_) => WireError::new("ValidationError", 400, message),
        StsError::Policy(e) => policy_error(e, Api::Sts),
        StsError::PackedPolicyTooLarge(_) => WireError::new("PackedPolicyTooLarge", 400, message),
        StsError::Iam(e) => iam_error(e),
        _ => WireError::new(
            "InternalFailure",
            500,
            "The request processing has failed because of an unknown error, exception or failure.",
        ),
    }
}

/// An authorization failure of IAM, as `api` reports it: `AccessDenied` (403) for the query
/// APIs, `AccessDeniedException` for rest-json (403 for EKS; EKS Auth declares 400).
pub fn access_error(error: &IamError, api: Api) -> WireError {
    match (error, api) {
        (IamError::AccessDenied(message), Api::Eks) => {
            WireError::new("AccessDeniedException", 403, message.clone())
        }
        (IamError::AccessDenied(message), Api::EksAuth | Api::DynamoDb) => {
            WireError::new("AccessDeniedException", 400, message.clone())
        }
        _ => iam_error(error),
    }
}

/// An EKS or EKS Auth failure.
pub fn eks_error(error: &EksError, api: Api) -> WireError {
    let message = error.to_string();
    match error {
        EksError::NotFound(_) => WireError::new("ResourceNotFoundException", 404, message),
        EksError::InUse(_) => WireError::new("ResourceInUseException", 409, message),
        EksError::InvalidParameter(_) => WireError::new("InvalidParameterException", 400, message),
        EksError::InvalidRequest(_) => WireError::new("InvalidRequestException", 400, message),
        EksError::LimitExceeded(_) => {
            WireError::new("ResourceLimitExceededException", 400, message)
        }
        EksError::Token(e) => token_error(e, Api::EksAuth),
        // EKS Auth declares AccessDeniedException with status 400.
        EksError::AccessDenied { .. } => WireError::new("AccessDeniedException", 400, message),
        EksError::Sts(StsError::AccessDenied { .. }) => {
            WireError::new("AccessDeniedException", 400, message)
        }
        EksError::Sts(StsError::Validation(_) | StsError::Policy(_)) => {
            WireError::new("InvalidParameterException", 400, message)
        }
        EksError::Sts(StsError::PackedPolicyTooLarge(_)) => {
            WireError::new("InvalidParameterException", 400, message)
        }
        EksError::Upstream { error, .. } => match error {
            UpstreamError::Refused { code, .. } => match code.as_str() {
                "AccessDenied" => WireError::new("AccessDeniedException", 400, message),
                "ValidationError" | "MalformedPolicyDocument" | "PackedPolicyTooLarge" => {
                    WireError::new("InvalidParameterException", 400, message)
                }
                // podiam's own identity was refused (expired, unknown, region disabled):
                // nothing the agent can change.
                _ => WireError::new("ServiceUnavailableException", 503, message),
            },
            UpstreamError::Throttled(_) => WireError::new("ThrottlingException", 429, message),
            _ => WireError::new("ServiceUnavailableException", 503, message),
        },
        _ if api == Api::EksAuth => WireError::new(
            "InternalServerException",
            500,
            "The request processing has failed because of an unknown error.",
        ),
        _ => WireError::new(
            "ServerException",
            500,
            "The request processing has failed because of an unknown error.",
        ),
    }
}

/// AWS's answer when podiam's identity reads a role in an upstream account (for `podiam
/// explain`), on podiam's own API.
pub fn upstream_read_error(role_arn: &str, error: &UpstreamError) -> WireError {
    let message = format!("podiam's AWS identity could not read {role_arn}: {error}");
    match error {
        UpstreamError::Refused { code, .. } if code == "AccessDenied" => {
            WireError::new("AccessDeniedException", 400, message)
        }
        UpstreamError::Refused { code, .. } if code == "NoSuchEntity" => {
            WireError::new("ResourceNotFoundException", 404, message)
        }
        UpstreamError::Throttled(_) => WireError::new("ThrottlingException", 429, message),
        _ => WireError::new("ServiceUnavailableException", 503, message),
    }
}

/// AWS's answer to `sts:AssumeRole` that podiam made for a caller of podiam's own STS (a role
/// in an upstream account), as STS's error.
pub fn upstream_sts_error(role_arn: &str, error: &UpstreamError) -> WireError {
    let message = format!("AWS refused podiam's sts:AssumeRole on {role_arn}: {error}");
    match error {
        UpstreamError::Refused { code, .. } if code == "AccessDenied" => WireError::new(
            "AccessDenied",
            403,
            format!(
                "{message}. The role's trust policy must allow podiam's own AWS principal sts:AssumeRole."
            ),
        ),
        UpstreamError::Refused { code, .. }
            if matches!(
                code.as_str(),
                "ValidationError" | "MalformedPolicyDocument" | "PackedPolicyTooLarge"
            ) =>
        {
            WireError::new(
                if code == "ValidationError" {
                    "ValidationError"
                } else {
                    "MalformedPolicyDocument"
                },
                400,
                message,
            )
        }
        UpstreamError::Throttled(_) => WireError::new("Throttling", 400, message),
        _ => WireError::new("ServiceUnavailable", 503, message),
    }
}

/// A rest-json error body: `{"message": …}` (the code goes in `x-amzn-ErrorType`).
pub fn rest_json_error(error: &WireError) -> String {
    serde_json::json!({ "message": error.message }).to_string()
}

/// The error codes a `/podiam/authorize` denial may carry for a proxied service.
const RELAYED_CODES: &[&str] = &[
    "AccessDeniedException",
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "IncompleteSignatureException",
    "MissingAuthenticationTokenException",
    "ExpiredTokenException",
];

/// A denial from `/podiam/authorize` (`{"code", "message", "status"}`), as the proxy sends it
/// on: only the codes the server produces for `api` pass; anything else is an access denial.
pub fn relayed_error(error: &serde_json::Value, api: Api) -> WireError {
    let text = |name: &str| error.get(name).and_then(serde_json::Value::as_str);
    let code = text("code")
        .and_then(|c| RELAYED_CODES.iter().copied().find(|known| *known == c))
        .unwrap_or("AccessDeniedException");
    let status = match api {
        Api::DynamoDb => 400,
        _ => error
            .get("status")
            .and_then(serde_json::Value::as_u64)
            .and_then(|s| u16::try_from(s).ok())
            .filter(|s| (400..500).contains(s))
            .unwrap_or(403),
    };
    WireError::new(code, status, text("message").unwrap_or("Access denied."))
}

/// An awsJson1.0 error body (DynamoDB): `{"__type": "com.amazon.coral.service#Code",
/// "message": …}`; the SDKs read the code from `__type`.
pub fn json10_error(error: &WireError) -> String {
    serde_json::json!({
        "__type": format!("com.amazon.coral.service#{}", error.code),
        "message": error.message,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn awss_answers_for_upstream_roles_become_eks_auths_codes() {
        let role = "arn:aws:iam::111122223333:role/carts";
        let upstream = |error| EksError::Upstream {
            role_arn: role.to_owned(),
            error,
        };
        let refused = |code: &str| {
            upstream(UpstreamError::Refused {
                code: code.to_owned(),
                message: "m.".to_owned(),
            })
        };
        let denied = eks_error(&refused("AccessDenied"), Api::EksAuth);
        assert_eq!((denied.code, denied.status), ("AccessDeniedException", 400));
        assert!(denied.message.contains(role), "{}", denied.message);
        assert!(
            denied.message.contains("sts:TagSession"),
            "{}",
            denied.message
        );
        assert!(
            denied.message.contains("podiam aws trust-policy"),
            "{}",
            denied.message
        );
        let invalid = eks_error(&refused("ValidationError"), Api::EksAuth);
        assert_eq!(invalid.code, "InvalidParameterException");
        let expired = eks_error(&refused("ExpiredToken"), Api::EksAuth);
        assert_eq!(
            (expired.code, expired.status),
            ("ServiceUnavailableException", 503)
        );
        let throttled = eks_error(
            &upstream(UpstreamError::Throttled("x".to_owned())),
            Api::EksAuth,
        );
        assert_eq!(
            (throttled.code, throttled.status),
            ("ThrottlingException", 429)
        );
        let down = eks_error(
            &upstream(UpstreamError::Unreachable("x".to_owned())),
            Api::EksAuth,
        );
        assert_eq!(
            (down.code, down.status),
            ("ServiceUnavailableException", 503)
        );
    }

    #[test]
    fn token_errors_per_api() {
        let expired = TokenError::Expired { exp: 1 };
        assert_eq!(
            token_error(&expired, Api::Sts).code,
            "ExpiredTokenException"
        );
        assert_eq!(
            token_error(&expired, Api::EksAuth).code,
            "ExpiredTokenException"
        );
        let bad = TokenError::BadSignature;
        assert_eq!(token_error(&bad, Api::Sts).code, "InvalidIdentityToken");
        assert_eq!(
            token_error(&bad, Api::EksAuth).code,
            "InvalidTokenException"
        );
        let claim = TokenError::MissingClaim("sub");
        assert_eq!(
            token_error(&claim, Api::Sts),
            WireError::new("IDPRejectedClaim", 403, claim.to_string())
        );
    }

    #[test]
    fn signature_errors_per_protocol() {
        let mismatch = SigV4Error::SignatureDoesNotMatch("x".into());
        assert_eq!(
            sigv4_error(&mismatch, Api::Iam).code,
            "SignatureDoesNotMatch"
        );
        assert_eq!(
            sigv4_error(&mismatch, Api::Eks).code,
            "InvalidSignatureException"
        );
        assert_eq!(
            sigv4_error(&SigV4Error::MissingAuthenticationToken, Api::Sts).status,
            403
        );
        let unknown = SigV4Error::InvalidClientTokenId("x".into());
        assert_eq!(
            sigv4_error(&unknown, Api::EksAuth).code,
            "UnrecognizedClientException"
        );
        assert_eq!(
            sigv4_error(&SigV4Error::ExpiredToken("x".into()), Api::Sts).code,
            "ExpiredToken"
        );
    }

    #[test]
    fn iam_and_sts_errors() {
        assert_eq!(iam_error(&IamError::NoSuchEntity("x".into())).status, 404);
        assert_eq!(iam_error(&IamError::DeleteConflict("x".into())).status, 409);
        assert_eq!(
            sts_error(&StsError::IdpCommunication("x".into())).code,
            "IDPCommunicationError"
        );
        assert_eq!(
            sts_error(&StsError::Token(TokenError::Expired { exp: 1 })).code,
            "ExpiredTokenException"
        );
        assert_eq!(
            sts_error(&StsError::UnknownProvider("x".into())).code,
            "InvalidIdentityToken"
        );
    }

    #[test]
    fn policy_errors() {
        let malformed = podiam_policy::Policy::parse("{").unwrap_err();
        assert_eq!(
            policy_error(&malformed, Api::Iam).code,
            "MalformedPolicyDocument"
        );
        let big = format!(
            "{{\"Version\":\"2012-10-17\",\"Statement\":{{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"sts:AssumeRole\",\"Condition\":{{\"StringEquals\":{{\"k:k\":\"{}\"}}}}}}}}",
            "x".repeat(3000)
        );
        let err = podiam_policy::parse_as(&big, podiam_policy::PolicyType::Trust).unwrap_err();
        let wire = policy_error(&err, Api::Iam);
        assert_eq!((wire.code, wire.status), ("LimitExceeded", 409));
        assert_eq!(policy_error(&err, Api::Sts).code, "PackedPolicyTooLarge");
    }
}
