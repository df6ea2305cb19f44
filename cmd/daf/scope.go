package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/dafnet/daf/gossip"
	"github.com/dafnet/daf/internal/atomicfile"
	"github.com/dafnet/daf/node"
	"github.com/dafnet/daf/p2p"
	"github.com/dafnet/daf/privacy"
	"github.com/dafnet/daf/seal"
	"github.com/spf13/cobra"
)

// daf scope new | record | grant: the admin side of a Group or Tenant
// scope (docs/PROTOCOL.md §3). A scope key is never written out raw: the
// admin keeps it as a grant addressed to its own identity, so the file is
// useless to anyone without the admin's identity.key, and every member's
// copy is a grant only that member can open.

// PEM block types of the files these commands write.
const (
	pemGrant     = "DAF SCOPE KEY GRANT"
	pemKeyRecord = "DAF KEY RECORD"
)

// maxArmoredFile bounds what is read of a grant or key record file: a
// grant is under 1 KiB, so anything near this is not one.
const maxArmoredFile = 64 << 10

func init() {
	scopeCmd := &cobra.Command{
		Use:   "scope",
		Short: "Create scope keys and admit members to a Group or Tenant scope",
		Long: `A Group or Tenant scope's updates are sealed with the scope's key. The admin creates it
(daf scope new), collects each member's key record (daf scope record, run by the member),
and makes one grant per member (daf scope grant). The admin's node, started with
--scope-grant for its own grant and for every member's, hands members their grants when
they connect; a member only needs --scope-admin with the admin's peer ID. A grant can
also be given to the member directly (--scope-grant on the member's node, still with
--scope-admin: the member trusts only keys its admin issued).

  admin$  daf scope new --data-dir admin --tier tenant --scope acme -o acme.grant
  member$ daf scope record --data-dir m1 -o m1.record          (send m1.record to the admin)
  admin$  daf scope grant --data-dir admin --grant acme.grant --member m1.record -o m1.grant
  admin$  daf node --data-dir admin --scope-grant acme.grant --scope-grant m1.grant ...
  member$ daf node --data-dir m1 --scope-admin <admin peer id> ...

To rotate (after removing a member, and periodically), run "scope new" with --epoch one
higher, grant the new key to the members that remain and restart the admin's node with
the new grants. Members that stay connected take the new key without a restart; about
30 s later (3 round intervals if longer) they stop opening the old epoch, so the
removed member no longer counts in their rounds.`,
		RunE: unknownSubcommand,
	}
	scopeCmd.AddCommand(newScopeNewCmd(), newScopeRecordCmd(), newScopeGrantCmd())
	rootCmd.AddCommand(scopeCmd)
}

func newScopeNewCmd() *cobra.Command {
	var (
		dataDir, tier, scope, out string
		epoch                     uint32
		asJSON                    bool
	)
	cmd := &cobra.Command{
		Use:   "new --data-dir DIR --tier group|tenant --scope NAME [--epoch E] -o FILE",
		Short: "Draw a new scope key and write it as a grant to this identity",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireFlags(map[string]string{"--data-dir": dataDir, "--scope": scope, "-o": out}); err != nil {
				return err
			}
			t, err := privacy.ParseTier(tier)
			if err != nil || (t != privacy.Group && t != privacy.Tenant) {
				return badInputf("--tier %q: want group or tenant (only those tiers are sealed with a scope key)", tier)
			}
			if epoch == 0 {
				return badInputf("--epoch: must be at least 1")
			}
			if _, err := os.Lstat(out); err == nil {
				return badInputf("-o %s: exists; scope new never replaces a key (choose another file, or --epoch to rotate)", out)
			}
			id, self, _, err := node.LoadOrCreateIdentity(dataDir)
			if err != nil {
				return badInputf("--data-dir %s: %v", dataDir, err)
			}
			key, err := seal.NewScopeKey(rand.Reader, t.String(), scope, epoch)
			if err != nil {
				return badInputf("--scope %q: %v", scope, err)
			}
			g, err := seal.NewScopeKeyGrant(rand.Reader, id, key, seal.NewKeyRecord(id, time.Now().Unix()))
			if err != nil {
				return err
			}
			if err := writeArmored(out, pemGrant, g, id.Public()); err != nil {
				return err
			}
			return printScopeResult(cmd.OutOrStdout(), asJSON, map[string]any{
				"file": out, "tier": key.Tier, "scope": key.Scope, "epoch": key.Epoch, "admin": string(self),
			}, fmt.Sprintf("%s: scope key %s, held by admin %s", out, key, self))
		},
	}
	f := cmd.Flags()
	f.StringVar(&dataDir, "data-dir", "", "the admin's node data directory (identity.key; created if missing)")
	f.StringVar(&tier, "tier", "tenant", "group or tenant")
	f.StringVar(&scope, "scope", "", "scope name, as federation.node.scope in the members' federation.toml")
	f.Uint32Var(&epoch, "epoch", 1, "key epoch: one higher than the current key's to rotate")
	f.StringVarP(&out, "output", "o", "", "file to write the admin's grant to (0600)")
	f.BoolVar(&asJSON, "json", false, "print one JSON object")
	return cmd
}

func newScopeRecordCmd() *cobra.Command {
	var dataDir, out string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "record --data-dir DIR -o FILE",
		Short: "Write this node's signed key record, for a scope admin to grant a key to",
		Long: "Writes the node's key record (its Ed25519 identity and the X25519 key grants are wrapped\n" +
			"to, signed by the identity). It holds no secret: send it to the scope's admin.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireFlags(map[string]string{"--data-dir": dataDir, "-o": out}); err != nil {
				return err
			}
			id, self, _, err := node.LoadOrCreateIdentity(dataDir)
			if err != nil {
				return badInputf("--data-dir %s: %v", dataDir, err)
			}
			if err := writeArmored(out, pemKeyRecord, seal.NewKeyRecord(id, time.Now().Unix()), id.Public()); err != nil {
				return err
			}
			return printScopeResult(cmd.OutOrStdout(), asJSON, map[string]any{"file": out, "peer_id": string(self)},
				fmt.Sprintf("%s: key record of %s", out, self))
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", "", "this node's data directory (identity.key; created if missing)")
	cmd.Flags().StringVarP(&out, "output", "o", "", "file to write the key record to (may replace a key record, nothing else)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object")
	return cmd
}

func newScopeGrantCmd() *cobra.Command {
	var dataDir, grantPath, memberPath, out string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "grant --data-dir DIR --grant ADMIN.grant --member MEMBER.record -o FILE",
		Short: "Grant the scope key held in the admin's grant to one member",
		Long: "Opens the admin's own grant (from daf scope new) with the identity in DIR, wraps the\n" +
			"scope key to the member's X25519 key from its key record and signs the grant. Check that\n" +
			"the printed peer ID is the member you mean to admit.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireFlags(map[string]string{"--data-dir": dataDir, "--grant": grantPath, "--member": memberPath, "-o": out}); err != nil {
				return err
			}
			id, err := seal.LoadIdentity(filepath.Join(dataDir, node.IdentityFile))
			if errors.Is(err, fs.ErrNotExist) {
				return badInputf("--data-dir %s: no %s here: give the admin's data directory, where daf scope new ran", dataDir, node.IdentityFile)
			}
			if err != nil {
				return badInputf("--data-dir %s: %v", dataDir, err)
			}
			key, err := openOwnGrant(grantPath, id)
			if err != nil {
				return err
			}
			raw, err := readArmored(memberPath, pemKeyRecord)
			if err != nil {
				return badInputf("--member %s: %v", memberPath, err)
			}
			rec, err := seal.UnmarshalKeyRecord(raw)
			if err != nil {
				return badInputf("--member %s: %v", memberPath, err)
			}
			if err := rec.Verify(); err != nil {
				return badInputf("--member %s: %v", memberPath, err)
			}
			member, err := p2p.PeerIDFromPublicKey(rec.Identity)
			if err != nil {
				return badInputf("--member %s: %v", memberPath, err)
			}
			g, err := seal.NewScopeKeyGrant(rand.Reader, id, key, rec)
			if err != nil {
				return badInputf("--member %s: %v", memberPath, err)
			}
			if err := writeArmored(out, pemGrant, g, id.Public()); err != nil {
				return err
			}
			return printScopeResult(cmd.OutOrStdout(), asJSON, map[string]any{
				"file": out, "tier": key.Tier, "scope": key.Scope, "epoch": key.Epoch, "member": string(member),
			}, fmt.Sprintf("%s: scope key %s granted to %s", out, key, member))
		},
	}
	f := cmd.Flags()
	f.StringVar(&dataDir, "data-dir", "", "the admin's node data directory (identity.key)")
	f.StringVar(&grantPath, "grant", "", "the admin's own grant, written by daf scope new")
	f.StringVar(&memberPath, "member", "", "the member's key record, written by daf scope record")
	f.StringVarP(&out, "output", "o", "", "file to write the member's grant to (0600; may replace a grant to another node, never the admin's own)")
	f.BoolVar(&asJSON, "json", false, "print one JSON object")
	return cmd
}

// openOwnGrant reads a grant the identity issued to itself and returns the
// scope key inside.
func openOwnGrant(path string, id *seal.Identity) (*seal.ScopeKey, error) {
	raw, err := readArmored(path, pemGrant)
	if err != nil {
		return nil, badInputf("--grant %s: %v", path, err)
	}
	g, err := seal.UnmarshalScopeKeyGrant(raw)
	if err != nil {
		return nil, badInputf("--grant %s: %v", path, err)
	}
	if err := g.Verify(); err != nil {
		return nil, badInputf("--grant %s: %v", path, err)
	}
	if !bytes.Equal(g.Recipient, id.Public()) || !bytes.Equal(g.Issuer, id.Public()) {
		return nil, badInputf("--grant %s: not the admin's own grant for this identity (it is addressed to another node or issued by another admin)", path)
	}
	k, err := g.Open(id)
	if err != nil {
		return nil, badInputf("--grant %s: %v", path, err)
	}
	return k, nil
}

// loadGrantFlags reads `daf node --scope-grant` files and checks
// `--scope-admin` peer IDs.
func loadGrantFlags(grantPaths, adminIDs []string) ([]node.Grant, []gossip.PeerID, error) {
	var grants []node.Grant
	for _, p := range grantPaths {
		raw, err := readArmored(p, pemGrant)
		if err != nil {
			return nil, nil, badInputf("--scope-grant %s: %v", p, err)
		}
		if _, err := seal.UnmarshalScopeKeyGrant(raw); err != nil {
			return nil, nil, badInputf("--scope-grant %s: %v", p, err)
		}
		grants = append(grants, node.Grant{Source: p, Raw: raw})
	}
	var admins []gossip.PeerID
	for _, a := range adminIDs {
		if _, err := p2p.PublicKeyOf(gossip.PeerID(a)); err != nil {
			return nil, nil, badInputf("--scope-admin %q: %v", a, err)
		}
		admins = append(admins, gossip.PeerID(a))
	}
	return grants, admins, nil
}

type marshaler interface{ Marshal() ([]byte, error) }

// writeArmored writes v as one PEM block, atomically, readable by the owner
// only (a grant is useless without its recipient's identity, but there is
// no reason to show it to anyone else). It replaces an existing file only
// if that file is of the kind written and can be made again (see
// checkReplaceable); self is the writer's identity.
func writeArmored(path, blockType string, v marshaler, self ed25519.PublicKey) error {
	raw, err := v.Marshal()
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return badInputf("-o %s: directory %s does not exist", path, dir)
	}
	if err := checkReplaceable(path, blockType, self); err != nil {
		return badInputf("-o %s: %v", path, err)
	}
	if err := atomicfile.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: blockType, Bytes: raw}), 0o600); err != nil {
		return badInputf("-o %s: %v", path, err)
	}
	return nil
}

// checkReplaceable lets -o replace only what can be written again: a key
// record, or a grant addressed to someone else (re-granting to the same
// file names is how a rotation goes). Anything else may be the only copy
// of something: an identity.key, or the admin's own grant, which is the
// only place its scope key exists.
func checkReplaceable(path, blockType string, self ed25519.PublicKey) error {
	st, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return errors.Unwrap(err)
	}
	if !st.Mode().IsRegular() {
		return errors.New("exists and is not a regular file")
	}
	raw, err := readArmored(path, blockType)
	if err != nil {
		return fmt.Errorf("exists and is not a %s file (%v): choose another name", blockType, err)
	}
	if blockType == pemGrant {
		g, err := seal.UnmarshalScopeKeyGrant(raw)
		if err != nil {
			return fmt.Errorf("exists and is not a readable grant (%v): choose another name", err)
		}
		if bytes.Equal(g.Recipient, self) {
			return fmt.Errorf("holds the %s/%s epoch %d key granted to this identity, which may be its only copy: choose another name", g.Tier, g.Scope, g.Epoch)
		}
	}
	return nil
}

// readArmored reads the one PEM block of the given type in a small file.
// Line ends may be CRLF, text may surround the block and its lines may be
// indented (a record pasted into a mail or a chat code block); a second
// block is refused, since it would be silently ignored. Errors do not name
// the file: callers name the flag and the file.
func readArmored(path, blockType string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, errors.Unwrap(err) // the *PathError's cause; the caller names the path
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		return nil, errors.New("not a regular file")
	}
	buf, err := io.ReadAll(io.LimitReader(f, maxArmoredFile+1))
	if err != nil {
		return nil, err
	}
	if len(buf) > maxArmoredFile {
		return nil, fmt.Errorf("larger than %d bytes: not a %s file", maxArmoredFile, blockType)
	}
	var blocks []*pem.Block
	for rest := trimLines(buf); ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		blocks = append(blocks, b)
	}
	switch {
	case len(blocks) == 0:
		return nil, fmt.Errorf("no %q PEM block", blockType)
	case len(blocks) > 1:
		return nil, fmt.Errorf("%d PEM blocks, want exactly one %q (one file per grant or record)", len(blocks), blockType)
	case blocks[0].Type != blockType:
		return nil, fmt.Errorf("holds a %q PEM block, want %q", blocks[0].Type, blockType)
	}
	return blocks[0].Bytes, nil
}

// trimLines strips the spaces, tabs and carriage returns around every
// line, which PEM decoding would otherwise not recognise.
func trimLines(b []byte) []byte {
	lines := bytes.Split(b, []byte("\n"))
	for i, l := range lines {
		lines[i] = bytes.TrimSpace(l)
	}
	return bytes.Join(lines, []byte("\n"))
}

// requireFlags names the first required flag left empty.
func requireFlags(flags map[string]string) error {
	for _, name := range []string{"--data-dir", "--scope", "--grant", "--member", "-o"} {
		if v, ok := flags[name]; ok && v == "" {
			return badInputf("%s: required", name)
		}
	}
	return nil
}

func printScopeResult(w io.Writer, asJSON bool, fields map[string]any, line string) error {
	if asJSON {
		return json.NewEncoder(w).Encode(fields)
	}
	_, err := fmt.Fprintln(w, line)
	return err
}
