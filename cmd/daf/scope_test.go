package main

import (
	"bytes"
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

// scopeFixture is an admin with its scope key (acme.grant) and a member
// with its key record, made with the scope commands.
type scopeFixture struct {
	dir, admin, member, own, rec string
	memberID                     string
}

func newScopeFixture(t *testing.T) scopeFixture {
	t.Helper()
	dir := t.TempDir()
	f := scopeFixture{dir: dir, admin: filepath.Join(dir, "admin"), member: filepath.Join(dir, "member"),
		own: filepath.Join(dir, "acme.grant"), rec: filepath.Join(dir, "m.record")}
	for _, args := range [][]string{
		{"scope", "new", "--data-dir", f.admin, "--tier", "tenant", "--scope", "acme", "-o", f.own},
		{"scope", "record", "--data-dir", f.member, "-o", f.rec},
	} {
		if code, _ := runCLI(t, args...); code != exitOK {
			t.Fatalf("daf %s: exit %d", strings.Join(args, " "), code)
		}
	}
	_, out := runCLI(t, "keygen", "--data-dir", f.member)
	f.memberID = strings.TrimSpace(out)
	return f
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A scope key exists only as the admin's own grant, and a node's identity
// only in its identity.key: an -o that names either (a slip of the
// keyboard, or muscle memory from `scope new -o acme.grant`) must not
// destroy them. Files a command can write again (a member's grant, a key
// record) may be replaced, which is how a rotation re-grants to the same
// file names.
func TestScopeOutputNeverReplacesAKeyOrAnIdentity(t *testing.T) {
	f := newScopeFixture(t)
	ownBefore := readFile(t, f.own)
	adminKey := filepath.Join(f.admin, "identity.key")
	memberKey := filepath.Join(f.member, "identity.key")
	adminKeyBefore, memberKeyBefore := readFile(t, adminKey), readFile(t, memberKey)
	for _, c := range []struct {
		name string
		args []string
	}{
		{"grant over the admin's own grant", []string{"scope", "grant", "--data-dir", f.admin, "--grant", f.own, "--member", f.rec, "-o", f.own}},
		{"grant over the admin's identity", []string{"scope", "grant", "--data-dir", f.admin, "--grant", f.own, "--member", f.rec, "-o", adminKey}},
		{"grant over the member's record", []string{"scope", "grant", "--data-dir", f.admin, "--grant", f.own, "--member", f.rec, "-o", f.rec}},
		{"record over the member's identity", []string{"scope", "record", "--data-dir", f.member, "-o", memberKey}},
		{"record over the admin's grant", []string{"scope", "record", "--data-dir", f.admin, "-o", f.own}},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, msg := runCLIStderr(t, c.args...)
			if code != exitInput || !strings.Contains(msg, "-o ") {
				t.Errorf("exit %d stderr %q, want exit %d naming -o", code, msg, exitInput)
			}
		})
	}
	for path, before := range map[string][]byte{f.own: ownBefore, adminKey: adminKeyBefore, memberKey: memberKeyBefore} {
		if !bytes.Equal(readFile(t, path), before) {
			t.Errorf("%s was replaced", path)
		}
	}

	// Re-granting to the same member file and re-writing a record are fine.
	granted := filepath.Join(f.dir, "m.grant")
	for i := 0; i < 2; i++ {
		if code, msg := runCLIStderr(t, "scope", "grant", "--data-dir", f.admin, "--grant", f.own, "--member", f.rec, "-o", granted); code != exitOK {
			t.Fatalf("grant #%d to %s: exit %d: %s", i+1, granted, code, msg)
		}
	}
	if code, msg := runCLIStderr(t, "scope", "record", "--data-dir", f.member, "-o", f.rec); code != exitOK {
		t.Fatalf("record again to %s: exit %d: %s", f.rec, code, msg)
	}
}

// `scope grant` only reads the admin's identity: a mistyped --data-dir is
// an error naming it, not a fresh identity (and directory) made on the spot.
func TestScopeGrantNeedsAnExistingAdminIdentity(t *testing.T) {
	f := newScopeFixture(t)
	typo := filepath.Join(f.dir, "admn")
	code, msg := runCLIStderr(t, "scope", "grant", "--data-dir", typo, "--grant", f.own, "--member", f.rec, "-o", filepath.Join(f.dir, "m.grant"))
	if code != exitInput || !strings.Contains(msg, "--data-dir "+typo) {
		t.Errorf("exit %d stderr %q, want exit %d naming --data-dir %s", code, msg, exitInput, typo)
	}
	if _, err := os.Stat(typo); err == nil {
		t.Errorf("scope grant created %s", typo)
	}
}

// -o in a directory that does not exist names the directory, not the
// temporary file the atomic write would have used.
func TestScopeOutputInAMissingDirectory(t *testing.T) {
	f := newScopeFixture(t)
	out := filepath.Join(f.dir, "nodir", "m.record")
	code, msg := runCLIStderr(t, "scope", "record", "--data-dir", f.member, "-o", out)
	if code != exitInput || !strings.Contains(msg, "-o "+out) || !strings.Contains(msg, filepath.Join(f.dir, "nodir")) || strings.Contains(msg, ".tmp-") {
		t.Errorf("exit %d stderr %q, want exit %d naming -o %s and its missing directory only", code, msg, exitInput, out)
	}
}

// Records and grants travel by mail and chat: CRLF line ends, text around
// the block and an indented block (a pasted code block) all read the same.
// A file with two blocks is refused, since only one would be used: the
// admin who concatenated two members' grants into one --scope-grant file
// would admit only the first.
func TestArmoredFilesAsTheyArriveByMail(t *testing.T) {
	f := newScopeFixture(t)
	rec := readFile(t, f.rec)
	indent := "    " + strings.ReplaceAll(strings.TrimRight(string(rec), "\n"), "\n", "\n    ") + "\n"
	for name, body := range map[string]string{
		"crlf":     strings.ReplaceAll(string(rec), "\n", "\r\n"),
		"mail":     "Hello, here is my record:\n\n" + string(rec) + "\nThanks!\n",
		"indented": "```\n" + indent + "```\n",
	} {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(f.dir, name+".record")
			if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
				t.Fatal(err)
			}
			code, out := runCLI(t, "scope", "grant", "--data-dir", f.admin, "--grant", f.own, "--member", p, "-o", filepath.Join(f.dir, name+".grant"))
			if code != exitOK || !strings.Contains(out, f.memberID) {
				t.Errorf("exit %d output %q, want a grant to %s", code, out, f.memberID)
			}
		})
	}

	twoRecords := filepath.Join(f.dir, "two.record")
	if err := os.WriteFile(twoRecords, append(append([]byte(nil), rec...), rec...), 0o600); err != nil {
		t.Fatal(err)
	}
	code, msg := runCLIStderr(t, "scope", "grant", "--data-dir", f.admin, "--grant", f.own, "--member", twoRecords, "-o", filepath.Join(f.dir, "two.grant"))
	if code != exitInput || !strings.Contains(msg, "--member "+twoRecords) || !strings.Contains(msg, "2 PEM blocks") {
		t.Errorf("two records: exit %d stderr %q, want exit %d naming --member and 2 PEM blocks", code, msg, exitInput)
	}

	// --metrics is bad too, so a node that took the grant file anyway
	// stops at that flag instead of running.
	cfg := writeProcessConfig(t, f.dir, "[federation.node]\ntier = \"tenant\"\nscope = \"acme\"\n")
	twoGrants := filepath.Join(f.dir, "two.grant")
	own := readFile(t, f.own)
	if err := os.WriteFile(twoGrants, append(append([]byte(nil), own...), own...), 0o600); err != nil {
		t.Fatal(err)
	}
	code, msg = runNodeCLI(t, "--config", cfg, "--data-dir", f.admin, "--listen", "/ip4/127.0.0.1/tcp/0", "--metrics", "nonsense", "--scope-grant", twoGrants)
	if code != exitInput || !strings.Contains(msg, "--scope-grant "+twoGrants) || !strings.Contains(msg, "2 PEM blocks") {
		t.Errorf("two grants: exit %d stderr %q, want exit %d naming --scope-grant and 2 PEM blocks", code, msg, exitInput)
	}

	// The wrong kind of file says what it is.
	code, msg = runNodeCLI(t, "--config", cfg, "--data-dir", f.member, "--listen", "/ip4/127.0.0.1/tcp/0", "--metrics", "nonsense", "--scope-grant", f.rec)
	if code != exitInput || !strings.Contains(msg, `"DAF KEY RECORD"`) {
		t.Errorf("record as grant: exit %d stderr %q, want exit %d saying it is a key record", code, msg, exitInput)
	}
}

// The grant files a member's operator can get wrong, each refused at start
// with what to do about it rather than a node that runs and never gets a key.
func TestNodeRefusesGrantsItCannotUse(t *testing.T) {
	f := newScopeFixture(t)
	_, out := runCLI(t, "keygen", "--data-dir", f.admin)
	adminID := strings.TrimSpace(out)
	mustCLI := func(args ...string) {
		t.Helper()
		if code, msg := runCLIStderr(t, args...); code != exitOK {
			t.Fatalf("daf %s: exit %d: %s", strings.Join(args, " "), code, msg)
		}
	}
	granted, other, otherGranted := filepath.Join(f.dir, "m.grant"), filepath.Join(f.dir, "other.grant"), filepath.Join(f.dir, "m-other.grant")
	mustCLI("scope", "grant", "--data-dir", f.admin, "--grant", f.own, "--member", f.rec, "-o", granted)
	mustCLI("scope", "new", "--data-dir", f.admin, "--tier", "group", "--scope", "acme", "-o", other)
	mustCLI("scope", "grant", "--data-dir", f.admin, "--grant", other, "--member", f.rec, "-o", otherGranted)
	cfg := writeProcessConfig(t, f.dir, "[federation.node]\ntier = \"tenant\"\nscope = \"acme\"\n")
	for _, c := range []struct {
		name string
		args []string
		want []string
	}{
		{"own grant, admin not trusted", []string{"--scope-grant", granted}, []string{granted, "--scope-admin " + adminID}},
		{"grant of the other tier", []string{"--scope-grant", otherGranted, "--scope-admin", adminID}, []string{otherGranted, "group/acme", `tier tenant scope "acme"`}},
		{"the admin's grant", []string{"--scope-grant", f.own}, []string{f.own + " is addressed to " + adminID}},
	} {
		t.Run(c.name, func(t *testing.T) {
			args := append([]string{"--config", cfg, "--data-dir", f.member, "--listen", "/ip4/127.0.0.1/tcp/0"}, c.args...)
			code, msg := runNodeCLI(t, args...)
			if code != exitInput {
				t.Errorf("exit %d, want %d (stderr %q)", code, exitInput, msg)
			}
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("stderr %q does not name %q", msg, w)
				}
			}
		})
	}
}
