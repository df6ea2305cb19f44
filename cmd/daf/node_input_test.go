package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runNodeCLI runs `daf node` in-process and returns its exit code and what
// it wrote to standard error.
func runNodeCLI(t *testing.T, args ...string) (int, string) {
	t.Helper()
	return runCLIStderr(t, append([]string{"node"}, args...)...)
}

// runCLIStderr runs daf in-process and returns its exit code and what it
// wrote to standard error.
func runCLIStderr(t *testing.T, args ...string) (int, string) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	saved := os.Stderr
	os.Stderr = w
	code, _ := runCLI(t, args...)
	os.Stderr = saved
	w.Close()
	msg, _ := io.ReadAll(r)
	return code, string(msg)
}

// Every bad flag or file a user can hand `daf node` is a usage error: exit
// 2 and one line that names the flag or the file, before anything listens.
func TestNodeBadInputExitsTwoNamingTheCulprit(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "federation.toml")
	src, err := os.ReadFile("../../federation.toml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, src, 0o600); err != nil {
		t.Fatal(err)
	}
	plainFile := filepath.Join(dir, "plain")
	if err := os.WriteFile(plainFile, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	loose := filepath.Join(dir, "loose")
	if code, _ := runCLI(t, "keygen", "--data-dir", loose); code != exitOK {
		t.Fatalf("keygen: exit %d", code)
	}
	looseKey := filepath.Join(loose, "identity.key")
	if err := os.Chmod(looseKey, 0o644); err != nil {
		t.Fatal(err)
	}
	garbled := filepath.Join(dir, "garbled")
	if err := os.MkdirAll(garbled, 0o700); err != nil {
		t.Fatal(err)
	}
	garbledKey := filepath.Join(garbled, "identity.key")
	if err := os.WriteFile(garbledKey, []byte("not a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	damaged := filepath.Join(dir, "damaged")
	if code, _ := runCLI(t, "keygen", "--data-dir", damaged); code != exitOK {
		t.Fatalf("keygen: exit %d", code)
	}
	damagedState := filepath.Join(damaged, "state.db")
	if err := os.WriteFile(damagedState, []byte("not a bbolt file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	heldAddr := fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", held.Addr().(*net.TCPAddr).Port)
	fresh := func() string { return filepath.Join(t.TempDir(), "node") }
	local := "/ip4/127.0.0.1/tcp/0"

	for _, c := range []struct {
		name string
		args []string
		want string // must appear in the one line
	}{
		{"listen garbage", []string{"--config", cfg, "--data-dir", fresh(), "--listen", "garbage"}, `--listen "garbage"`},
		{"listen bad ip", []string{"--config", cfg, "--data-dir", fresh(), "--listen", "/ip4/999.0.0.1/tcp/1"}, `--listen "/ip4/999.0.0.1/tcp/1"`},
		{"listen port taken", []string{"--config", cfg, "--data-dir", fresh(), "--listen", heldAddr}, fmt.Sprintf("--listen %q", heldAddr)},
		{"metrics port taken", []string{"--config", cfg, "--data-dir", fresh(), "--listen", local, "--metrics", held.Addr().String()}, fmt.Sprintf("--metrics %q", held.Addr().String())},
		{"bootstrap without peer id", []string{"--config", cfg, "--data-dir", fresh(), "--listen", local, "--bootstrap", "/ip4/127.0.0.1/tcp/1"}, `--bootstrap "/ip4/127.0.0.1/tcp/1"`},
		{"trainer dir is a file", []string{"--config", cfg, "--data-dir", fresh(), "--listen", local, "--trainer-dir", plainFile}, "--trainer-dir " + plainFile},
		{"data dir is a file", []string{"--config", cfg, "--data-dir", plainFile, "--listen", local}, "--data-dir " + plainFile},
		{"identity 0644", []string{"--config", cfg, "--data-dir", loose, "--listen", local}, looseKey},
		{"state.db damaged", []string{"--config", cfg, "--data-dir", damaged, "--listen", local}, damagedState},
		{"identity garbage", []string{"--config", cfg, "--data-dir", garbled, "--listen", local}, garbledKey},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, msg := runNodeCLI(t, c.args...)
			if code != exitInput {
				t.Errorf("exit %d, want %d; stderr %q", code, exitInput, msg)
			}
			if lines := strings.Count(strings.TrimRight(msg, "\n"), "\n") + 1; lines != 1 {
				t.Errorf("stderr has %d lines, want 1: %q", lines, msg)
			}
			if !strings.Contains(msg, c.want) {
				t.Errorf("stderr %q does not name %q", msg, c.want)
			}
			if c.name == "state.db damaged" {
				if b, _ := os.ReadFile(damagedState); string(b) != "not a bbolt file\n" {
					t.Errorf("daf node changed the damaged state.db to %q", b)
				}
			}
		})
	}
}
