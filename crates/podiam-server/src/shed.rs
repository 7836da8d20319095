//! The answer to a request shed by the in-flight limit: the throttling error of the protocol the
//! request speaks, read from its head alone (the body is never read). awsQuery requests at `/`
//! get `Throttling` in STS's or IAM's XML (the service named by the SigV4 credential scope),
//! EKS Auth and EKS get `ThrottlingException` with HTTP 429.

use std::sync::Arc;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use podiam_wire::{Api, IAM_NAMESPACE, STS_NAMESPACE, query_error, rest_json_error, throttled};

use crate::App;

/// Which protocol a request speaks, by its path and credential scope.
fn protocol(parts: &http::request::Parts) -> Api {
    let path = parts.uri.path();
    if path.starts_with("/clusters/") && path.ends_with("/assume-role-for-pod-identity") {
        Api::EksAuth
    } else if path != "/" {
        Api::Eks
    } else if signing_service(parts).is_some_and(|s| s.eq_ignore_ascii_case("iam")) {
        Api::Iam
    } else {
        Api::Sts
    }
}

/// The service of the SigV4 credential scope (`Credential=AKID/date/region/SERVICE/…`), from
/// the `Authorization` header or a presigned URL's `X-Amz-Credential`.
fn signing_service(parts: &http::request::Parts) -> Option<&str> {
    let credential = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split("Credential=").nth(1))
        .or_else(|| {
            parts.uri.query().and_then(|q| {
                q.split('&')
                    .find_map(|pair| pair.strip_prefix("X-Amz-Credential="))
            })
        })?;
    // Percent-encoded in a query string: `%2F` separates the parts there.
    let mut parts = credential.split(['/', ',']).flat_map(|p| p.split("%2F"));
    parts.nth(3)
}

/// The shed answer for `app`'s requests, counted in its metrics.
pub(crate) fn shed_answer(app: App) -> podiam_http::Shed {
    Arc::new(move |parts: &http::request::Parts| {
        let api = protocol(parts);
        let error = throttled(api);
        let request_id = app.request_id();
        app.inner.metrics.shed(api_name(api));
        let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::TOO_MANY_REQUESTS);
        let mut response = match api {
            Api::Sts | Api::Iam => {
                let namespace = if api == Api::Iam {
                    IAM_NAMESPACE
                } else {
                    STS_NAMESPACE
                };
                (
                    status,
                    [(header::CONTENT_TYPE, "text/xml")],
                    query_error(namespace, &error, &request_id),
                )
                    .into_response()
            }
            _ => {
                let mut response = (
                    status,
                    [(header::CONTENT_TYPE, "application/json")],
                    rest_json_error(&error),
                )
                    .into_response();
                response
                    .headers_mut()
                    .insert("x-amzn-errortype", HeaderValue::from_static(error.code));
                response
            }
        };
        if let Ok(id) = HeaderValue::from_str(&request_id) {
            response.headers_mut().insert("x-amzn-requestid", id);
        }
        response
    })
}

fn api_name(api: Api) -> &'static str {
    match api {
        Api::Sts => "sts",
        Api::Iam => "iam",
        Api::EksAuth => "eks-auth",
        _ => "eks",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(path: &str, authorization: Option<&str>) -> http::request::Parts {
        let mut builder = http::Request::post(path);
        if let Some(a) = authorization {
            builder = builder.header(header::AUTHORIZATION, a);
        }
        builder.body(()).unwrap_or_default().into_parts().0
    }

    #[test]
    fn the_protocol_comes_from_the_path_and_the_credential_scope() {
        let iam = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261203/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=00";
        let sts = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261203/us-east-1/sts/aws4_request, SignedHeaders=host, Signature=00";
        assert_eq!(protocol(&head("/", Some(iam))), Api::Iam);
        assert_eq!(protocol(&head("/", Some(sts))), Api::Sts);
        assert_eq!(protocol(&head("/", None)), Api::Sts);
        assert_eq!(
            protocol(&head(
                "/?X-Amz-Credential=AKID%2F20261203%2Fus-east-1%2Fiam%2Faws4_request",
                None
            )),
            Api::Iam
        );
        assert_eq!(
            protocol(&head("/clusters/c1/assume-role-for-pod-identity", None)),
            Api::EksAuth
        );
        assert_eq!(protocol(&head("/clusters/c1", None)), Api::Eks);
    }
}
