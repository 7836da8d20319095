//! Minting and verifying service-account tokens, including every kind of hostile token.

#![expect(clippy::unwrap_used, reason = "test fixtures fail loudly")]

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use podiam_crypto::{JwsAlgorithm, KeyKind, SeededRng, SigningKey, hmac_sha256};
use podiam_oidc::{
    DiscoveryDocument, Issuer, JwksCache, KeySet, ObjectRef, TokenError, TokenErrorKind,
    TokenRequest, Verifier, default_jwks_uri,
};
use proptest::prelude::*;
use serde_json::{Value, json};
use time::OffsetDateTime;

const ISSUER: &str =
    "https://oidc.eks.eu-central-1.amazonaws.com/id/5B1F8794C4C52E4101E98664FC964C3C";
const NOW: i64 = 1_714_564_800;

fn at(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(secs).unwrap()
}

fn request() -> TokenRequest {
    TokenRequest {
        namespace: "carts".into(),
        service_account: ObjectRef {
            name: "carts".into(),
            uid: "2a3b4c5d-0000-4000-8000-000000000001".into(),
        },
        audiences: vec!["sts.amazonaws.com".into()],
        pod: Some(ObjectRef {
            name: "carts-7d8f9c-abcde".into(),
            uid: "1f2e3d4c-0000-4000-8000-000000000002".into(),
        }),
        node: Some(ObjectRef {
            name: "ip-10-42-0-1.eu-central-1.compute.internal".into(),
            uid: "0d1e2f3a-0000-4000-8000-000000000003".into(),
        }),
        lifetime: Duration::from_secs(86_400),
        warn_after: None,
    }
}

fn issuer(kind: KeyKind) -> Issuer {
    Issuer::new(ISSUER, SigningKey::generate(kind).unwrap()).unwrap()
}

fn keys_of(issuer: &Issuer) -> KeySet {
    let mut keys = KeySet::new();
    keys.insert(
        podiam_crypto::VerifyingKey::from_jwk(&issuer.key().verifying_key().to_jwk()).unwrap(),
    );
    keys
}

fn verifier() -> Verifier {
    Verifier::new(ISSUER, &["sts.amazonaws.com"])
}

fn b64(v: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(v)
}

/// A token with any header and payload, signed by `key` over its real signing input.
fn forge(header: &Value, payload: &Value, key: &SigningKey) -> String {
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(payload.to_string().as_bytes())
    );
    let signature = key.sign(input.as_bytes()).unwrap();
    format!("{input}.{}", b64(&signature))
}

fn claims(exp: i64) -> Value {
    json!({"aud": ["sts.amazonaws.com"], "exp": exp, "iat": NOW, "iss": ISSUER, "nbf": NOW, "sub": "system:serviceaccount:carts:carts"})
}

fn header(key: &SigningKey) -> Value {
    json!({"alg": key.algorithm().as_str(), "kid": key.kid()})
}

#[test]
fn mint_and_verify_both_algorithms() {
    for kind in [KeyKind::Rsa2048, KeyKind::Rsa3072, KeyKind::EcP256] {
        let issuer = issuer(kind);
        let token = issuer
            .mint(&request(), at(NOW), &SeededRng::new(b"jti"))
            .unwrap();
        let verified = verifier()
            .verify(&token, &keys_of(&issuer), at(NOW + 10))
            .unwrap();
        assert_eq!(verified.audience, "sts.amazonaws.com");
        assert_eq!(verified.claims.sub, "system:serviceaccount:carts:carts");
        assert_eq!(verified.kid, issuer.key().kid());
    }
}

#[test]
fn minted_tokens_have_kubernetes_format() {
    let issuer = issuer(KeyKind::Rsa2048);
    let token = issuer
        .mint(&request(), at(NOW), &SeededRng::new(b"jti"))
        .unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3);
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    assert_eq!(header, json!({"alg": "RS256", "kid": issuer.key().kid()}));
    let payload_text = String::from_utf8(URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    // Member order as kube-apiserver writes it.
    let order: Vec<usize> = [
        "\"aud\"",
        "\"exp\"",
        "\"iat\"",
        "\"iss\"",
        "\"jti\"",
        "\"kubernetes.io\"",
        "\"nbf\"",
        "\"sub\"",
    ]
    .iter()
    .map(|k| payload_text.find(k).unwrap())
    .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{payload_text}");
    let payload: Value = serde_json::from_str(&payload_text).unwrap();
    assert_eq!(payload["aud"], json!(["sts.amazonaws.com"]));
    assert_eq!(payload["iss"], ISSUER);
    assert_eq!(payload["sub"], "system:serviceaccount:carts:carts");
    assert_eq!(payload["iat"], NOW);
    assert_eq!(payload["nbf"], NOW);
    assert_eq!(payload["exp"], NOW + 86_400);
    let jti = payload["jti"].as_str().unwrap();
    assert_eq!(jti.len(), 36);
    assert_eq!(&jti[14..15], "4", "a version-4 UUID");
    assert_eq!(
        payload["kubernetes.io"],
        json!({
            "namespace": "carts",
            "node": {"name": "ip-10-42-0-1.eu-central-1.compute.internal", "uid": "0d1e2f3a-0000-4000-8000-000000000003"},
            "pod": {"name": "carts-7d8f9c-abcde", "uid": "1f2e3d4c-0000-4000-8000-000000000002"},
            "serviceaccount": {"name": "carts", "uid": "2a3b4c5d-0000-4000-8000-000000000001"}
        })
    );
    let mut extended = request();
    extended.warn_after = Some(Duration::from_secs(3607));
    let token = issuer
        .mint(&extended, at(NOW), &SeededRng::new(b"x"))
        .unwrap();
    let payload: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(payload["kubernetes.io"]["warnafter"], NOW + 3607);
}

#[test]
fn mint_rejects_bad_requests() {
    let issuer = issuer(KeyKind::EcP256);
    let rng = SeededRng::new(b"r");
    let mut r = request();
    r.namespace = "Carts".into();
    assert!(matches!(
        issuer.mint(&r, at(NOW), &rng),
        Err(TokenError::InvalidRequest(_))
    ));
    let mut r = request();
    r.service_account.name = "a b".into();
    assert!(issuer.mint(&r, at(NOW), &rng).is_err());
    let mut r = request();
    r.audiences.clear();
    assert!(issuer.mint(&r, at(NOW), &rng).is_err());
    let mut r = request();
    r.lifetime = Duration::from_secs(60);
    assert!(issuer.mint(&r, at(NOW), &rng).is_err());
    let mut r = request();
    r.lifetime = Duration::from_secs(365 * 86_400);
    assert!(issuer.mint(&r, at(NOW), &rng).is_err());
    assert!(
        Issuer::new(
            "oidc.example.com",
            SigningKey::generate(KeyKind::EcP256).unwrap()
        )
        .is_err()
    );
}

#[test]
fn time_checks_with_at_most_60_seconds_of_leeway() {
    let issuer = issuer(KeyKind::EcP256);
    let keys = keys_of(&issuer);
    let key = issuer.key();
    let token = forge(&header(key), &claims(NOW + 600), key);
    assert!(
        verifier().verify(&token, &keys, at(NOW + 659)).is_ok(),
        "inside the leeway"
    );
    let err = verifier().verify(&token, &keys, at(NOW + 660)).unwrap_err();
    assert_eq!(err, TokenError::Expired { exp: NOW + 600 });
    assert_eq!(err.kind(), TokenErrorKind::Expired);
    let strict = verifier().leeway(Duration::ZERO);
    assert!(strict.verify(&token, &keys, at(NOW + 600)).is_err());
    let capped = verifier().leeway(Duration::from_secs(3600));
    assert!(
        capped.verify(&token, &keys, at(NOW + 661)).is_err(),
        "leeway is capped at 60 s"
    );

    let mut future = claims(NOW + 7200);
    future["nbf"] = json!(NOW + 3600);
    let token = forge(&header(key), &future, key);
    let err = verifier().verify(&token, &keys, at(NOW)).unwrap_err();
    assert_eq!(err, TokenError::NotYetValid { nbf: NOW + 3600 });
    assert_eq!(err.kind(), TokenErrorKind::RejectedClaim);
    assert!(verifier().verify(&token, &keys, at(NOW + 3541)).is_ok());

    let mut issued_later = claims(NOW + 7200);
    issued_later["iat"] = json!(NOW + 600);
    let token = forge(&header(key), &issued_later, key);
    assert_eq!(
        verifier().verify(&token, &keys, at(NOW)).unwrap_err(),
        TokenError::IssuedInFuture { iat: NOW + 600 }
    );

    let mut fractional = claims(NOW + 600);
    fractional["exp"] = json!((NOW + 600) as f64 + 0.5);
    assert!(
        verifier()
            .verify(&forge(&header(key), &fractional, key), &keys, at(NOW))
            .is_ok()
    );
}

#[test]
fn issuer_and_audience() {
    let issuer = issuer(KeyKind::EcP256);
    let keys = keys_of(&issuer);
    let key = issuer.key();
    let mut other_iss = claims(NOW + 600);
    other_iss["iss"] = json!("https://evil.example.com");
    assert!(matches!(
        verifier().verify(&forge(&header(key), &other_iss, key), &keys, at(NOW)),
        Err(TokenError::WrongIssuer { .. })
    ));
    let mut trailing_slash = claims(NOW + 600);
    trailing_slash["iss"] = json!(format!("{ISSUER}/"));
    assert!(
        verifier()
            .verify(&forge(&header(key), &trailing_slash, key), &keys, at(NOW))
            .is_err(),
        "iss is compared exactly"
    );

    let mut other_aud = claims(NOW + 600);
    other_aud["aud"] = json!(["pods.eks.amazonaws.com"]);
    let token = forge(&header(key), &other_aud, key);
    let err = verifier().verify(&token, &keys, at(NOW)).unwrap_err();
    assert_eq!(err.kind(), TokenErrorKind::Invalid);
    assert!(matches!(err, TokenError::WrongAudience { .. }));
    let either = Verifier::new(ISSUER, &["sts.amazonaws.com", "pods.eks.amazonaws.com"]);
    assert_eq!(
        either.verify(&token, &keys, at(NOW)).unwrap().audience,
        "pods.eks.amazonaws.com"
    );

    let mut string_aud = claims(NOW + 600);
    string_aud["aud"] = json!("sts.amazonaws.com");
    assert!(
        verifier()
            .verify(&forge(&header(key), &string_aud, key), &keys, at(NOW))
            .is_ok()
    );

    let mut no_sub = claims(NOW + 600);
    no_sub.as_object_mut().unwrap().remove("sub");
    let err = verifier()
        .verify(&forge(&header(key), &no_sub, key), &keys, at(NOW))
        .unwrap_err();
    assert_eq!(err, TokenError::MissingClaim("sub"));
    let mut no_exp = claims(NOW + 600);
    no_exp.as_object_mut().unwrap().remove("exp");
    assert_eq!(
        verifier()
            .verify(&forge(&header(key), &no_exp, key), &keys, at(NOW))
            .unwrap_err(),
        TokenError::MissingClaim("exp")
    );
}

#[test]
fn hostile_headers() {
    let issuer = issuer(KeyKind::Rsa2048);
    let keys = keys_of(&issuer);
    let key = issuer.key();
    let body = claims(NOW + 600);
    for (name, extra) in [
        ("crit", json!(["exp"])),
        ("jku", json!("https://evil.example.com/jwks")),
        ("x5u", json!("https://evil.example.com/cert")),
        ("jwk", json!({"kty": "RSA", "n": "AQAB", "e": "AQAB"})),
        ("x5c", json!(["MIIB"])),
    ] {
        let mut h = header(key);
        h[name] = extra;
        let err = verifier()
            .verify(&forge(&h, &body, key), &keys, at(NOW))
            .unwrap_err();
        assert!(
            matches!(err, TokenError::ForbiddenHeader(n) if n == name),
            "{name}: {err:?}"
        );
    }

    // alg: none, with and without a signature part.
    let none_header = b64(br#"{"alg":"none"}"#);
    let payload = b64(body.to_string().as_bytes());
    for token in [
        format!("{none_header}.{payload}."),
        format!("{none_header}.{payload}.c2ln"),
    ] {
        assert!(verifier().verify(&token, &keys, at(NOW)).is_err());
    }
    assert!(matches!(
        verifier().verify(&format!("{none_header}.{payload}.c2ln"), &keys, at(NOW)),
        Err(TokenError::UnsupportedAlgorithm(a)) if a == "none"
    ));

    // HS256 signed with the public key (the classic key-confusion attack).
    for public in [
        key.verifying_key().spki_der().to_vec(),
        serde_json::to_vec(&key.verifying_key().to_jwk()).unwrap(),
    ] {
        let input = format!(
            "{}.{payload}",
            b64(format!(r#"{{"alg":"HS256","kid":"{}"}}"#, key.kid()).as_bytes())
        );
        let token = format!("{input}.{}", b64(&hmac_sha256(&public, input.as_bytes())));
        assert!(
            matches!(verifier().verify(&token, &keys, at(NOW)), Err(TokenError::UnsupportedAlgorithm(a)) if a == "HS256")
        );
    }

    // An algorithm the verifier does not allow.
    let rs_only = verifier().algorithms(&[JwsAlgorithm::ES256]);
    assert!(matches!(
        rs_only.verify(&forge(&header(key), &body, key), &keys, at(NOW)),
        Err(TokenError::UnsupportedAlgorithm(_))
    ));

    // Duplicate header members are refused rather than resolved.
    let dup = format!("{}.{payload}.c2ln", b64(br#"{"alg":"RS256","alg":"none"}"#));
    assert!(matches!(
        verifier().verify(&dup, &keys, at(NOW)),
        Err(TokenError::Malformed(_))
    ));
}

#[test]
fn keys_and_signatures() {
    let issuer = issuer(KeyKind::Rsa2048);
    let keys = keys_of(&issuer);
    let key = issuer.key();
    let body = claims(NOW + 600);

    let mut unknown = header(key);
    unknown["kid"] = json!("not-a-key");
    assert_eq!(
        verifier()
            .verify(&forge(&unknown, &body, key), &keys, at(NOW))
            .unwrap_err(),
        TokenError::UnknownKey(Some("not-a-key".into()))
    );

    // Signed by another key that claims our kid.
    let impostor = SigningKey::generate(KeyKind::Rsa2048).unwrap();
    assert_eq!(
        verifier()
            .verify(&forge(&header(key), &body, &impostor), &keys, at(NOW))
            .unwrap_err(),
        TokenError::BadSignature
    );

    // An ES256 header naming an RSA key's kid.
    let ec = SigningKey::generate(KeyKind::EcP256).unwrap();
    let confused = json!({"alg": "ES256", "kid": key.kid()});
    assert!(matches!(
        verifier().verify(&forge(&confused, &body, &ec), &keys, at(NOW)),
        Err(TokenError::UnknownKey(_))
    ));

    // Without kid, the only key of the algorithm is used.
    let no_kid = json!({"alg": "RS256"});
    assert!(
        verifier()
            .verify(&forge(&no_kid, &body, key), &keys, at(NOW))
            .is_ok()
    );

    // Payload swapped after signing.
    let token = forge(&header(key), &body, key);
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let mut other = body.clone();
    other["sub"] = json!("system:serviceaccount:kube-system:admin");
    parts[1] = b64(other.to_string().as_bytes());
    assert_eq!(
        verifier()
            .verify(&parts.join("."), &keys, at(NOW))
            .unwrap_err(),
        TokenError::BadSignature
    );
}

#[test]
fn malformed_tokens() {
    let issuer = issuer(KeyKind::EcP256);
    let keys = keys_of(&issuer);
    let token = issuer
        .mint(&request(), at(NOW), &SeededRng::new(b"m"))
        .unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    let malformed = |t: &str| {
        matches!(
            verifier().verify(t, &keys, at(NOW)),
            Err(TokenError::Malformed(_))
        )
    };
    assert!(malformed(""));
    assert!(malformed("a.b"));
    assert!(malformed(&format!("{token}.extra")));
    assert!(
        malformed(&format!("{}.{}.", parts[0], parts[1])),
        "empty signature"
    );
    assert!(
        malformed(&format!("{}=.{}.{}", parts[0], parts[1], parts[2])),
        "padding"
    );
    assert!(
        malformed(&format!("+{}.{}.{}", parts[0], parts[1], parts[2])),
        "a character outside base64url"
    );
    assert!(
        malformed(&format!("{}.{}.{}", b64(b"[1,2]"), parts[1], parts[2])),
        "header not an object"
    );
    assert!(
        malformed(&format!(
            "{}.{}.{}",
            b64(b"{\"kid\":\"x\"}"),
            parts[1],
            parts[2]
        )),
        "no alg"
    );
    // Non-canonical base64url: trailing bits set in the last character.
    let header = b64(br#"{"alg":"ES256"}"#);
    let last = header.chars().last().unwrap();
    let bumped = match last {
        'A' => 'B',
        'Q' => 'R',
        'g' => 'h',
        'w' => 'x',
        other => other,
    };
    if bumped != last {
        let tampered = format!(
            "{}{bumped}.{}.{}",
            &header[..header.len() - 1],
            parts[1],
            parts[2]
        );
        assert!(malformed(&tampered), "non-canonical base64");
    }
    let huge = format!("{}.{}.{}", parts[0], "A".repeat(20_001), parts[2]);
    assert!(matches!(
        verifier().verify(&huge, &keys, at(NOW)),
        Err(TokenError::TooLarge { .. })
    ));
    // The token itself, with a trailing newline, is refused; callers trim first.
    assert!(
        verifier()
            .verify(&format!("{token}\n"), &keys, at(NOW))
            .is_err()
    );
}

#[test]
fn discovery_and_jwks_as_kube_apiserver_serves_them() {
    let rsa = issuer(KeyKind::Rsa2048);
    let ec = SigningKey::generate(KeyKind::EcP256).unwrap();
    let mut keys = keys_of(&rsa);
    keys.insert(podiam_crypto::VerifyingKey::from_jwk(&ec.verifying_key().to_jwk()).unwrap());
    let doc = DiscoveryDocument::new(ISSUER, &default_jwks_uri(ISSUER), &keys.algorithms());
    let text = serde_json::to_string(&doc).unwrap();
    assert_eq!(
        text,
        format!(
            r#"{{"issuer":"{ISSUER}","jwks_uri":"{ISSUER}/openid/v1/jwks","response_types_supported":["id_token"],"subject_types_supported":["public"],"id_token_signing_alg_values_supported":["ES256","RS256"]}}"#
        )
    );
    let jwks = serde_json::to_value(keys.to_jwks()).unwrap();
    let first = &jwks["keys"][0];
    assert_eq!(first["use"], "sig");
    assert_eq!(first["kty"], "RSA");
    assert_eq!(first["alg"], "RS256");
    assert_eq!(first["kid"], rsa.key().kid());
    assert_eq!(first["e"], "AQAB");
    assert_eq!(jwks["keys"][1]["crv"], "P-256");
    assert_eq!(
        podiam_crypto::JwkSet::MEDIA_TYPE,
        "application/jwk-set+json"
    );
}

#[test]
fn jwks_cache_refetches_at_a_bounded_rate() {
    let issuer = issuer(KeyKind::EcP256);
    let mut cache = JwksCache::new(Duration::from_secs(30), Duration::from_secs(3600));
    assert!(cache.should_fetch(at(NOW), false), "empty: fetch");
    let skipped = cache.update(&keys_of(&issuer).to_jwks(), at(NOW));
    assert!(skipped.is_empty());
    assert_eq!(cache.keys().len(), 1);
    assert!(!cache.should_fetch(at(NOW + 1), false), "fresh");
    assert!(
        !cache.should_fetch(at(NOW + 10), true),
        "unknown kid, but fetched 10 s ago"
    );
    assert!(
        cache.should_fetch(at(NOW + 30), true),
        "unknown kid after the interval"
    );
    cache.attempted(at(NOW + 30));
    assert!(
        !cache.should_fetch(at(NOW + 31), true),
        "one attempt per interval, even failed ones"
    );
    assert!(!cache.should_fetch(at(NOW + 1800), false));
    assert!(
        cache.should_fetch(at(NOW + 3600), false),
        "stale after max age"
    );

    let mixed: podiam_crypto::JwkSet = serde_json::from_value(json!({"keys": [
        issuer.key().verifying_key().to_jwk(),
        {"kty": "RSA", "use": "enc", "kid": "enc-key", "n": "AQAB", "e": "AQAB"},
        {"kty": "OKP", "crv": "Ed25519", "kid": "ed", "x": "AAAA"}
    ]}))
    .unwrap();
    let skipped = cache.update(&mixed, at(NOW + 3600));
    assert_eq!(skipped.len(), 2, "{skipped:?}");
    assert_eq!(cache.keys().len(), 1);
}

proptest! {
    #[test]
    fn arbitrary_text_is_refused_without_panic(text in "[A-Za-z0-9_.=+/-]{0,300}") {
        let issuer = issuer(KeyKind::EcP256);
        prop_assert!(verifier().verify(&text, &keys_of(&issuer), at(NOW)).is_err());
    }

    #[test]
    fn any_changed_character_is_refused(index in 0usize..2000, replacement in "[A-Za-z0-9_-]") {
        let issuer = Issuer::new(ISSUER, SigningKey::generate(KeyKind::EcP256).unwrap()).unwrap();
        let keys = keys_of(&issuer);
        let token = issuer.mint(&request(), at(NOW), &SeededRng::new(b"p")).unwrap();
        let index = index % token.len();
        prop_assume!(&token[index..=index] != "." && token[index..=index] != replacement);
        let mut tampered = token.clone();
        tampered.replace_range(index..=index, &replacement);
        prop_assert!(verifier().verify(&tampered, &keys, at(NOW)).is_err());
    }
}
