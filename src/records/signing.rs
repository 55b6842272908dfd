//! The record key: an Ed25519 key created in the data directory on first start (file mode 0600), used to
//! seal every record. A seal is the SHA-256 of the canonical form and an Ed25519 signature of those 32 bytes,
//! so anyone with the public key can verify an exported record offline.

use super::canonical::{digest, hex};
use super::model::{Record, Seal, SealedRecord};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::Path;

pub const KEY_FILE: &str = "record-signing.key";

/// What checking a sealed record found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Integrity {
    Valid,
    /// The record no longer hashes to its seal: a field was changed after sealing.
    DigestMismatch,
    /// The digest matches but the signature does not verify: the seal itself was forged.
    BadSignature,
    /// Sealed by a key this server does not hold.
    UnknownKey,
}

impl Integrity {
    pub fn is_valid(self) -> bool {
        self == Integrity::Valid
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Integrity::Valid => "valid",
            Integrity::DigestMismatch => "digest_mismatch",
            Integrity::BadSignature => "bad_signature",
            Integrity::UnknownKey => "unknown_key",
        }
    }
}

pub struct RecordKey {
    signing: SigningKey,
    key_id: String,
}

impl RecordKey {
    pub fn generate() -> RecordKey {
        RecordKey::from_signing(SigningKey::generate(&mut rand::rngs::OsRng))
    }

    fn from_signing(signing: SigningKey) -> RecordKey {
        let key_id = key_id_of(&signing.verifying_key());
        RecordKey { signing, key_id }
    }

    /// Loads `DATA_DIR/record-signing.key`, creating it (mode 0600) on first start.
    pub fn load_or_create(data_dir: &Path) -> anyhow::Result<RecordKey> {
        let path = data_dir.join(KEY_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let seed = STANDARD
                    .decode(text.trim())
                    .ok()
                    .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
                    .ok_or_else(|| {
                        anyhow::anyhow!("{} is not a base64 Ed25519 seed", path.display())
                    })?;
                Ok(RecordKey::from_signing(SigningKey::from_bytes(&seed)))
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                crate::data_dir::create_private_dir(data_dir)?;
                let key = RecordKey::generate();
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
                match options.open(&path) {
                    Ok(mut file) => {
                        writeln!(file, "{}", STANDARD.encode(key.signing.to_bytes()))?;
                        file.sync_all()?;
                        Ok(key)
                    }
                    // Another process created it first: use theirs.
                    Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
                        RecordKey::load_or_create(data_dir)
                    }
                    Err(error) => Err(error.into()),
                }
            }
            Err(error) => Err(anyhow::anyhow!("reading {}: {error}", path.display())),
        }
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The public key, standard base64 of its 32 bytes.
    pub fn public_key_base64(&self) -> String {
        STANDARD.encode(self.signing.verifying_key().as_bytes())
    }

    pub fn seal(&self, record: Record) -> SealedRecord {
        let sha256 = digest(&record);
        let signature = self.signing.sign(&digest_bytes(&sha256));
        let seal = Seal {
            sha256,
            key_id: self.key_id.clone(),
            signature: STANDARD.encode(signature.to_bytes()),
        };
        SealedRecord { record, seal }
    }

    pub fn verify(&self, sealed: &SealedRecord) -> Integrity {
        verify_with(&self.signing.verifying_key(), &self.key_id, sealed)
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        self.signing.verifying_key()
    }
}

fn key_id_of(public: &VerifyingKey) -> String {
    hex(&Sha256::digest(public.as_bytes())[..8])
}

/// The public keys whose seals an import accepts: the server's own and any the operator names, so records
/// exported by another instance keep their ids and provenance when they verify, and a record altered on the
/// way in is kept with its broken seal (caught as `evidence_tampered`) rather than re-sealed as genuine.
pub struct Keyring {
    keys: Vec<(String, VerifyingKey)>,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not an Ed25519 public key: expected the base64 of 32 bytes (as GET /api/v1/records/public-key returns)")]
pub struct InvalidPublicKey;

impl Keyring {
    pub fn of(key: &RecordKey) -> Keyring {
        Keyring {
            keys: vec![(key.key_id.clone(), key.verifying_key())],
        }
    }

    /// Adds a public key given as standard base64 of its 32 bytes.
    pub fn add_base64(&mut self, text: &str) -> Result<(), InvalidPublicKey> {
        let public = STANDARD
            .decode(text.trim())
            .ok()
            .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
            .and_then(|bytes| VerifyingKey::from_bytes(&bytes).ok())
            .ok_or(InvalidPublicKey)?;
        let key_id = key_id_of(&public);
        if !self.knows(&key_id) {
            self.keys.push((key_id, public));
        }
        Ok(())
    }

    pub fn knows(&self, key_id: &str) -> bool {
        self.keys.iter().any(|(id, _)| id == key_id)
    }

    pub fn verify(&self, sealed: &SealedRecord) -> Integrity {
        self.keys
            .iter()
            .find(|(id, _)| *id == sealed.seal.key_id)
            .map_or(Integrity::UnknownKey, |(id, public)| {
                verify_with(public, id, sealed)
            })
    }
}

fn digest_bytes(sha256: &str) -> Vec<u8> {
    (0..sha256.len() / 2)
        .filter_map(|at| u8::from_str_radix(sha256.get(at * 2..at * 2 + 2)?, 16).ok())
        .collect()
}

/// Verifies a sealed record against a public key, as an offline verifier would.
pub fn verify_with(public: &VerifyingKey, key_id: &str, sealed: &SealedRecord) -> Integrity {
    if sealed.seal.key_id != key_id {
        return Integrity::UnknownKey;
    }
    if digest(&sealed.record) != sealed.seal.sha256 {
        return Integrity::DigestMismatch;
    }
    let signature = STANDARD
        .decode(sealed.seal.signature.as_bytes())
        .ok()
        .and_then(|bytes| <[u8; 64]>::try_from(bytes).ok())
        .map(|bytes| Signature::from_bytes(&bytes));
    match signature {
        Some(signature)
            if public
                .verify(&digest_bytes(&sealed.seal.sha256), &signature)
                .is_ok() =>
        {
            Integrity::Valid
        }
        _ => Integrity::BadSignature,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> Record {
        serde_json::from_str(include_str!("../../fixtures/records/get-order.json"))
            .expect("fixture record")
    }

    #[test]
    fn a_sealed_record_verifies_and_survives_json() {
        let key = RecordKey::generate();
        let sealed = key.seal(record());
        assert_eq!(key.verify(&sealed), Integrity::Valid);
        let exported = serde_json::to_string(&sealed).expect("export");
        let imported: SealedRecord = serde_json::from_str(&exported).expect("import");
        assert_eq!(
            key.verify(&imported),
            Integrity::Valid,
            "an exported record verifies after a round trip"
        );
    }

    #[test]
    fn any_change_breaks_the_seal() {
        let key = RecordKey::generate();
        let sealed = key.seal(record());
        let mut body = sealed.clone();
        body.record.response_body[12] ^= 1;
        assert_eq!(
            key.verify(&body),
            Integrity::DigestMismatch,
            "one flipped bit of the body"
        );
        let mut status = sealed.clone();
        status.record.status = Some(201);
        assert_eq!(key.verify(&status), Integrity::DigestMismatch);
        let mut forged = body.clone();
        forged.seal.sha256 = digest(&forged.record);
        assert_eq!(
            key.verify(&forged),
            Integrity::BadSignature,
            "a recomputed digest without the key"
        );
        let mut garbage = sealed.clone();
        garbage.seal.signature = "not base64!".into();
        assert_eq!(key.verify(&garbage), Integrity::BadSignature);
        let other = RecordKey::generate();
        assert_eq!(other.verify(&sealed), Integrity::UnknownKey);
    }

    #[test]
    fn a_keyring_verifies_seals_of_every_key_it_holds() {
        let own = RecordKey::generate();
        let other = RecordKey::generate();
        let sealed = other.seal(record());
        let mut keyring = Keyring::of(&own);
        assert_eq!(keyring.verify(&sealed), Integrity::UnknownKey);
        keyring
            .add_base64(&format!("  {}\n", other.public_key_base64()))
            .expect("a base64 public key");
        assert!(keyring.knows(other.key_id()));
        assert_eq!(keyring.verify(&sealed), Integrity::Valid);
        assert_eq!(keyring.verify(&own.seal(record())), Integrity::Valid);
        let mut altered = sealed.clone();
        altered.record.url.push('x');
        assert_eq!(keyring.verify(&altered), Integrity::DigestMismatch);
        for bad in ["", "not base64", "AAAA", &STANDARD.encode([7u8; 31])] {
            assert_eq!(keyring.add_base64(bad), Err(InvalidPublicKey), "{bad:?}");
        }
    }

    #[test]
    fn the_key_file_is_created_once_private_and_reloaded() {
        let dir = tempfile::TempDir::new().expect("dir");
        let first = RecordKey::load_or_create(dir.path()).expect("create");
        let again = RecordKey::load_or_create(dir.path()).expect("reload");
        assert_eq!(first.key_id(), again.key_id());
        assert_eq!(first.public_key_base64(), again.public_key_base64());
        assert_eq!(again.verify(&first.seal(record())), Integrity::Valid);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE))
                .expect("key file")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(dir.path().join(KEY_FILE), "garbage").expect("overwrite");
        assert!(
            RecordKey::load_or_create(dir.path()).is_err(),
            "a damaged key file is an error, not a new key"
        );
    }
}
