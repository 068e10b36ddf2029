//! A throwaway OpenPGP signing key made in code, shaped like Debian's archive
//! keys: an ed25519 primary key that only certifies and an ed25519 subkey that
//! signs, so tests exercise the same subkey path real InRelease files take.

use pgp::cleartext::CleartextSignedMessage;
use pgp::types::PublicKeyTrait;
use pgp::{
    ArmorOptions, KeyType, SecretKeyParamsBuilder, SignedPublicKey, SignedSecretKey,
    SubkeyParamsBuilder,
};

use crate::distro::debian::keyring::Keyring;

/// A generated key pair; the secret half never leaves the test.
pub struct TestKey {
    secret: SignedSecretKey,
    public: SignedPublicKey,
}

impl TestKey {
    /// Generates a fresh key with `user_id` (e.g. "vbuild test archive").
    pub fn generate(user_id: &str) -> TestKey {
        let subkey = SubkeyParamsBuilder::default()
            .key_type(KeyType::EdDSALegacy)
            .can_sign(true)
            .build()
            .expect("subkey params");
        let params = SecretKeyParamsBuilder::default()
            .key_type(KeyType::EdDSALegacy)
            .can_certify(true)
            .can_sign(false)
            .primary_user_id(user_id.to_string())
            .subkey(subkey)
            .build()
            .expect("key params");
        let mut rng = rand::thread_rng();
        let secret = params
            .generate(&mut rng)
            .expect("generate key")
            .sign(&mut rng, String::new)
            .expect("self-sign key");
        let public = SignedPublicKey::from(secret.clone());
        TestKey { secret, public }
    }

    /// The public key, ASCII-armored (what goes in `recipes/keys/*.asc`).
    pub fn public_armored(&self) -> String {
        self.public
            .to_armored_string(ArmorOptions::default())
            .expect("armor public key")
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
        format!("{:X}", self.secret.secret_subkeys[0].key_id())
    }

    /// `text` as a cleartext-signed message (an `InRelease`), signed by the subkey.
    pub fn clearsign(&self, text: &str) -> String {
        let mut rng = rand::thread_rng();
        let message = CleartextSignedMessage::sign(
            &mut rng,
            text,
            &self.secret.secret_subkeys[0],
            String::new,
        )
        .expect("clearsign");
        message
            .to_armored_string(ArmorOptions::default())
            .expect("armor signed message")
    }
}
