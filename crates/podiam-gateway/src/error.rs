use thiserror::Error;

/// Why a request could not be mapped to authorizations. The gateway denies every one of them;
/// each variant says which DynamoDB error the client is answered with.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum GatewayError {
    /// The `X-Amz-Target` names no known operation (answered as `UnknownOperationException`).
    /// Holds the target, shortened.
    #[error("unknown operation {0:?}")]
    UnknownOperation(String),
    /// A required member is missing, or a name, ARN, list length or PartiQL statement breaks
    /// DynamoDB's rules (answered as `ValidationException`). Holds DynamoDB-style text.
    #[error("{0}")]
    Validation(String),
    /// The body is not a JSON object, or a member has the wrong JSON type (answered as
    /// `SerializationException`, as DynamoDB does).
    #[error("{0}")]
    Serialization(String),
    /// The body is larger than DynamoDB's 16 MiB request limit.
    #[error("request body is larger than 16 MiB")]
    TooLarge,
    /// A table the request names does not exist (its key schema could not be read); answered
    /// as `ResourceNotFoundException`. Holds the table, shortened.
    #[error("Requested resource not found: Table: {0} not found")]
    ResourceNotFound(String),
    /// The region the gateway was asked to scope the request to is not a region name. This is a
    /// caller bug, not something a client sent.
    #[error("invalid region {0:?}")]
    InvalidRegion(String),
    /// The service that decides could not be asked (the podiam server did not answer); the
    /// client gets `InternalServerError`. Holds the reason, for the log.
    #[error("the authorization service is unavailable: {0}")]
    AuthorizerUnavailable(String),
}
