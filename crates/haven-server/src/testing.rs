//! Throwaway certificate authorities for tests of TLS and mutual TLS (feature
//! `testing`). Keys are generated per test and written to a temporary directory
//! that is removed when the [`TestPki`] is dropped.

use std::path::{Path, PathBuf};

use haven_config::GrpcTlsSettings;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

/// A CA, a server certificate for `localhost` and `127.0.0.1` signed by it (usable
/// as a client certificate too, like a Haven service's), a client certificate
/// signed by it, and a second, untrusted CA with its own client certificate.
#[derive(Debug)]
pub struct TestPki {
    dir: tempfile::TempDir,
}

/// File names inside the temporary directory.
const CA: &str = "ca.pem";
const SERVER_CERT: &str = "server.pem";
const SERVER_KEY: &str = "server-key.pem";
const CLIENT_CERT: &str = "client.pem";
const CLIENT_KEY: &str = "client-key.pem";
const OTHER_CA: &str = "other-ca.pem";
const OTHER_CLIENT_CERT: &str = "other-client.pem";
const OTHER_CLIENT_KEY: &str = "other-client-key.pem";

impl TestPki {
    /// Generates every key and certificate. Fails only if the temporary directory
    /// cannot be written.
    pub fn generate() -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let path = dir.path();

        let ca = certificate_authority("Haven test CA")?;
        std::fs::write(path.join(CA), ca.pem())?;
        let server = leaf(
            &["localhost", "127.0.0.1"],
            "haven-service",
            &[
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
            &ca,
        )?;
        write_pair(path, SERVER_CERT, SERVER_KEY, &server)?;
        let client = leaf(
            &[],
            "ministry-system",
            &[ExtendedKeyUsagePurpose::ClientAuth],
            &ca,
        )?;
        write_pair(path, CLIENT_CERT, CLIENT_KEY, &client)?;

        let other_ca = certificate_authority("Untrusted CA")?;
        std::fs::write(path.join(OTHER_CA), other_ca.pem())?;
        let other_client = leaf(
            &[],
            "impostor",
            &[ExtendedKeyUsagePurpose::ClientAuth],
            &other_ca,
        )?;
        write_pair(path, OTHER_CLIENT_CERT, OTHER_CLIENT_KEY, &other_client)?;
        Ok(Self { dir })
    }

    /// Path of a file in the directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The trusted CA certificate.
    pub fn ca_file(&self) -> PathBuf {
        self.path(CA)
    }

    /// The server certificate chain (`localhost`, `127.0.0.1`).
    pub fn server_cert_file(&self) -> PathBuf {
        self.path(SERVER_CERT)
    }

    /// The server's private key.
    pub fn server_key_file(&self) -> PathBuf {
        self.path(SERVER_KEY)
    }

    /// The CA that signed nothing the servers trust.
    pub fn other_ca_file(&self) -> PathBuf {
        self.path(OTHER_CA)
    }

    /// A gRPC server identity; with `require_client_certificates`, mutual TLS
    /// against the trusted CA.
    pub fn server(&self, require_client_certificates: bool) -> GrpcTlsSettings {
        GrpcTlsSettings {
            cert_file: Some(self.server_cert_file()),
            key_file: Some(self.server_key_file()),
            client_ca_file: require_client_certificates.then(|| self.ca_file()),
            ca_file: None,
        }
    }

    /// A client that trusts the CA and presents no certificate.
    pub fn client_without_certificate(&self) -> GrpcTlsSettings {
        GrpcTlsSettings {
            ca_file: Some(self.ca_file()),
            ..GrpcTlsSettings::default()
        }
    }

    /// A client that trusts the CA and presents a certificate it issued.
    pub fn client_with_certificate(&self) -> GrpcTlsSettings {
        GrpcTlsSettings {
            cert_file: Some(self.path(CLIENT_CERT)),
            key_file: Some(self.path(CLIENT_KEY)),
            client_ca_file: None,
            ca_file: Some(self.ca_file()),
        }
    }

    /// A client that trusts the CA but presents a certificate from another CA.
    pub fn client_with_untrusted_certificate(&self) -> GrpcTlsSettings {
        GrpcTlsSettings {
            cert_file: Some(self.path(OTHER_CLIENT_CERT)),
            key_file: Some(self.path(OTHER_CLIENT_KEY)),
            client_ca_file: None,
            ca_file: Some(self.ca_file()),
        }
    }

    /// A client that presents a trusted certificate but trusts only the other CA,
    /// so it refuses the server.
    pub fn client_trusting_another_ca(&self) -> GrpcTlsSettings {
        GrpcTlsSettings {
            ca_file: Some(self.other_ca_file()),
            ..self.client_with_certificate()
        }
    }
}

fn certificate_authority(name: &str) -> anyhow::Result<CertifiedIssuer<'static, KeyPair>> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok(CertifiedIssuer::self_signed(params, KeyPair::generate()?)?)
}

struct Leaf {
    certificate_pem: String,
    key_pem: String,
}

fn leaf(
    names: &[&str],
    common_name: &str,
    usages: &[ExtendedKeyUsagePurpose],
    issuer: &CertifiedIssuer<'static, KeyPair>,
) -> anyhow::Result<Leaf> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(
        names
            .iter()
            .map(|name| (*name).to_owned())
            .collect::<Vec<_>>(),
    )?;
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = usages.to_vec();
    let certificate = params.signed_by(&key, issuer)?;
    Ok(Leaf {
        certificate_pem: certificate.pem(),
        key_pem: key.serialize_pem(),
    })
}

fn write_pair(dir: &Path, cert_name: &str, key_name: &str, leaf: &Leaf) -> anyhow::Result<()> {
    std::fs::write(dir.join(cert_name), &leaf.certificate_pem)?;
    std::fs::write(dir.join(key_name), &leaf.key_pem)?;
    Ok(())
}
