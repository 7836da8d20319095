//! The API's errors, and how they become responses.
//!
//! DynamoDB failures pass through with the AWS error code and message, so a caller (or an
//! end-to-end test) can tell an `AccessDeniedException` from a missing table or an unreachable
//! endpoint without reading the service's logs.

use std::error::Error as StdError;
use std::fmt::Debug;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// The request was malformed or out of bounds (400).
    BadRequest(String),
    /// DynamoDB refused or could not be reached (403 for `AccessDeniedException`, else 502).
    Aws {
        /// The AWS error code (`AccessDeniedException`), or the SDK's failure kind when the
        /// service never answered (`DispatchFailure`, `ConstructionFailure` for missing
        /// credentials, ...).
        code: String,
        /// The service's message, or the SDK's error chain.
        message: String,
    },
    /// A stored item does not have the cart's shape (500).
    InvalidStoredItem(String),
}

/// `err` and its sources, joined by `: ` (the SDK's `DisplayErrorContext` without its `Debug`
/// dump, which is too long for a response).
fn error_chain(err: &dyn StdError) -> String {
    let mut chain = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        chain.push_str(": ");
        chain.push_str(&cause.to_string());
        source = cause.source();
    }
    chain
}

/// The JSON body of every error response.
#[derive(Debug, Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    message: &'a str,
}

impl ApiError {
    /// The error of a DynamoDB call: the service's code and message when it answered, the SDK's
    /// failure kind and full error chain when it did not.
    pub fn from_sdk<E, R>(err: &SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + StdError + 'static,
        R: Debug,
    {
        let kind = match err {
            SdkError::ConstructionFailure(_) => "ConstructionFailure",
            SdkError::TimeoutError(_) => "TimeoutError",
            SdkError::DispatchFailure(_) => "DispatchFailure",
            SdkError::ResponseError(_) => "ResponseError",
            _ => "ServiceError",
        };
        let message = match err.message() {
            Some(message) => message.to_owned(),
            None => error_chain(err),
        };
        Self::Aws {
            code: err.code().unwrap_or(kind).to_owned(),
            message,
        }
    }

    /// The HTTP status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Aws { code, .. } if code == "AccessDeniedException" => StatusCode::FORBIDDEN,
            Self::Aws { .. } => StatusCode::BAD_GATEWAY,
            Self::InvalidStoredItem(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let (error, message) = match &self {
            Self::BadRequest(message) => ("BadRequest", message.as_str()),
            Self::Aws { code, message } => {
                tracing::warn!(%code, %message, "DynamoDB request failed");
                (code.as_str(), message.as_str())
            }
            Self::InvalidStoredItem(message) => {
                tracing::error!(%message, "invalid item in the table");
                ("InvalidStoredItem", message.as_str())
            }
        };
        (status, Json(ErrorBody { error, message })).into_response()
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        Self::BadRequest(rejection.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        Self::BadRequest(rejection.body_text())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::error::ErrorMetadata;
    use aws_sdk_dynamodb::operation::query::QueryError;

    fn service_error(code: &str, message: &str) -> SdkError<QueryError, ()> {
        let meta = ErrorMetadata::builder().code(code).message(message).build();
        SdkError::service_error(QueryError::generic(meta), ())
    }

    #[test]
    fn access_denied_is_forbidden() {
        let err = ApiError::from_sdk(&service_error("AccessDeniedException", "not allowed"));
        assert_eq!(
            err,
            ApiError::Aws {
                code: "AccessDeniedException".to_owned(),
                message: "not allowed".to_owned()
            }
        );
        assert_eq!(err.status(), StatusCode::FORBIDDEN);
    }

    #[test]
    fn other_service_errors_are_bad_gateway() {
        let err = ApiError::from_sdk(&service_error("ResourceNotFoundException", "no table"));
        assert_eq!(err.status(), StatusCode::BAD_GATEWAY);
    }

    #[test]
    fn failures_without_an_answer_name_their_kind() {
        let err = SdkError::<QueryError, ()>::construction_failure("no credentials");
        match ApiError::from_sdk(&err) {
            ApiError::Aws { code, message } => {
                assert_eq!(code, "ConstructionFailure");
                assert_eq!(message, "failed to construct request: no credentials");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn bad_requests() {
        assert_eq!(
            ApiError::BadRequest("x".to_owned()).status(),
            StatusCode::BAD_REQUEST
        );
    }
}
