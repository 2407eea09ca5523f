//! Forged, tampered and malformed tokens that [`TokenVerifier`] must refuse.
//!
//! The gateway calls `verify_user` and every gRPC service calls `verify_any` through
//! the shared interceptor, so each attack is checked against both. Every table row
//! changes one thing in a token that is otherwise accepted (see the
//! `..._is_accepted` controls), so a row can only pass because of that one change.

// Test helpers fail loudly by design.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine as _;
use haven_auth::keys::{KeyMaterial, SERVICE_KEY_ID, ServiceTokens};
use haven_auth::{AuthError, PrincipalKind, TokenVerifier};
use haven_config::{AuthSettings, Secret, Settings};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

const DEV_SECRET: [u8; 32] = [7; 32];
const SERVICE_SECRET: [u8; 32] = [9; 32];
const PUBLIC_KEY_ID: &str = "prod-2026";

const RSA_PRIVATE_PEM: &[u8] = include_bytes!("fixtures/test-only-rs256-private.pem");
const RSA_PUBLIC_PEM: &[u8] = include_bytes!("fixtures/test-only-rs256-public.pem");
const EC_PRIVATE_PEM: &[u8] = include_bytes!("fixtures/test-only-es256-private.pem");
const EC_PUBLIC_PEM: &[u8] = include_bytes!("fixtures/test-only-es256-public.pem");

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn auth_settings() -> AuthSettings {
    Settings::default().auth
}

fn leeway() -> i64 {
    i64::try_from(auth_settings().leeway_seconds).unwrap()
}

/// A verifier for development tokens (HS256, `kid` = `dev`).
fn dev_verifier() -> TokenVerifier {
    let keys = KeyMaterial {
        user_secret: Some(Secret::new(DEV_SECRET.to_vec())),
        user_public_pem: None,
        service_secret: Secret::new(SERVICE_SECRET.to_vec()),
    };
    TokenVerifier::new(&auth_settings(), &keys).unwrap()
}

/// A verifier for production tokens signed by the private half of `public_pem`.
fn public_key_verifier(
    algorithm: &str,
    public_pem: &[u8],
    key_id: Option<&str>,
) -> (AuthSettings, TokenVerifier) {
    let mut settings = auth_settings();
    settings.public_key_algorithm = algorithm.to_owned();
    settings.public_key_id = key_id.map(str::to_owned);
    let keys = KeyMaterial {
        user_secret: None,
        user_public_pem: Some(public_pem.to_vec()),
        service_secret: Secret::new(SERVICE_SECRET.to_vec()),
    };
    let verifier = TokenVerifier::new(&settings, &keys).unwrap();
    (settings, verifier)
}

/// Claims of a valid user token.
fn user_claims() -> Value {
    let settings = auth_settings();
    json!({
        "sub": "user-1",
        "iss": settings.issuer,
        "aud": settings.audience,
        "exp": now() + 600,
        "iat": now(),
        "org": "0b8f6f5e-7a4c-4f4e-9a57-6a9f2b1d3c4e",
        "roles": ["case_worker"],
    })
}

/// `user_claims` with `changes` applied: a `null` value removes the claim.
fn claims_with(changes: Value) -> Value {
    let mut claims = user_claims();
    let object = claims.as_object_mut().unwrap();
    for (name, value) in changes.as_object().unwrap() {
        if value.is_null() {
            object.remove(name);
        } else {
            object.insert(name.clone(), value.clone());
        }
    }
    claims
}

fn sign(algorithm: Algorithm, key: &EncodingKey, kid: Option<&str>, claims: &Value) -> String {
    let mut header = Header::new(algorithm);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

fn hs256(secret: &[u8], kid: Option<&str>, claims: &Value) -> String {
    sign(
        Algorithm::HS256,
        &EncodingKey::from_secret(secret).unwrap(),
        kid,
        claims,
    )
}

/// A development token as `haven dev-token` would mint it, with `claims`.
fn dev_token(claims: &Value) -> String {
    hs256(&DEV_SECRET, Some("dev"), claims)
}

fn rs256(kid: Option<&str>, claims: &Value) -> String {
    sign(
        Algorithm::RS256,
        &EncodingKey::from_rsa_pem(RSA_PRIVATE_PEM).unwrap(),
        kid,
        claims,
    )
}

fn es256(kid: Option<&str>, claims: &Value) -> String {
    sign(
        Algorithm::ES256,
        &EncodingKey::from_ec_pem(EC_PRIVATE_PEM).unwrap(),
        kid,
        claims,
    )
}

/// An unsigned token with a hand-written header (`alg: none` and friends).
fn unsigned(header: &Value, claims: &Value) -> String {
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!(
        "{}.{}.",
        engine.encode(header.to_string()),
        engine.encode(claims.to_string())
    )
}

/// Checks that `verifier` refuses every token through both entry points, and
/// reports every case that got through by name.
fn assert_all_refused(verifier: &TokenVerifier, cases: &[(&str, String)]) {
    let mut accepted = Vec::new();
    for (name, token) in cases {
        if let Ok(principal) = verifier.verify_user(token) {
            accepted.push(format!("{name} (verify_user → {principal:?})"));
        }
        if let Ok(principal) = verifier.verify_any(token) {
            accepted.push(format!("{name} (verify_any → {principal:?})"));
        }
    }
    assert!(
        accepted.is_empty(),
        "accepted tokens that must be refused:\n  {}",
        accepted.join("\n  ")
    );
}

/// The `jsonwebtoken` reason behind a refusal, when there is one.
fn refusal_kind(result: Result<haven_auth::Principal, AuthError>) -> Option<ErrorKind> {
    match result {
        Err(AuthError::Invalid(Some(error))) => Some(error.into_kind()),
        Err(AuthError::Invalid(None) | AuthError::Missing | AuthError::Expired) => None,
        Ok(principal) => panic!("accepted: {principal:?}"),
    }
}

#[test]
fn an_untampered_dev_token_is_accepted() {
    let verifier = dev_verifier();
    let token = dev_token(&user_claims());
    let principal = verifier.verify_user(&token).unwrap();
    assert_eq!(principal.subject, "user-1");
    assert_eq!(principal.kind, PrincipalKind::User);
    assert_eq!(verifier.verify_any(&token).unwrap(), principal);
}

#[test]
fn times_within_the_leeway_are_accepted() {
    let verifier = dev_verifier();
    let just_expired = dev_token(&claims_with(json!({ "exp": now() - leeway() / 2 })));
    assert!(verifier.verify_user(&just_expired).is_ok());
    let almost_valid = dev_token(&claims_with(json!({ "nbf": now() + leeway() / 2 })));
    assert!(verifier.verify_user(&almost_valid).is_ok());
}

#[test]
fn forged_and_malformed_dev_tokens_are_refused() {
    let verifier = dev_verifier();
    let settings = auth_settings();
    let far_future = now() + leeway() + 3600;
    let cases = [
        (
            "alg none",
            unsigned(
                &json!({"alg": "none", "typ": "JWT", "kid": "dev"}),
                &user_claims(),
            ),
        ),
        (
            "alg none without kid",
            unsigned(&json!({"alg": "none", "typ": "JWT"}), &user_claims()),
        ),
        (
            "alg NONE",
            unsigned(&json!({"alg": "NONE", "kid": "dev"}), &user_claims()),
        ),
        (
            "HS256 header over an empty signature",
            unsigned(&json!({"alg": "HS256", "kid": "dev"}), &user_claims()),
        ),
        (
            "unknown kid",
            hs256(&DEV_SECRET, Some("other-key"), &user_claims()),
        ),
        ("missing kid", hs256(&DEV_SECRET, None, &user_claims())),
        (
            "signed with a different HS256 key",
            hs256(&[8; 32], Some("dev"), &user_claims()),
        ),
        (
            "user claims signed with the service key and kid",
            hs256(&SERVICE_SECRET, Some(SERVICE_KEY_ID), &user_claims()),
        ),
        (
            "user claims signed with the service key, dev kid",
            hs256(&SERVICE_SECRET, Some("dev"), &user_claims()),
        ),
        (
            "expired beyond the leeway",
            dev_token(&claims_with(json!({ "exp": now() - leeway() - 60 }))),
        ),
        (
            "nbf in the future beyond the leeway",
            dev_token(&claims_with(json!({ "nbf": far_future }))),
        ),
        (
            "nbf as a string in the future",
            dev_token(&claims_with(json!({ "nbf": far_future.to_string() }))),
        ),
        (
            "missing exp",
            dev_token(&claims_with(json!({ "exp": null }))),
        ),
        (
            "exp as a string",
            dev_token(&claims_with(json!({ "exp": (now() + 600).to_string() }))),
        ),
        (
            "missing aud",
            dev_token(&claims_with(json!({ "aud": null }))),
        ),
        (
            "wrong aud",
            dev_token(&claims_with(json!({ "aud": "some-other-api" }))),
        ),
        (
            "service aud on a user token",
            dev_token(&claims_with(json!({ "aud": settings.service_audience }))),
        ),
        (
            "missing iss",
            dev_token(&claims_with(json!({ "iss": null }))),
        ),
        (
            "wrong iss",
            dev_token(&claims_with(json!({ "iss": "https://evil.example" }))),
        ),
        (
            "missing sub",
            dev_token(&claims_with(json!({ "sub": null }))),
        ),
        ("empty sub", dev_token(&claims_with(json!({ "sub": "" })))),
        (
            "roles as a string",
            dev_token(&claims_with(json!({ "roles": "admin" }))),
        ),
        (
            "missing roles",
            dev_token(&claims_with(json!({ "roles": null }))),
        ),
        (
            "org not a UUID",
            dev_token(&claims_with(json!({ "org": "ministry" }))),
        ),
        (
            "missing org",
            dev_token(&claims_with(json!({ "org": null }))),
        ),
        (
            "service role claimed by a user",
            dev_token(&claims_with(json!({ "roles": ["service"] }))),
        ),
    ];
    assert_all_refused(&verifier, &cases);
}

#[test]
fn expiry_beyond_the_leeway_is_reported_as_expired() {
    let verifier = dev_verifier();
    let token = dev_token(&claims_with(json!({ "exp": now() - leeway() - 60 })));
    assert!(matches!(
        verifier.verify_user(&token),
        Err(AuthError::Expired)
    ));
}

#[test]
fn a_string_nbf_is_refused_whether_past_or_future() {
    // Haven's claims type `nbf` as a number, so a string never reaches the
    // not-before check unparsed, even one that would be valid if it were a number.
    let verifier = dev_verifier();
    for nbf in [now() + leeway() + 3600, now() - 3600] {
        let token = dev_token(&claims_with(json!({ "nbf": nbf.to_string() })));
        assert!(verifier.verify_user(&token).is_err(), "nbf \"{nbf}\"");
        assert!(verifier.verify_any(&token).is_err(), "nbf \"{nbf}\"");
    }
}

#[test]
fn the_jwt_library_itself_refuses_a_string_nbf() {
    // jsonwebtoken before 10.3 skipped the not-before check for a string `nbf`
    // (CVE-2026-25537). Decode with untyped claims, so only the library's own
    // validation stands between the token and the caller.
    let mut validation = jsonwebtoken::Validation::new(Algorithm::HS256);
    validation.validate_nbf = true;
    validation.set_audience(&[auth_settings().audience]);
    validation.set_issuer(&[auth_settings().issuer]);
    let key = jsonwebtoken::DecodingKey::from_secret(&DEV_SECRET).unwrap();

    let future = now() + leeway() + 3600;
    let numeric = dev_token(&claims_with(json!({ "nbf": future })));
    let result = jsonwebtoken::decode::<Value>(&numeric, &key, &validation);
    assert!(
        matches!(
            result.as_ref().map_err(|error| error.kind()),
            Err(ErrorKind::ImmatureSignature)
        ),
        "{result:?}"
    );
    let string = dev_token(&claims_with(json!({ "nbf": future.to_string() })));
    let result = jsonwebtoken::decode::<Value>(&string, &key, &validation);
    assert!(
        result.is_err(),
        "a future string nbf was accepted: {result:?}"
    );
}

#[test]
fn a_future_nbf_is_refused_as_immature() {
    let verifier = dev_verifier();
    let token = dev_token(&claims_with(json!({ "nbf": now() + leeway() + 3600 })));
    let kind = refusal_kind(verifier.verify_user(&token));
    assert!(
        matches!(kind, Some(ErrorKind::ImmatureSignature)),
        "{kind:?}"
    );
}

#[test]
fn a_valid_service_token_is_refused_as_a_user_token() {
    let verifier = dev_verifier();
    let keys = KeyMaterial {
        user_secret: Some(Secret::new(DEV_SECRET.to_vec())),
        user_public_pem: None,
        service_secret: Secret::new(SERVICE_SECRET.to_vec()),
    };
    let token = ServiceTokens::new(&auth_settings(), &keys, "intake")
        .token()
        .unwrap();
    // Control: services accept it between themselves.
    let principal = verifier.verify_any(&token).unwrap();
    assert_eq!(principal.kind, PrincipalKind::Service);
    assert!(verifier.verify_user(&token).is_err());
}

#[test]
fn an_rs256_token_with_the_configured_kid_is_accepted() {
    let (_, verifier) = public_key_verifier("RS256", RSA_PUBLIC_PEM, Some(PUBLIC_KEY_ID));
    let token = rs256(Some(PUBLIC_KEY_ID), &user_claims());
    assert_eq!(verifier.verify_user(&token).unwrap().subject, "user-1");
    assert!(verifier.verify_any(&token).is_ok());
}

#[test]
fn without_a_configured_key_id_any_kid_of_the_one_key_is_accepted() {
    let (_, verifier) = public_key_verifier("RS256", RSA_PUBLIC_PEM, None);
    for kid in [None, Some("whatever")] {
        let token = rs256(kid, &user_claims());
        assert!(verifier.verify_user(&token).is_ok(), "{kid:?}");
    }
}

#[test]
fn forged_tokens_are_refused_by_an_rs256_verifier() {
    let (_, verifier) = public_key_verifier("RS256", RSA_PUBLIC_PEM, Some(PUBLIC_KEY_ID));
    let public_pem_text = std::str::from_utf8(RSA_PUBLIC_PEM).unwrap();
    let cases = [
        (
            "HS256 signed with the RSA public key PEM (key confusion)",
            hs256(RSA_PUBLIC_PEM, Some(PUBLIC_KEY_ID), &user_claims()),
        ),
        (
            "HS256 signed with the trimmed RSA public key PEM",
            hs256(
                public_pem_text.trim().as_bytes(),
                Some(PUBLIC_KEY_ID),
                &user_claims(),
            ),
        ),
        (
            "HS256 key confusion without kid",
            hs256(RSA_PUBLIC_PEM, None, &user_claims()),
        ),
        (
            "alg none with the configured kid",
            unsigned(
                &json!({"alg": "none", "kid": PUBLIC_KEY_ID}),
                &user_claims(),
            ),
        ),
        ("unknown kid", rs256(Some("retired-2025"), &user_claims())),
        ("missing kid", rs256(None, &user_claims())),
        (
            "a dev token",
            hs256(&DEV_SECRET, Some("dev"), &user_claims()),
        ),
        (
            "ES256 from another key",
            es256(Some(PUBLIC_KEY_ID), &user_claims()),
        ),
        (
            "expired beyond the leeway",
            rs256(
                Some(PUBLIC_KEY_ID),
                &claims_with(json!({ "exp": now() - leeway() - 60 })),
            ),
        ),
        (
            "wrong aud",
            rs256(
                Some(PUBLIC_KEY_ID),
                &claims_with(json!({ "aud": "some-other-api" })),
            ),
        ),
        (
            "wrong iss",
            rs256(
                Some(PUBLIC_KEY_ID),
                &claims_with(json!({ "iss": "https://evil.example" })),
            ),
        ),
    ];
    assert_all_refused(&verifier, &cases);
}

#[test]
fn key_confusion_is_refused_by_an_es256_verifier() {
    let (_, verifier) = public_key_verifier("ES256", EC_PUBLIC_PEM, None);
    // Control: a token signed by the EC private key verifies.
    assert!(verifier.verify_user(&es256(None, &user_claims())).is_ok());
    let cases = [
        (
            "HS256 signed with the EC public key PEM (key confusion)",
            hs256(EC_PUBLIC_PEM, None, &user_claims()),
        ),
        ("RS256 from another key", rs256(None, &user_claims())),
        (
            "alg none",
            unsigned(&json!({"alg": "none"}), &user_claims()),
        ),
    ];
    assert_all_refused(&verifier, &cases);
}

#[test]
fn key_confusion_is_refused_by_algorithm_pinning() {
    // The HMAC-with-public-key token is refused because the algorithm is pinned,
    // not by accident of a later check.
    let (_, verifier) = public_key_verifier("RS256", RSA_PUBLIC_PEM, Some(PUBLIC_KEY_ID));
    let token = hs256(RSA_PUBLIC_PEM, Some(PUBLIC_KEY_ID), &user_claims());
    let kind = refusal_kind(verifier.verify_user(&token));
    assert!(
        matches!(kind, Some(ErrorKind::InvalidAlgorithm)),
        "{kind:?}"
    );
}
