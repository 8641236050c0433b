//! Certificates, made and read without I/O: the cluster's certificate authority (made
//! by `cluster new`), each peer's certificate (issued by the CA for the peer's own
//! public key when it is admitted), the self-signed certificate a peer shows before it
//! belongs to a cluster, fingerprints, and the peer id a certificate names.
//!
//! Every peer certificate carries two DNS names: [`PEER_SERVER_NAME`], the name every
//! client checks a peer against (peers are reached at any address, so the address is
//! not what identifies them), and `peer-<id>.<PEER_SERVER_NAME>`, which says which
//! member it is. Keys are ECDSA P-256 (ring).

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, PublicKeyData, SignatureAlgorithm, PKCS_ECDSA_P256_SHA256,
};
use rustls_pki_types::CertificateDer;
use sha2::{Digest, Sha256};

use monk_statemachine::PeerId;

/// The DNS name in every peer certificate, and the name clients verify.
pub const PEER_SERVER_NAME: &str = "monk-peer";
/// Length of an encoded ECDSA P-256 public key (uncompressed point), in bytes.
pub const PUBLIC_KEY_BYTES: usize = 65;

/// A certificate could not be made or read.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("cannot make a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("not a valid certificate: {0}")]
    BadCertificate(String),
    #[error("not a P-256 public key ({0} bytes; {PUBLIC_KEY_BYTES} expected)")]
    BadPublicKey(usize),
}

/// The cluster's certificate authority: its certificate (shared with every peer and
/// client, and pinned by join tokens through its fingerprint) and its key (held by the
/// peers, which issue certificates to joining peers).
pub struct ClusterCa {
    pub cert_der: CertificateDer<'static>,
    pub cert_pem: String,
    key: KeyPair,
    cluster: String,
}

fn ca_params(cluster: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, format!("monk cluster CA {cluster}"));
    name.push(DnType::OrganizationName, "monk");
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params
}

impl ClusterCa {
    /// A new CA for `cluster`.
    pub fn generate(cluster: &str) -> Result<ClusterCa, PkiError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let cert = ca_params(cluster).self_signed(&key)?;
        Ok(ClusterCa {
            cert_der: cert.der().clone(),
            cert_pem: cert.pem(),
            key,
            cluster: cluster.to_string(),
        })
    }

    /// The CA as stored: its certificate and key in PEM.
    pub fn from_pem(cluster: &str, cert_pem: &str, key_pem: &str) -> Result<ClusterCa, PkiError> {
        let key = KeyPair::from_pem(key_pem)?;
        let cert_der = cert_from_pem(cert_pem)?;
        Ok(ClusterCa {
            cert_der,
            cert_pem: cert_pem.to_string(),
            key,
            cluster: cluster.to_string(),
        })
    }

    /// The CA key in PEM, for the data dir (mode 0600) and for admitted peers.
    pub fn key_pem(&self) -> String {
        self.key.serialize_pem()
    }

    /// SHA-256 of the CA certificate (hex): what a join token pins.
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.cert_der)
    }

    /// A certificate for peer `peer` holding `public_key` (a P-256 point), good for
    /// both ends of a TLS connection.
    pub fn issue_peer(&self, peer: PeerId, public_key: &[u8]) -> Result<String, PkiError> {
        if public_key.len() != PUBLIC_KEY_BYTES {
            return Err(PkiError::BadPublicKey(public_key.len()));
        }
        let mut params =
            CertificateParams::new(vec![PEER_SERVER_NAME.to_string(), peer_dns_name(peer)])?;
        let mut name = DistinguishedName::new();
        name.push(
            DnType::CommonName,
            format!("peer {peer} of {}", self.cluster),
        );
        params.distinguished_name = name;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.use_authority_key_identifier_extension = true;
        // The issuer is rebuilt from the stored key: what a signature needs is the CA's
        // name and key, which are the same as in the stored certificate.
        let issuer = ca_params(&self.cluster).self_signed(&self.key)?;
        let cert = params.signed_by(&RawPublicKey(public_key), &issuer, &self.key)?;
        Ok(cert.pem())
    }
}

/// A P-256 public key as sent by a joining peer.
struct RawPublicKey<'a>(&'a [u8]);

impl PublicKeyData for RawPublicKey<'_> {
    fn der_bytes(&self) -> &[u8] {
        self.0
    }
    fn algorithm(&self) -> &SignatureAlgorithm {
        &PKCS_ECDSA_P256_SHA256
    }
}

/// A peer's own key pair: generated at first use, its public half sent to be certified.
pub struct PeerKey {
    key: KeyPair,
}

impl PeerKey {
    pub fn generate() -> Result<PeerKey, PkiError> {
        Ok(PeerKey {
            key: KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?,
        })
    }

    pub fn from_pem(pem: &str) -> Result<PeerKey, PkiError> {
        Ok(PeerKey {
            key: KeyPair::from_pem(pem)?,
        })
    }

    pub fn key_pem(&self) -> String {
        self.key.serialize_pem()
    }

    /// The public key, as [`ClusterCa::issue_peer`] takes it.
    pub fn public_key(&self) -> Vec<u8> {
        self.key.public_key_raw().to_vec()
    }

    /// A self-signed certificate for this key, shown before the peer has a cluster.
    pub fn self_signed_pem(&self) -> Result<String, PkiError> {
        let mut params = CertificateParams::new(vec![PEER_SERVER_NAME.to_string()])?;
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, "monk peer without a cluster");
        Ok(params.self_signed(&self.key)?.pem())
    }
}

/// `peer-<id>.monk-peer`: the DNS name that says which member a certificate is.
pub fn peer_dns_name(peer: PeerId) -> String {
    format!("peer-{peer}.{PEER_SERVER_NAME}")
}

/// The member a (verified) peer certificate names, from its `peer-<id>` DNS name.
pub fn peer_of(cert: &CertificateDer<'_>) -> Option<PeerId> {
    let cert = webpki::EndEntityCert::try_from(cert).ok()?;
    let suffix = format!(".{PEER_SERVER_NAME}");
    cert.valid_dns_names().find_map(|name| {
        name.strip_suffix(&suffix)?
            .strip_prefix("peer-")?
            .parse()
            .ok()
    })
}

/// SHA-256 of a DER certificate, in hex.
pub fn fingerprint(cert: &CertificateDer<'_>) -> String {
    hex::encode(Sha256::digest(cert.as_ref()))
}

/// The first certificate in a PEM text.
pub fn cert_from_pem(pem: &str) -> Result<CertificateDer<'static>, PkiError> {
    use rustls_pki_types::pem::PemObject;
    CertificateDer::from_pem_slice(pem.as_bytes())
        .map_err(|e| PkiError::BadCertificate(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_issued_certificate_names_its_peer_and_chains_to_the_ca() {
        let ca = ClusterCa::generate("c").unwrap();
        let key = PeerKey::generate().unwrap();
        let pem = ca.issue_peer(7, &key.public_key()).unwrap();
        let der = cert_from_pem(&pem).unwrap();
        assert_eq!(peer_of(&der), Some(7));
        let roots = [webpki::anchor_from_trusted_cert(&ca.cert_der).unwrap()];
        let cert = webpki::EndEntityCert::try_from(&der).unwrap();
        cert.verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &roots,
            &[],
            rustls_pki_types::UnixTime::now(),
            webpki::KeyUsage::client_auth(),
            None,
            None,
        )
        .unwrap();
        // A CA reloaded from its PEM issues certificates that chain to the same root.
        let again = ClusterCa::from_pem("c", &ca.cert_pem, &ca.key_pem()).unwrap();
        assert_eq!(again.fingerprint(), ca.fingerprint());
        let other = cert_from_pem(&again.issue_peer(8, &key.public_key()).unwrap()).unwrap();
        webpki::EndEntityCert::try_from(&other)
            .unwrap()
            .verify_for_usage(
                webpki::ALL_VERIFICATION_ALGS,
                &roots,
                &[],
                rustls_pki_types::UnixTime::now(),
                webpki::KeyUsage::server_auth(),
                None,
                None,
            )
            .unwrap();
        // Another cluster's CA does not.
        let stranger = ClusterCa::generate("c").unwrap();
        let foreign = [webpki::anchor_from_trusted_cert(&stranger.cert_der).unwrap()];
        assert!(cert
            .verify_for_usage(
                webpki::ALL_VERIFICATION_ALGS,
                &foreign,
                &[],
                rustls_pki_types::UnixTime::now(),
                webpki::KeyUsage::client_auth(),
                None,
                None,
            )
            .is_err());
    }

    #[test]
    fn a_bad_public_key_is_refused_and_a_self_signed_cert_names_no_peer() {
        let ca = ClusterCa::generate("c").unwrap();
        assert!(matches!(
            ca.issue_peer(1, &[4; 10]),
            Err(PkiError::BadPublicKey(10))
        ));
        let key = PeerKey::generate().unwrap();
        let der = cert_from_pem(&key.self_signed_pem().unwrap()).unwrap();
        assert_eq!(peer_of(&der), None);
    }
}
