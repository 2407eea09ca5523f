//! JWT validation.

use std::collections::HashSet;
use std::sync::Arc;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};

use haven_config::AuthSettings;
use haven_error::{ErrorCode, HavenError};

use crate::claims::Claims;
use crate::keys::{DEV_KEY_ID, KeyMaterial, SERVICE_KEY_ID};
use crate::policy::Role;
use crate::principal::{Principal, PrincipalKind};

/// Why a token was refused. Clients only learn the coarse kind.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization: Bearer` credentials.
    #[error("missing bearer token")]
    Missing,
    /// `exp` is in the past.
    #[error("token expired")]
    Expired,
    /// Signature, algorithm, key id, audience, issuer or claim types are wrong.
    #[error("invalid token")]
    Invalid(#[source] Option<jsonwebtoken::errors::Error>),
}

impl From<AuthError> for HavenError {
    fn from(error: AuthError) -> Self {
        tracing::debug!(reason = ?error, "token refused");
        HavenError::new(ErrorCode::Unauthenticated, error.to_string())
    }
}

struct VerifyingKey {
    key: DecodingKey,
    validation: Validation,
    /// `kid` every token must carry; `None` only for a single configured public key
    /// without `auth.public_key_id`.
    kid: Option<String>,
}

/// Validates user and service tokens.
#[derive(Clone)]
pub struct TokenVerifier {
    user: Arc<VerifyingKey>,
    service: Arc<VerifyingKey>,
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("TokenVerifier")
            .finish_non_exhaustive()
    }
}

fn validation(algorithm: Algorithm, issuer: &str, audience: &str, leeway: u64) -> Validation {
    let mut validation = Validation::new(algorithm);
    validation.algorithms = vec![algorithm];
    validation.required_spec_claims = ["exp", "iss", "aud", "sub"]
        .into_iter()
        .map(str::to_owned)
        .collect::<HashSet<_>>();
    validation.leeway = leeway;
    validation.validate_exp = true;
    validation.validate_nbf = true;
    validation.validate_aud = true;
    validation.set_audience(&[audience]);
    validation.set_issuer(&[issuer]);
    validation
}

impl TokenVerifier {
    /// Builds the verifier from settings and the key material loaded at start-up.
    pub fn new(settings: &AuthSettings, keys: &KeyMaterial) -> Result<Self, HavenError> {
        let (user_key, user_algorithm, user_kid) = match (&keys.user_public_pem, &keys.user_secret)
        {
            (Some(pem), _) => {
                let (key, algorithm) = match settings.public_key_algorithm.as_str() {
                    "RS256" => (DecodingKey::from_rsa_pem(pem), Algorithm::RS256),
                    "ES256" => (DecodingKey::from_ec_pem(pem), Algorithm::ES256),
                    _ => (DecodingKey::from_ed_pem(pem), Algorithm::EdDSA),
                };
                let key = key.map_err(|error| {
                    HavenError::new(
                        ErrorCode::Internal,
                        format!("auth.public_key_file is not a valid PEM key: {error}"),
                    )
                })?;
                (key, algorithm, settings.public_key_id.clone())
            }
            (None, Some(secret)) => (
                DecodingKey::from_secret(secret.expose()).map_err(HavenError::internal)?,
                Algorithm::HS256,
                Some(DEV_KEY_ID.to_owned()),
            ),
            (None, None) => {
                return Err(HavenError::new(
                    ErrorCode::Internal,
                    "no key to verify user tokens: set auth.public_key_file",
                ));
            }
        };
        let service_key =
            DecodingKey::from_secret(keys.service_secret.expose()).map_err(HavenError::internal)?;
        Ok(Self {
            user: Arc::new(VerifyingKey {
                key: user_key,
                validation: validation(
                    user_algorithm,
                    &settings.issuer,
                    &settings.audience,
                    settings.leeway_seconds,
                ),
                kid: user_kid,
            }),
            service: Arc::new(VerifyingKey {
                key: service_key,
                validation: validation(
                    Algorithm::HS256,
                    &settings.issuer,
                    &settings.service_audience,
                    settings.leeway_seconds,
                ),
                kid: Some(SERVICE_KEY_ID.to_owned()),
            }),
        })
    }

    /// Validates a user token. The gateway accepts nothing else.
    pub fn verify_user(&self, token: &str) -> Result<Principal, AuthError> {
        let claims = decode(&self.user, token)?;
        principal_from(claims, PrincipalKind::User)
    }

    /// Validates a user token or a service token. gRPC services accept both.
    pub fn verify_any(&self, token: &str) -> Result<Principal, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| AuthError::Invalid(Some(e)))?;
        if header.kid.as_deref() == Some(SERVICE_KEY_ID) {
            let claims = decode(&self.service, token)?;
            return principal_from(claims, PrincipalKind::Service);
        }
        self.verify_user(token)
    }
}

fn decode(key: &VerifyingKey, token: &str) -> Result<Claims, AuthError> {
    let header = jsonwebtoken::decode_header(token).map_err(|e| AuthError::Invalid(Some(e)))?;
    if let Some(expected) = key.kid.as_deref()
        && header.kid.as_deref() != Some(expected)
    {
        return Err(AuthError::Invalid(None));
    }
    match jsonwebtoken::decode::<Claims>(token, &key.key, &key.validation) {
        Ok(data) => Ok(data.claims),
        Err(error)
            if matches!(
                error.kind(),
                jsonwebtoken::errors::ErrorKind::ExpiredSignature
            ) =>
        {
            Err(AuthError::Expired)
        }
        Err(error) => Err(AuthError::Invalid(Some(error))),
    }
}

/// Longest `sub` claim accepted, in bytes (the audit trail's limit for an actor).
pub const MAX_SUBJECT_BYTES: usize = 128;

fn principal_from(claims: Claims, kind: PrincipalKind) -> Result<Principal, AuthError> {
    let mut roles = Vec::with_capacity(claims.roles.len());
    for name in &claims.roles {
        let role = Role::parse(name).ok_or(AuthError::Invalid(None))?;
        // The service role only comes from a service token, and a service token
        // carries nothing else.
        if (role == Role::Service) != (kind == PrincipalKind::Service) {
            return Err(AuthError::Invalid(None));
        }
        roles.push(role);
    }
    // The subject is written to the audit trail as the actor: a subject the trail
    // could not take would fail every audited call later, so it is refused here.
    let subject_fits = !claims.sub.is_empty()
        && claims.sub.len() <= MAX_SUBJECT_BYTES
        && !claims.sub.chars().any(char::is_control);
    if roles.is_empty() || !subject_fits {
        return Err(AuthError::Invalid(None));
    }
    Ok(Principal {
        subject: claims.sub,
        organization_id: claims.org,
        roles,
        kind,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    use crate::keys::{DevTokenRequest, KeyMaterial, ServiceTokens};
    use base64::Engine;
    use haven_config::Settings;

    fn setup() -> (tempfile::TempDir, Settings, KeyMaterial, TokenVerifier) {
        let dir = tempfile::tempdir().unwrap();
        let settings = Settings {
            data_dir: dir.path().to_path_buf(),
            ..Settings::default()
        };
        let keys = KeyMaterial::load_or_create(&settings).unwrap();
        let verifier = TokenVerifier::new(&settings.auth, &keys).unwrap();
        (dir, settings, keys, verifier)
    }

    fn request(roles: &[&str]) -> DevTokenRequest {
        DevTokenRequest {
            subject: "user-1".into(),
            organization_id: Uuid::nil(),
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            ttl_seconds: 600,
        }
    }

    #[test]
    fn a_dev_token_verifies_with_its_claims() {
        let (_dir, settings, keys, verifier) = setup();
        let token = keys
            .mint_dev_token(&settings.auth, &request(&["case_worker"]))
            .unwrap();
        let principal = verifier.verify_user(&token).unwrap();
        assert_eq!(principal.roles, vec![Role::CaseWorker]);
        assert_eq!(principal.kind, PrincipalKind::User);
    }

    #[test]
    fn expired_wrong_audience_and_alg_none_are_refused() {
        let (_dir, settings, keys, verifier) = setup();
        let mut expired = request(&["admin"]);
        expired.ttl_seconds = -3600;
        let token = keys.mint_dev_token(&settings.auth, &expired).unwrap();
        assert!(matches!(
            verifier.verify_user(&token),
            Err(AuthError::Expired)
        ));

        let mut other = settings.auth.clone();
        other.audience = "someone-else".into();
        let token = keys.mint_dev_token(&other, &request(&["admin"])).unwrap();
        assert!(verifier.verify_user(&token).is_err());

        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let header = engine.encode(br#"{"alg":"none","typ":"JWT","kid":"dev"}"#);
        let body = engine.encode(
            serde_json::json!({"sub":"x","iss":"haven","aud":"haven-api","exp":9999999999i64,
            "org":Uuid::nil(),"roles":["admin"]})
            .to_string(),
        );
        assert!(verifier.verify_user(&format!("{header}.{body}.")).is_err());
    }

    #[test]
    fn a_subject_the_audit_trail_cannot_name_is_refused() {
        let (_dir, settings, keys, verifier) = setup();
        for (subject, accepted) in [
            ("u".repeat(MAX_SUBJECT_BYTES), true),
            ("u".repeat(MAX_SUBJECT_BYTES + 1), false),
            ("user\n1".to_owned(), false),
        ] {
            let mut claims = request(&["case_worker"]);
            claims.subject = subject.clone();
            let token = keys.mint_dev_token(&settings.auth, &claims).unwrap();
            assert_eq!(
                verifier.verify_user(&token).is_ok(),
                accepted,
                "{subject:?}"
            );
        }
    }

    #[test]
    fn unknown_roles_and_user_claimed_service_role_are_refused() {
        let (_dir, settings, keys, verifier) = setup();
        for roles in [&["root"][..], &["service"][..], &[][..]] {
            let token = keys
                .mint_dev_token(&settings.auth, &request(roles))
                .unwrap();
            assert!(verifier.verify_user(&token).is_err(), "{roles:?}");
        }
    }

    #[test]
    fn service_tokens_work_between_services_but_not_as_user_tokens() {
        let (_dir, settings, keys, verifier) = setup();
        let tokens = ServiceTokens::new(&settings.auth, &keys, "intake");
        let token = tokens.token().unwrap();
        let principal = verifier.verify_any(&token).unwrap();
        assert_eq!(principal.kind, PrincipalKind::Service);
        assert_eq!(principal.subject, "service:intake");
        assert!(verifier.verify_user(&token).is_err());
    }

    #[test]
    fn keys_are_generated_once_and_reused() {
        let (dir, settings, keys, _verifier) = setup();
        let again = KeyMaterial::load_or_create(&settings).unwrap();
        let token = keys
            .mint_dev_token(&settings.auth, &request(&["admin"]))
            .unwrap();
        let verifier = TokenVerifier::new(&settings.auth, &again).unwrap();
        assert!(verifier.verify_user(&token).is_ok());
        assert!(dir.path().join("keys").join("dev-user-hs256.key").exists());
    }
}
