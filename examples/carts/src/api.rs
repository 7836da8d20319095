//! The HTTP API: thin handlers that check their input and hand over to [`CartStore`].
//!
//! - `GET /carts/{customerId}` — the cart
//! - `POST /carts/{customerId}/items` — add (or replace) a line: 201 and the line
//! - `DELETE /carts/{customerId}/items/{itemId}` — remove a line: 204
//! - `GET /health` — 200 `ok`, without touching DynamoDB

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};

use crate::error::ApiError;
use crate::model::{Cart, Item, validate_id};
use crate::store::CartStore;

/// The service's routes over `store`.
pub fn router(store: CartStore) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/carts/{customer_id}", get(get_cart))
        .route("/carts/{customer_id}/items", post(add_item))
        .route("/carts/{customer_id}/items/{item_id}", delete(delete_item))
        .with_state(store)
}

async fn health() -> &'static str {
    "ok"
}

async fn get_cart(
    State(store): State<CartStore>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Cart>, ApiError> {
    let Path(customer_id) = path?;
    validate_id("customerId", &customer_id).map_err(ApiError::BadRequest)?;
    Ok(Json(store.cart(&customer_id).await?))
}

async fn add_item(
    State(store): State<CartStore>,
    path: Result<Path<String>, PathRejection>,
    body: Result<Json<Item>, JsonRejection>,
) -> Result<(StatusCode, Json<Item>), ApiError> {
    let Path(customer_id) = path?;
    let Json(item) = body?;
    validate_id("customerId", &customer_id).map_err(ApiError::BadRequest)?;
    item.validate().map_err(ApiError::BadRequest)?;
    store.put(&customer_id, &item).await?;
    Ok((StatusCode::CREATED, Json(item)))
}

async fn delete_item(
    State(store): State<CartStore>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let Path((customer_id, item_id)) = path?;
    validate_id("customerId", &customer_id).map_err(ApiError::BadRequest)?;
    validate_id("itemId", &item_id).map_err(ApiError::BadRequest)?;
    store.delete(&customer_id, &item_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::config::retry::RetryConfig;
    use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt as _;

    /// A router whose DynamoDB endpoint refuses connections: any request that reaches the
    /// store fails fast with a dispatch failure.
    fn app() -> Router {
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("eu-central-1"))
            .credentials_provider(Credentials::new("AKID", "secret", None, None, "test"))
            .endpoint_url("http://127.0.0.1:1")
            .retry_config(RetryConfig::disabled())
            .build();
        router(CartStore::new(
            aws_sdk_dynamodb::Client::from_conf(config),
            "Items",
        ))
    }

    async fn call(method: &str, uri: &str, body: &str) -> (StatusCode, serde_json::Value) {
        let request = Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", "application/json")
            .body(Body::from(body.to_owned()))
            .unwrap();
        let response = app().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        let json = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&bytes).into()));
        (status, json)
    }

    #[tokio::test]
    async fn health_does_not_touch_dynamodb() {
        assert_eq!(
            call("GET", "/health", "").await,
            (StatusCode::OK, "ok".into())
        );
    }

    #[tokio::test]
    async fn bad_input_is_400_with_a_message() {
        let too_long = "x".repeat(257);
        for (method, uri, body) in [
            (
                "POST",
                "/carts/alice/items",
                r#"{"itemId":"sock","quantity":0,"unitPrice":1}"#,
            ),
            (
                "POST",
                "/carts/alice/items",
                r#"{"itemId":"sock","quantity":1001,"unitPrice":1}"#,
            ),
            (
                "POST",
                "/carts/alice/items",
                r#"{"itemId":"","quantity":1,"unitPrice":1}"#,
            ),
            (
                "POST",
                "/carts/alice/items",
                r#"{"itemId":"sock","quantity":-1,"unitPrice":1}"#,
            ),
            ("POST", "/carts/alice/items", r#"{"itemId":"sock"}"#),
            ("POST", "/carts/alice/items", "not json"),
            (
                "POST",
                &format!("/carts/{too_long}/items"),
                r#"{"itemId":"sock","quantity":1,"unitPrice":1}"#,
            ),
            ("GET", &format!("/carts/{too_long}"), ""),
            ("GET", "/carts/%FF", ""),
            ("DELETE", &format!("/carts/alice/items/{too_long}"), ""),
        ] {
            let (status, json) = call(method, uri, body).await;
            assert_eq!(
                status,
                StatusCode::BAD_REQUEST,
                "{method} {uri} {body}: {json}"
            );
            assert_eq!(json["error"], "BadRequest", "{json}");
            assert!(
                json["message"].as_str().is_some_and(|m| !m.is_empty()),
                "{json}"
            );
        }
    }

    #[tokio::test]
    async fn unreachable_dynamodb_is_502() {
        let (status, json) = call("GET", "/carts/alice", "").await;
        assert_eq!(status, StatusCode::BAD_GATEWAY, "{json}");
        assert_eq!(json["error"], "DispatchFailure", "{json}");
    }
}
