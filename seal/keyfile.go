package seal

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// maxKeyFileBytes bounds what LoadIdentity reads: a PKCS#8 Ed25519 PEM block
// is about 120 bytes, so anything much larger is not a key file.
const maxKeyFileBytes = 64 << 10

const pemType = "PRIVATE KEY"

// LoadIdentity reads an identity file written by SaveIdentity (or any PKCS#8
// PEM Ed25519 key, e.g. from `openssl genpkey -algorithm ed25519`). It refuses
// a file whose mode is not 0600 and names the file in every error.
func LoadIdentity(path string) (*Identity, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("identity %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("identity %s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("identity %s: %w: not a regular file", path, ErrKeyFileFormat)
	}
	if perm := st.Mode().Perm(); perm != 0o600 {
		return nil, fmt.Errorf("identity %s: %w (it is %04o; run chmod 600 %s)", path, ErrKeyFilePermissions, perm, path)
	}
	if st.Size() > maxKeyFileBytes {
		return nil, fmt.Errorf("identity %s: %w: %d bytes is too large", path, ErrKeyFileFormat, st.Size())
	}
	buf := make([]byte, st.Size())
	if _, err := io.ReadFull(f, buf); err != nil {
		return nil, fmt.Errorf("identity %s: %w", path, err)
	}
	id, err := parseIdentityPEM(buf)
	if err != nil {
		return nil, fmt.Errorf("identity %s: %w", path, err)
	}
	return id, nil
}

func parseIdentityPEM(buf []byte) (*Identity, error) {
	block, _ := pem.Decode(buf)
	if block == nil {
		return nil, fmt.Errorf("%w: no PEM block", ErrKeyFileFormat)
	}
	if block.Type != pemType {
		return nil, fmt.Errorf("%w: PEM block is %q, want %q", ErrKeyFileFormat, block.Type, pemType)
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrKeyFileFormat, err)
	}
	priv, ok := key.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%w: key type is %T, want Ed25519", ErrKeyFileFormat, key)
	}
	return IdentityFromPrivateKey(priv)
}

func marshalIdentityPEM(id *Identity) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(id.priv)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemType, Bytes: der}), nil
}

// SaveIdentity writes id to path with mode 0600, atomically: a temporary file
// in the same directory, fsync, rename, fsync of the directory. A crash leaves
// either the old file or the new one, never a partial key.
func SaveIdentity(path string, id *Identity) error {
	data, err := marshalIdentityPEM(id)
	if err != nil {
		return fmt.Errorf("identity %s: %w", path, err)
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".identity-*.tmp")
	if err != nil {
		return fmt.Errorf("identity %s: %w", path, err)
	}
	tmpName := tmp.Name()
	committed := false
	defer func() {
		if !committed {
			tmp.Close()
			os.Remove(tmpName)
		}
	}()
	// CreateTemp already uses 0600; Chmod makes it independent of that detail.
	if err := tmp.Chmod(0o600); err != nil {
		return fmt.Errorf("identity %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("identity %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("identity %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("identity %s: %w", path, err)
	}
	if err := os.Rename(tmpName, path); err != nil {
		return fmt.Errorf("identity %s: %w", path, err)
	}
	committed = true
	if d, err := os.Open(dir); err == nil {
		syncErr := d.Sync()
		d.Close()
		if syncErr != nil {
			return fmt.Errorf("identity %s: sync directory: %w", path, syncErr)
		}
	}
	return nil
}

// LoadOrCreateIdentity loads the identity at path, or, if there is no file,
// creates its directory (0700) and a new identity from crypto/rand. created
// reports which happened. A file that exists but is unreadable, has the wrong
// mode or the wrong format is an error, never silently replaced.
func LoadOrCreateIdentity(path string) (*Identity, bool, error) {
	id, err := LoadIdentity(path)
	if err == nil {
		return id, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, false, fmt.Errorf("identity %s: %w", path, err)
	}
	id, err = GenerateIdentity(rand.Reader)
	if err != nil {
		return nil, false, fmt.Errorf("identity %s: %w", path, err)
	}
	if err := SaveIdentity(path, id); err != nil {
		return nil, false, err
	}
	return id, true, nil
}
