// Package seal holds a node's cryptographic identity and everything that
// protects an update's content: key records, scope keys, wrapping a scope key
// to a member, and sealing a payload once for a whole scope.
//
// # Keys of a node
//
// A node is its Ed25519 identity (the same key is its libp2p peer ID). The
// identity file (identity.key in the data directory) is a PKCS#8 PEM block,
// the format openssl and most tooling read, and must have mode 0600:
// LoadIdentity refuses any other mode rather than use a key others can read.
//
// Key agreement needs an X25519 key, and the standard library cannot convert
// an Ed25519 key into one. We derive it deterministically from the identity
// seed with HKDF-SHA256 (info "daf/x25519/v1"), so there is one secret file,
// nothing to keep in sync, and a restored identity restores its X25519 key.
// The X25519 public key is published in a KeyRecord signed by the identity;
// a record with a later Issued time supersedes an earlier one.
//
// # Sealing
//
// Group and Tenant payloads are sealed once with the scope's symmetric key
// (XChaCha20-Poly1305, random 24-byte nonce), not once per peer, so relays can
// forward the envelope unchanged. The tier, scope and key epoch are bound into
// the associated data, so a payload cannot be moved into another scope or
// epoch even by someone holding both keys. Public payloads are not sealed:
// they travel in clear, DP-noised by the privacy package and signed.
//
// A scope key reaches a member wrapped to the member's X25519 key: an
// ephemeral X25519 key pair, ECDH, HKDF-SHA256 over the shared secret salted
// with both public keys, then ChaCha20-Poly1305 (WrapScopeKey). The wrap is
// anonymous, so the issuer signs it: a ScopeKeyGrant names issuer, recipient,
// tier, scope and epoch and carries the wrapped key. The receiver accepts a
// grant only from an identity it trusts to administer that scope (a policy
// decision of the node, not of this package), after Verify.
//
// Rotation: the admin draws a new key with the next epoch and grants it to the
// remaining members only. Senders seal with the newest epoch they hold; a
// ScopeKeyring keeps a few previous epochs so updates in flight still open,
// and Prune drops old ones. A removed member keeps what it could read before
// and cannot read anything sealed under later epochs.
//
// Nothing here reads the clock or global randomness: callers pass the
// randomness source (crypto/rand.Reader in the daemon, a seeded reader in
// tests) and the issue time.
package seal
