//! Arbitrary AdmissionReviews: decoding and mutating never panic, and a patch applies.
#![no_main]

use libfuzzer_sys::fuzz_target;
use podiam_webhook::{Context, MutationConfig, ServiceAccountInfo, decode, mutate, refuse, respond};

fuzz_target!(|data: &[u8]| {
    let request = match decode(data) {
        Ok(request) => request,
        Err(undecodable) => {
            let _ = refuse(&undecodable);
            return;
        }
    };
    let Some(pod) = request.pod.as_ref() else {
        let _ = respond(&request, None);
        return;
    };
    let config = MutationConfig::default();
    let mut account = ServiceAccountInfo::default();
    account.annotations.insert(
        "eks.amazonaws.com/role-arn".to_owned(),
        "arn:aws:iam::1:role/r".to_owned(),
    );
    for association in [false, true] {
        let mutation = mutate(
            pod,
            &Context {
                service_account: Some(&account),
                has_association: association,
                config: &config,
                jittered_expiration: 80_000,
            },
        );
        if let Some(m) = &mutation {
            let mut patched = pod.clone();
            assert!(json_patch::patch(&mut patched, &m.patch).is_ok());
            assert_eq!(patched, m.pod);
        }
        let _ = respond(&request, mutation.as_ref());
    }
});
