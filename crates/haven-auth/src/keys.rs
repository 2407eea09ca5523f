//! Key material: development keys generated into the data directory on first run,
//! production public keys from files, and token minting for development and for
//! service-to-service calls.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rand::RngCore;
use uuid::Uuid;

use haven_config::{AuthSettings, Secret, Settings};
use haven_error::{ErrorCode, HavenError};

use crate::claims::Claims;

/// `kid` of development user tokens.
pub const DEV_KEY_ID: &str = "dev";
/// `kid` of service-to-service tokens.
pub const SERVICE_KEY_ID: &str = "haven-service";

const USER_KEY_FILE: &str = "dev-user-hs256.key";
const SERVICE_KEY_FILE: &str = "service-hs256.key";

/// Keys a process needs, loaded once at start-up.
#[derive(Debug, Clone)]
pub struct KeyMaterial {
    /// Development HS256 secret for user tokens (absent in production).
    pub user_secret: Option<Secret<Vec<u8>>>,
    /// Production PEM public key for user tokens.
    pub user_public_pem: Option<Vec<u8>>,
    /// HS256 secret for service-to-service tokens.
    pub service_secret: Secret<Vec<u8>>,
}

/// The directory holding generated keys.
pub fn keys_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("keys")
}

impl KeyMaterial {
    /// Loads configured keys; generates development keys that are missing.
    pub fn load_or_create(settings: &Settings) -> Result<Self, HavenError> {
        let dir = keys_dir(&settings.data_dir);
        let (user_secret, user_public_pem) = match &settings.auth.public_key_file {
            Some(path) => {
                let pem = std::fs::read(path).map_err(|error| {
                    HavenError::new(
                        ErrorCode::Internal,
                        format!("auth.public_key_file {}: {error}", path.display()),
                    )
                })?;
                (None, Some(pem))
            }
            None => (
                Some(Secret::new(load_or_generate(&dir, USER_KEY_FILE)?)),
                None,
            ),
        };
        let service_secret = match &settings.auth.service_secret {
            Some(secret) => secret.expose().as_bytes().to_vec(),
            None => load_or_generate(&dir, SERVICE_KEY_FILE)?,
        };
        Ok(Self {
            user_secret,
            user_public_pem,
            service_secret: Secret::new(service_secret),
        })
    }

    /// Mints a development user token. Fails in production, where an identity
    /// provider issues tokens.
    pub fn mint_dev_token(
        &self,
        settings: &AuthSettings,
        request: &DevTokenRequest,
    ) -> Result<String, HavenError> {
        let Some(secret) = &self.user_secret else {
            return Err(HavenError::new(
                ErrorCode::PermissionDenied,
                "development tokens are disabled when auth.public_key_file is set",
            ));
        };
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let claims = Claims {
            sub: request.subject.clone(),
            iss: settings.issuer.clone(),
            aud: settings.audience.clone(),
            exp: now + request.ttl_seconds,
            iat: Some(now),
            nbf: None,
            org: request.organization_id,
            roles: request.roles.clone(),
        };
        sign(secret.expose(), DEV_KEY_ID, &claims)
    }
}

/// What a development token should say.
#[derive(Debug, Clone)]
pub struct DevTokenRequest {
    /// `sub`.
    pub subject: String,
    /// `org`.
    pub organization_id: Uuid,
    /// `roles`.
    pub roles: Vec<String>,
    /// Lifetime in seconds (negative makes an expired token, for tests).
    pub ttl_seconds: i64,
}

fn sign(secret: &[u8], kid: &str, claims: &Claims) -> Result<String, HavenError> {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(kid.to_owned());
    let key = EncodingKey::from_secret(secret).map_err(HavenError::internal)?;
    jsonwebtoken::encode(&header, claims, &key).map_err(HavenError::internal)
}

/// Reads a hex key file, or creates it with 32 random bytes. Creation is atomic
/// (write a temporary file, then hard-link it into place), so processes starting at
/// the same time end up with the same key.
fn load_or_generate(dir: &Path, name: &str) -> Result<Vec<u8>, HavenError> {
    let path = dir.join(name);
    if let Some(key) = read_key(&path)? {
        return Ok(key);
    }
    std::fs::create_dir_all(dir).map_err(|error| key_error(dir, error))?;
    set_mode(dir, 0o700);
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let temporary = dir.join(format!(".{name}.{}", Uuid::new_v4()));
    {
        let mut file =
            std::fs::File::create(&temporary).map_err(|error| key_error(&temporary, error))?;
        set_mode(&temporary, 0o600);
        file.write_all(hex::encode(bytes).as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|error| key_error(&temporary, error))?;
    }
    let linked = std::fs::hard_link(&temporary, &path);
    let _ = std::fs::remove_file(&temporary);
    match linked {
        Ok(()) => tracing::info!(file = %path.display(), "generated development key"),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(error) => return Err(key_error(&path, error)),
    }
    read_key(&path)?.ok_or_else(|| HavenError::new(ErrorCode::Internal, "key file vanished"))
}

fn read_key(path: &Path) -> Result<Option<Vec<u8>>, HavenError> {
    match std::fs::read_to_string(path) {
        Ok(text) => hex::decode(text.trim()).map(Some).map_err(|_| {
            HavenError::new(
                ErrorCode::Internal,
                format!("{} is not a hex key", path.display()),
            )
        }),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(key_error(path, error)),
    }
}

fn key_error(path: &Path, error: std::io::Error) -> HavenError {
    HavenError::new(
        ErrorCode::Internal,
        format!("key file {}: {error}", path.display()),
    )
}

fn set_mode(path: &Path, mode: u32) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode));
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
}

/// Mints and caches the short-lived token a service presents to other services.
#[derive(Debug)]
pub struct ServiceTokens {
    secret: Secret<Vec<u8>>,
    issuer: String,
    audience: String,
    ttl_seconds: i64,
    subject: String,
    cached: Mutex<Option<(String, i64)>>,
}

impl ServiceTokens {
    /// Tokens for the service called `name` (e.g. `intake`).
    pub fn new(settings: &AuthSettings, keys: &KeyMaterial, name: &str) -> Self {
        Self {
            secret: keys.service_secret.clone(),
            issuer: settings.issuer.clone(),
            audience: settings.service_audience.clone(),
            ttl_seconds: i64::try_from(settings.service_token_ttl_seconds).unwrap_or(300),
            subject: format!("service:{name}"),
            cached: Mutex::new(None),
        }
    }

    /// A valid token, minted anew when the cached one is within a minute of expiry.
    pub fn token(&self) -> Result<String, HavenError> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let mut cached = self
            .cached
            .lock()
            .map_err(|_| HavenError::new(ErrorCode::Internal, "token cache poisoned"))?;
        if let Some((token, expires)) = cached.as_ref()
            && *expires - 60 > now
        {
            return Ok(token.clone());
        }
        let claims = Claims {
            sub: self.subject.clone(),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            exp: now + self.ttl_seconds,
            iat: Some(now),
            nbf: None,
            org: Uuid::nil(),
            roles: vec!["service".to_owned()],
        };
        let token = sign(self.secret.expose(), SERVICE_KEY_ID, &claims)?;
        *cached = Some((token.clone(), claims.exp));
        Ok(token)
    }
}
