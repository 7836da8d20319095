//! Issuing, sealing and unsealing sessions.

#![expect(clippy::unwrap_used, reason = "test fixtures fail loudly")]

use podiam_crypto::{AeadKey, KeyId, Keyring, SeededRng};
use podiam_session::{MAX_TOKEN_LEN, Origin, Session, SessionDetails, SessionError};
use proptest::prelude::*;
use time::OffsetDateTime;

fn keyring(seed: &[u8], id: u32) -> Keyring {
    Keyring::new(AeadKey::generate(KeyId(id), &SeededRng::new(seed)).unwrap())
}

/// A Pod Identity session as EKS Auth issues it: six session tags.
fn pod_identity() -> SessionDetails {
    let cluster = "arn:aws:eks:eu-central-1:637423329338:cluster/eks-workshop";
    SessionDetails {
        account: "637423329338".into(),
        role_arn: "arn:aws:iam::637423329338:role/eks-workshop-carts-dynamo-pia".into(),
        role_id: "AROAZI3SQ6VPDKN6R7U4Q".into(),
        session_name: "eks-eks-worksh-carts-7d8f-5c1e7b2a-8f3d-4c6b-9a1e-2f4d6b8c0e1a".into(),
        source_identity: None,
        tags: vec![
            ("eks-cluster-arn".into(), cluster.into()),
            ("eks-cluster-name".into(), "eks-workshop".into()),
            ("kubernetes-namespace".into(), "carts".into()),
            ("kubernetes-service-account".into(), "carts".into()),
            ("kubernetes-pod-name".into(), "carts-7d8f9c6b5-abcde".into()),
            (
                "kubernetes-pod-uid".into(),
                "1f2e3d4c-5b6a-4798-8a7b-6c5d4e3f2a1b".into(),
            ),
        ],
        transitive_tag_keys: vec![],
        policy: None,
        policy_arns: vec![],
        issued_at: 1_714_564_800,
        expires_at: 1_714_564_800 + 6 * 3600,
        origin: Origin::PodIdentity {
            cluster: cluster.into(),
            association_id: "a-aihyvi9tbbw4qzkws".into(),
        },
    }
}

#[test]
fn issue_and_unseal_anywhere() {
    let rng = SeededRng::new(b"issue");
    let ring = keyring(b"k1", 1);
    let (session, token) = Session::issue(pod_identity(), &ring, &rng).unwrap();
    assert!(session.access_key_id.starts_with("ASIA"));
    assert_eq!(session.access_key_id.len(), 20);
    assert_eq!(session.secret_access_key.expose().len(), 40);
    // Another replica holding the same key material opens it.
    let replica = keyring(b"k1", 1);
    let opened = Session::unseal(&token, &replica).unwrap();
    assert_eq!(opened, session);
    assert_eq!(
        opened.assumed_role_arn(),
        "arn:aws:sts::637423329338:assumed-role/eks-workshop-carts-dynamo-pia/eks-eks-worksh-carts-7d8f-5c1e7b2a-8f3d-4c6b-9a1e-2f4d6b8c0e1a"
    );
    assert_eq!(
        opened.assumed_role_id(),
        format!("AROAZI3SQ6VPDKN6R7U4Q:{}", opened.details.session_name)
    );
    assert!(
        !format!("{opened:?}").contains(opened.secret_access_key.expose().as_str()),
        "Debug hides the secret"
    );
}

#[test]
fn a_typical_token_stays_under_1000_bytes() {
    let (_, token) =
        Session::issue(pod_identity(), &keyring(b"k", 1), &SeededRng::new(b"s")).unwrap();
    assert!(token.len() < 1000, "{} bytes", token.len());
    let irsa = SessionDetails {
        tags: vec![],
        session_name: "botocore-session-1714564800".into(),
        origin: Origin::WebIdentity {
            provider: "arn:aws:iam::637423329338:oidc-provider/oidc.eks.eu-central-1.amazonaws.com/id/5B1F8794C4C52E4101E98664FC964C3C".into(),
            subject: "system:serviceaccount:carts:carts".into(),
            audience: "sts.amazonaws.com".into(),
        },
        ..pod_identity()
    };
    let (_, token) = Session::issue(irsa, &keyring(b"k", 1), &SeededRng::new(b"s")).unwrap();
    assert!(token.len() < 1000, "{} bytes", token.len());
}

#[test]
fn retired_and_foreign_keys() {
    let rng = SeededRng::new(b"r");
    let mut ring = keyring(b"k1", 1);
    let (_, old) = Session::issue(pod_identity(), &ring, &rng).unwrap();
    ring.insert(AeadKey::generate(KeyId(2), &SeededRng::new(b"k2")).unwrap());
    ring.set_current(KeyId(2)).unwrap();
    let (_, new) = Session::issue(pod_identity(), &ring, &rng).unwrap();
    assert!(
        Session::unseal(&old, &ring).is_ok(),
        "old sessions verify during the overlap"
    );
    ring.retire(KeyId(1)).unwrap();
    assert_eq!(
        Session::unseal(&old, &ring).unwrap_err(),
        SessionError::UnknownKey(1)
    );
    assert!(Session::unseal(&new, &ring).is_ok());
    // Same key id, different material: another installation.
    assert_eq!(
        Session::unseal(&new, &keyring(b"other", 2)).unwrap_err(),
        SessionError::Tampered
    );
}

#[test]
fn expiry_is_the_callers_check() {
    let (session, _) =
        Session::issue(pod_identity(), &keyring(b"k", 1), &SeededRng::new(b"e")).unwrap();
    let at = |t| OffsetDateTime::from_unix_timestamp(t).unwrap();
    assert!(!session.is_expired(at(session.details.expires_at - 1)));
    assert!(session.is_expired(at(session.details.expires_at)));
}

#[test]
fn malformed_tokens() {
    let ring = keyring(b"k", 1);
    for token in [
        "",
        "not base64!",
        "AAAA",
        &"A".repeat(MAX_TOKEN_LEN + 1),
        "IQoJb3JpZ2luX2VjEXAMPLE",
    ] {
        assert!(Session::unseal(token, &ring).is_err(), "{token:.20}");
    }
    assert_eq!(
        Session::unseal("", &ring).unwrap_err(),
        SessionError::Malformed
    );
}

proptest! {
    #[test]
    fn every_single_bit_flip_is_refused(bit in 0usize..8000) {
        let ring = keyring(b"k", 1);
        let (_, token) = Session::issue(pod_identity(), &ring, &SeededRng::new(b"f")).unwrap();
        let mut bytes = base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, &token).unwrap();
        let bit = bit % (bytes.len() * 8);
        bytes[bit / 8] ^= 1 << (bit % 8);
        let tampered = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, &bytes);
        prop_assert!(Session::unseal(&tampered, &ring).is_err());
    }

    #[test]
    fn arbitrary_tokens_never_panic(token in "[A-Za-z0-9_-]{0,400}") {
        prop_assert!(Session::unseal(&token, &keyring(b"k", 1)).is_err());
    }
}
