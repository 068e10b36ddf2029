//! A throwaway OpenPGP signing key made in code, shaped like Debian's archive
//! keys: an ed25519 primary key that only certifies and an ed25519 subkey that
//! signs, so tests exercise the same subkey path real InRelease files take.

use pgp::composed::{
    ArmorOptions, CleartextSignedMessage, DetachedSignature, KeyType, SecretKeyParamsBuilder,
    SignedPublicKey, SignedSecretKey, SubkeyParamsBuilder,
};
use pgp::crypto::hash::HashAlgorithm;
use pgp::types::{KeyDetails, Password};

use vbuild_builder::distro::debian::keyring::Keyring;

/// A generated key pair; the secret half never leaves the test.
pub struct TestKey {
    secret: SignedSecretKey,
    public: SignedPublicKey,
}

impl TestKey {
    /// Generates a fresh key with `user_id` (e.g. "vbuild test archive").
    pub fn generate(user_id: &str) -> TestKey {
        let subkey = SubkeyParamsBuilder::default()
            .key_type(KeyType::Ed25519Legacy)
            .can_sign(true)
            .build()
            .expect("subkey params");
        let params = SecretKeyParamsBuilder::default()
            .key_type(KeyType::Ed25519Legacy)
            .can_certify(true)
            .can_sign(false)
            .primary_user_id(user_id.to_string())
            .subkey(subkey)
            .build()
            .expect("key params");
        let secret = params
            .generate(rand::thread_rng())
            .expect("generate and self-sign key");
        let public = secret.to_public_key();
        TestKey { secret, public }
    }

    /// The public key, ASCII-armored (what goes in `recipes/keys/*.asc`).
    pub fn public_armored(&self) -> String {
        self.public
            .to_armored_string(ArmorOptions::default())
            .expect("armor public key")
    }

    /// The secret key, ASCII-armored (for the rpm crate's signer).
    pub fn secret_armored(&self) -> String {
        self.secret
            .to_armored_string(ArmorOptions::default())
            .expect("armor secret key")
    }

    /// A keyring holding just this key.
    pub fn keyring(&self) -> Keyring {
        let mut keyring = Keyring::new();
        keyring
            .add("test key", self.public_armored().as_bytes())
            .expect("own key loads");
        keyring
    }

    /// Long key id of the signing subkey, as errors print it.
    pub fn signing_key_id(&self) -> String {
        hex::encode_upper(self.secret.secret_subkeys[0].legacy_key_id().as_ref())
    }

    /// `text` as a cleartext-signed message (an `InRelease`), signed by the subkey.
    pub fn clearsign(&self, text: &str) -> String {
        let message = CleartextSignedMessage::sign(
            rand::thread_rng(),
            text,
            &self.secret.secret_subkeys[0].key,
            &Password::empty(),
        )
        .expect("clearsign");
        message
            .to_armored_string(ArmorOptions::default())
            .expect("armor signed message")
    }

    /// A detached, armored binary signature over `data` by the subkey (a
    /// `repomd.xml.asc`).
    pub fn detached_sign(&self, data: &[u8]) -> String {
        DetachedSignature::sign_binary_data(
            rand::thread_rng(),
            &self.secret.secret_subkeys[0].key,
            &Password::empty(),
            HashAlgorithm::Sha256,
            data,
        )
        .expect("detached signature")
        .to_armored_string(ArmorOptions::default())
        .expect("armor signature")
    }
}
