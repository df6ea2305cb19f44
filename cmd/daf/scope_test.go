package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The admin's files, made the way docs and `daf scope --help` say: a scope
// key as the admin's own grant, a member's record, the member's grant.
func TestScopeCommandsMakeGrantsOnlyTheirOwnersCanUse(t *testing.T) {
	dir := t.TempDir()
	admin, member := filepath.Join(dir, "admin"), filepath.Join(dir, "member")
	own, rec, granted := filepath.Join(dir, "acme.grant"), filepath.Join(dir, "m.record"), filepath.Join(dir, "m.grant")
	mustCLI := func(args ...string) string {
		t.Helper()
		code, out := runCLI(t, args...)
		if code != exitOK {
			t.Fatalf("daf %s: exit %d", strings.Join(args, " "), code)
		}
		return out
	}
	mustCLI("scope", "new", "--data-dir", admin, "--tier", "tenant", "--scope", "acme", "-o", own)
	out := mustCLI("scope", "record", "--data-dir", member, "-o", rec)
	memberID := strings.TrimSpace(mustCLI("keygen", "--data-dir", member))
	if !strings.Contains(out, memberID) {
		t.Errorf("scope record printed %q, want the member's peer id %s", out, memberID)
	}
	out = mustCLI("scope", "grant", "--data-dir", admin, "--grant", own, "--member", rec, "-o", granted)
	if !strings.Contains(out, "granted to "+memberID) || !strings.Contains(out, "tenant/acme") {
		t.Errorf("scope grant printed %q, want the scope and the member's peer id", out)
	}
	for _, f := range []string{own, granted} {
		st, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", f, st.Mode().Perm())
		}
	}
	garbage := filepath.Join(dir, "garbage")
	if err := os.WriteFile(garbage, []byte("-----BEGIN DAF KEY RECORD-----\nAAAA\n-----END DAF KEY RECORD-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"public tier has no key", []string{"scope", "new", "--data-dir", admin, "--tier", "public", "--scope", "x", "-o", filepath.Join(dir, "x")}, `--tier "public"`},
		{"never replaces a key", []string{"scope", "new", "--data-dir", admin, "--scope", "acme", "-o", own}, "-o " + own},
		{"epoch zero", []string{"scope", "new", "--data-dir", admin, "--scope", "acme", "--epoch", "0", "-o", filepath.Join(dir, "e0")}, "--epoch"},
		{"scope missing", []string{"scope", "new", "--data-dir", admin, "-o", filepath.Join(dir, "y")}, "--scope"},
		{"member's grant is not the admin's", []string{"scope", "grant", "--data-dir", admin, "--grant", granted, "--member", rec, "-o", filepath.Join(dir, "z")}, "--grant " + granted},
		{"another identity opens the admin's grant", []string{"scope", "grant", "--data-dir", member, "--grant", own, "--member", rec, "-o", filepath.Join(dir, "z")}, "--grant " + own},
		{"record is garbage", []string{"scope", "grant", "--data-dir", admin, "--grant", own, "--member", garbage, "-o", filepath.Join(dir, "z")}, "--member " + garbage},
		{"record is a grant", []string{"scope", "grant", "--data-dir", admin, "--grant", own, "--member", granted, "-o", filepath.Join(dir, "z")}, "--member " + granted},
		{"record missing", []string{"scope", "grant", "--data-dir", admin, "--grant", own, "--member", filepath.Join(dir, "nope"), "-o", filepath.Join(dir, "z")}, "--member " + filepath.Join(dir, "nope")},
		{"unknown subcommand", []string{"scope", "rotate"}, `"rotate"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, msg := runCLIStderr(t, c.args...)
			if code != exitInput {
				t.Errorf("exit %d, want %d (stderr %q)", code, exitInput, msg)
			}
			if !strings.Contains(msg, c.want) {
				t.Errorf("stderr %q does not name %q", msg, c.want)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "z")); err == nil {
		t.Error("a refused grant command left an output file")
	}
}

// `daf node` refuses grant files and admin ids it cannot use before it
// opens anything, naming the flag and the file.
func TestNodeScopeFlagsBadInput(t *testing.T) {
	dir := t.TempDir()
	cfg := writeProcessConfig(t, dir, "[federation.node]\ntier = \"tenant\"\nscope = \"acme\"\n")
	notGrant := filepath.Join(dir, "plain")
	if err := os.WriteFile(notGrant, []byte("hello\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	local := "/ip4/127.0.0.1/tcp/0"
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"grant file is not a grant", []string{"--scope-grant", notGrant}, "--scope-grant " + notGrant},
		{"grant file missing", []string{"--scope-grant", filepath.Join(dir, "nope")}, "--scope-grant " + filepath.Join(dir, "nope")},
		{"admin id garbage", []string{"--scope-admin", "not-a-peer"}, `--scope-admin "not-a-peer"`},
		{"tenant without key or admin", nil, "--scope-grant FILE or --scope-admin"},
	} {
		t.Run(c.name, func(t *testing.T) {
			args := append([]string{"--config", cfg, "--data-dir", filepath.Join(t.TempDir(), "n"), "--listen", local}, c.args...)
			code, msg := runNodeCLI(t, args...)
			if code != exitInput || !strings.Contains(msg, c.want) {
				t.Errorf("exit %d stderr %q, want exit %d naming %q", code, msg, exitInput, c.want)
			}
		})
	}
}

// Three real `daf node` processes in a tenant scope, set up with the scope
// commands: the admin's node holds the key as its own grant and the
// members' grants; members start with only the admin's peer ID, receive
// their keys over /daf/keys/1 and complete rounds on sealed updates.
func TestNodeProcessesJoinATenantScope(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three node processes")
	}
	tmp := t.TempDir()
	bin := buildDaf(t, tmp)
	cfg := writeProcessConfig(t, tmp, "[federation.node]\ntier = \"tenant\"\nscope = \"acme\"\n")
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
			t.Fatalf("daf %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	grant := func(i int) string { return filepath.Join(tmp, fmt.Sprintf("n%d.grant", i)) }
	var adminID string
	procs := launchNodeProcs(t, tmp, bin, cfg, 3, func(procs []*nodeProc) {
		adminID = procs[0].id
		run("scope", "new", "--data-dir", procs[0].dir, "--scope", "acme", "-o", grant(0))
		for i := 1; i < len(procs); i++ {
			rec := filepath.Join(tmp, fmt.Sprintf("n%d.record", i))
			run("scope", "record", "--data-dir", procs[i].dir, "-o", rec)
			run("scope", "grant", "--data-dir", procs[0].dir, "--grant", grant(0), "--member", rec, "-o", grant(i))
		}
	}, func(i int) []string {
		if i == 0 {
			return []string{"--scope-grant", grant(0), "--scope-grant", grant(1), "--scope-grant", grant(2)}
		}
		return []string{"--scope-admin", adminID}
	})
	for i, p := range procs {
		eventually(t, fmt.Sprintf("node %d to complete two rounds in the tenant scope", i), 90*time.Second, func() bool {
			return p.metric("daf_rounds_completed_total") >= 2
		})
	}
	logText, _ := os.ReadFile(filepath.Join(tmp, "n1.log"))
	if !strings.Contains(string(logText), "scope key received") {
		t.Error("member node 1 never logged receiving its scope key")
	}
}
