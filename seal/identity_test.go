package seal

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// seededReader is a deterministic randomness source for tests.
func seededReader(seed uint64) *rand.ChaCha8 {
	var s [32]byte
	s[0] = byte(seed)
	s[1] = byte(seed >> 8)
	return rand.NewChaCha8(s)
}

func mustIdentity(t testing.TB, seed uint64) *Identity {
	t.Helper()
	id, err := GenerateIdentity(seededReader(seed))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// RFC 8410 §10.3: an Ed25519 private key in PKCS#8 and its public key.
const rfc8410PEM = `-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC
-----END PRIVATE KEY-----
`
const rfc8410Public = "19bf44096984cdfe8541bac167dc3b96c85086aa30b6b6cb0c5c38ad703166e1"

func writeFile(t *testing.T, dir, name string, data []byte, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadIdentityRFC8410Vector(t *testing.T) {
	p := writeFile(t, t.TempDir(), "identity.key", []byte(rfc8410PEM), 0o600)
	id, err := LoadIdentity(p)
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(id.Public()); got != rfc8410Public {
		t.Fatalf("public key %s, want %s", got, rfc8410Public)
	}
	// The X25519 key is HKDF-SHA256(seed, info "daf/x25519/v1"), recomputed
	// here independently of identity.go.
	seed, _ := hex.DecodeString("d4ee72dbf913584ad5b6d8f1f769f8ad3afe7c28cbf1d4fbe097a88f44755842")
	xs, err := hkdf.Key(sha256.New, seed, nil, "daf/x25519/v1", 32)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := ecdh.X25519().NewPrivateKey(xs)
	if !id.X25519().Equal(want) {
		t.Fatal("x25519 key is not HKDF(seed, daf/x25519/v1)")
	}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "identity.key")
	id := mustIdentity(t, 1)
	if err := SaveIdentity(p, id); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("saved mode %04o, want 0600", st.Mode().Perm())
	}
	back, err := LoadIdentity(p)
	if err != nil {
		t.Fatal(err)
	}
	if !back.Private().Equal(id.Private()) || !back.X25519().Equal(id.X25519()) {
		t.Fatal("loaded identity differs from saved one")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("directory holds %d entries after save, want only identity.key", len(entries))
	}
}

func TestLoadIdentityRejects(t *testing.T) {
	dir := t.TempDir()
	good, _ := marshalIdentityPEM(mustIdentity(t, 2))
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), seededReader(3))
	if err != nil {
		t.Fatal(err)
	}
	ecDER, err := x509.MarshalPKCS8PrivateKey(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	ecdsaPKCS8 := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ecDER})
	cases := []struct {
		name string
		data []byte
		mode os.FileMode
		want error
	}{
		{"world-readable", good, 0o644, ErrKeyFilePermissions},
		{"group-readable", good, 0o640, ErrKeyFilePermissions},
		{"read-only", good, 0o400, ErrKeyFilePermissions},
		{"garbage", []byte("not a key\n"), 0o600, ErrKeyFileFormat},
		{"empty", nil, 0o600, ErrKeyFileFormat},
		{"wrong-pem-type", bytes.Replace(good, []byte("PRIVATE KEY"), []byte("PUBLIC KEY"), 2), 0o600, ErrKeyFileFormat},
		{"truncated-der", []byte("-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2Vw\n-----END PRIVATE KEY-----\n"), 0o600, ErrKeyFileFormat},
		{"ecdsa-key", ecdsaPKCS8, 0o600, ErrKeyFileFormat},
		{"truncated-pem", good[:len(good)/2], 0o600, ErrKeyFileFormat},
		{"cut-before-end-line", good[:len(good)-10], 0o600, ErrKeyFileFormat},
		{"executable", good, 0o700, ErrKeyFilePermissions},
		{"group-writable", good, 0o620, ErrKeyFilePermissions},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := writeFile(t, dir, c.name, c.data, c.mode)
			_, err := LoadIdentity(p)
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			if err != nil && !bytes.Contains([]byte(err.Error()), []byte(p)) {
				t.Fatalf("error %q does not name the file", err)
			}
		})
	}
	if _, err := LoadIdentity(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: err = %v", err)
	}
	// A symbolic link is judged by the file it points to: a 0600 link to a
	// world-readable key is still a world-readable key.
	target := writeFile(t, dir, "shared.key", good, 0o644)
	link := filepath.Join(dir, "link.key")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadIdentity(link); !errors.Is(err, ErrKeyFilePermissions) {
		t.Fatalf("link to a 0644 key: err = %v", err)
	}
	sub := filepath.Join(dir, "a-directory")
	if err := os.Mkdir(sub, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadIdentity(sub); !errors.Is(err, ErrKeyFileFormat) {
		t.Fatalf("directory: err = %v", err)
	}
	// LoadOrCreateIdentity must not replace a key it cannot use.
	bad := writeFile(t, dir, "bad-mode.key", good, 0o644)
	if _, created, err := LoadOrCreateIdentity(bad); !errors.Is(err, ErrKeyFilePermissions) || created {
		t.Fatalf("existing key with wrong mode: created=%v err=%v", created, err)
	}
	if after, _ := os.ReadFile(bad); !bytes.Equal(after, good) {
		t.Fatal("LoadOrCreateIdentity overwrote an existing key")
	}
}

func TestLoadOrCreateIdentity(t *testing.T) {
	p := filepath.Join(t.TempDir(), "sub", "identity.key")
	id, created, err := LoadOrCreateIdentity(p)
	if err != nil || !created {
		t.Fatalf("first call: created=%v err=%v", created, err)
	}
	again, created, err := LoadOrCreateIdentity(p)
	if err != nil || created {
		t.Fatalf("second call: created=%v err=%v", created, err)
	}
	if !again.Public().Equal(id.Public()) {
		t.Fatal("second call returned a different identity")
	}
	// A key with bad permissions is an error, never replaced.
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadOrCreateIdentity(p); !errors.Is(err, ErrKeyFilePermissions) {
		t.Fatalf("bad mode: err = %v", err)
	}
}

func TestIdentityDeterministicFromSeed(t *testing.T) {
	a, b, c := mustIdentity(t, 7), mustIdentity(t, 7), mustIdentity(t, 8)
	if !a.Private().Equal(b.Private()) || !a.X25519().Equal(b.X25519()) {
		t.Fatal("same seed gave different identities")
	}
	if a.Public().Equal(c.Public()) || a.X25519().Equal(c.X25519()) {
		t.Fatal("different seeds gave the same key")
	}
	msg := []byte("hello")
	if !ed25519.Verify(a.Public(), msg, a.Sign(msg)) {
		t.Fatal("signature does not verify")
	}
	if _, err := IdentityFromPrivateKey(ed25519.PrivateKey(make([]byte, 10))); !errors.Is(err, ErrKeyFileFormat) {
		t.Fatalf("short private key: err = %v", err)
	}
}
