package seal

import "errors"

// Sentinel errors; functions wrap them with the file, scope or field at fault.
var (
	// ErrKeyFilePermissions: the identity file is readable or writable by
	// someone other than its owner (mode is not 0600).
	ErrKeyFilePermissions = errors.New("identity file permissions must be 0600")
	// ErrKeyFileFormat: the identity file is not a PKCS#8 PEM Ed25519 key.
	ErrKeyFileFormat = errors.New("identity file is not a PKCS#8 PEM Ed25519 private key")
	// ErrBadKeyRecord: a key record is malformed or its signature is wrong.
	ErrBadKeyRecord = errors.New("bad key record")
	// ErrBadScopeKey: a scope key or its tier/scope/epoch is malformed.
	ErrBadScopeKey = errors.New("bad scope key")
	// ErrUnwrap: a wrapped scope key cannot be opened with this key (wrong
	// recipient, tampered, or truncated).
	ErrUnwrap = errors.New("cannot unwrap scope key")
	// ErrBadGrant: a scope key grant is malformed or its signature is wrong.
	ErrBadGrant = errors.New("bad scope key grant")
	// ErrOpen: a sealed payload fails authentication (wrong key, wrong
	// scope/epoch/associated data, or tampered).
	ErrOpen = errors.New("cannot open sealed payload")
	// ErrNoScopeKey: the keyring holds no key for the requested scope/epoch.
	ErrNoScopeKey = errors.New("no key for scope")
	// ErrRetiredScopeKey: the key's epoch was retired after a rotation; it
	// is not taken again.
	ErrRetiredScopeKey = errors.New("retired scope key epoch")
)
