package main

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/dafnet/daf/adapter"
	"github.com/dafnet/daf/config"
	"github.com/dafnet/daf/dlm"
	"github.com/dafnet/daf/node"
	"github.com/dafnet/daf/p2p"
	"github.com/dafnet/daf/seal"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/spf13/cobra"
)

func init() {
	var (
		cfgPath, dataDir, trainData, trainerDir, metricsAddr string
		scopeGrants, scopeAdmins                             []string
		listen, bootstrap                                    []string
		logFormat, logLevel, genesis, federationID           string
	)
	cmd := &cobra.Command{
		Use:   "node --config FILE --data-dir DIR",
		Short: "Run one federation node until SIGINT or SIGTERM",
		Long: `Run one long-lived DAF node: libp2p host, gossip, the round engine, aggregation and
the state in DIR (identity.key, state.db, adapters/). Killed at any moment, it restarts
in the same round numbering with its adapters, reputations and privacy ledger.

Without --train-data or --trainer-dir the node relays and aggregates but contributes
no update. --train-data trains the built-in reference model's TALoRA banks on a text
file (or a directory of text files); --trainer-dir hands training to an external
program through files (docs/TRAINER.md).

In the group or tenant tier the node needs the scope's key: --scope-admin with the peer
ID of the admin whose node hands it over, or --scope-grant with a grant file addressed
to it (issued by a --scope-admin, or by this node itself) (daf scope --help).`,
		Example: `  daf keygen --data-dir ./n1
  daf node --config federation.toml --data-dir ./n1 --listen /ip4/0.0.0.0/tcp/7400 \
      --train-data corpus.txt --metrics 127.0.0.1:9400
  daf node --config federation.toml --data-dir ./n2 --listen /ip4/0.0.0.0/tcp/7401 \
      --bootstrap /ip4/127.0.0.1/tcp/7400/p2p/12D3KooW...`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case cfgPath == "":
				return badInputf("--config: required")
			case dataDir == "":
				return badInputf("--data-dir: required")
			case trainData != "" && trainerDir != "":
				return badInputf("--train-data and --trainer-dir: choose one trainer")
			}
			if err := checkNodePaths(dataDir, listen, bootstrap); err != nil {
				return err
			}
			logger, err := newLogger(logFormat, logLevel)
			if err != nil {
				return badInput(err)
			}
			fed, err := config.Load(cfgPath)
			if err != nil {
				return badInputf("--config %s: %v", cfgPath, err)
			}
			gen, err := parseGenesis(genesis)
			if err != nil {
				return badInputf("--genesis: %v", err)
			}
			grants, admins, err := loadGrantFlags(scopeGrants, scopeAdmins)
			if err != nil {
				return err
			}
			if t := fed.Federation.Node.Tier; (t == "group" || t == "tenant") && len(grants) == 0 && len(admins) == 0 {
				return badInputf("--config %s: federation.node.tier %s seals updates with the scope's key: give --scope-grant FILE or --scope-admin PEER_ID (see daf scope --help)", cfgPath, t)
			}
			trainer, err := buildTrainer(fed, trainData, trainerDir, federationID)
			if err != nil {
				return badInput(err)
			}
			// The metrics port is taken before the node opens its store and
			// host, so a port in use fails fast with nothing left to undo.
			var metricsLn net.Listener
			if metricsAddr != "" {
				if _, _, err := net.SplitHostPort(metricsAddr); err != nil {
					return badInputf("--metrics %q: want HOST:PORT: %v", metricsAddr, err)
				}
				if metricsLn, err = net.Listen("tcp", metricsAddr); err != nil {
					return badInputf("--metrics %q: %v", metricsAddr, err)
				}
				defer metricsLn.Close()
			}
			n, err := node.New(node.Config{
				Fed: fed, DataDir: dataDir, Listen: listen, Bootstrap: bootstrap, Trainer: trainer,
				Genesis: gen, FederationID: federationID, Logger: logger, Grants: grants, ScopeAdmins: admins,
			})
			if err != nil {
				if errors.Is(err, node.ErrCorruptState) {
					return badInputf("%v (left as it is: restore it from a backup, or move it aside to start over with an empty privacy ledger)", err)
				}
				if errors.Is(err, node.ErrConfig) || errors.Is(err, seal.ErrKeyFilePermissions) || errors.Is(err, seal.ErrKeyFileFormat) {
					return badInput(err)
				}
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if metricsLn != nil {
				srv := serveMetrics(metricsLn, n)
				defer func() {
					sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
					defer cancel()
					_ = srv.Shutdown(sctx)
				}()
				logger.Info("metrics", "url", "http://"+metricsAddr+"/metrics")
			}
			fmt.Fprintln(cmd.ErrOrStderr(), "peer id:", n.ID())
			for _, a := range n.Addrs() {
				fmt.Fprintln(cmd.ErrOrStderr(), "listening:", a)
			}
			return n.Run(ctx)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfgPath, "config", "", "federation.toml")
	f.StringVar(&dataDir, "data-dir", "", "node data directory (identity.key, state.db, adapters/)")
	f.StringArrayVar(&listen, "listen", []string{"/ip4/0.0.0.0/tcp/7400", "/ip4/0.0.0.0/udp/7400/quic-v1"}, "listen multiaddr (repeatable)")
	f.StringArrayVar(&bootstrap, "bootstrap", nil, "bootstrap peer multiaddr ending in /p2p/<peer id> (repeatable)")
	f.StringVar(&trainData, "train-data", "", "text file or directory: train the built-in reference model on it")
	f.StringVar(&trainerDir, "trainer-dir", "", "file-drop bridge directory for an external trainer (docs/TRAINER.md)")
	f.StringArrayVar(&scopeGrants, "scope-grant", nil, "scope key grant file from daf scope new/grant (repeatable): this node's key, or a member's to hand over")
	f.StringArrayVar(&scopeAdmins, "scope-admin", nil, "peer ID whose scope key grants this node accepts (repeatable)")
	f.StringVar(&metricsAddr, "metrics", "", "serve Prometheus metrics on HOST:PORT at /metrics")
	f.StringVar(&logFormat, "log-format", "text", "log format: text or json")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	f.StringVar(&genesis, "genesis", "", "start of round 0 as RFC 3339 or Unix seconds (default the Unix epoch); the same on every node")
	f.StringVar(&federationID, "federation-id", "daf", "federation id signed into every envelope; nodes of another id are refused")
	rootCmd.AddCommand(cmd)
}

// checkNodePaths rejects the flags that name a place (data directory,
// addresses) before anything is created or opened, so each mistake is a
// usage error naming its flag.
func checkNodePaths(dataDir string, listen, bootstrap []string) error {
	if fi, err := os.Stat(dataDir); err == nil && !fi.IsDir() {
		return badInputf("--data-dir %s: not a directory", dataDir)
	}
	for _, s := range listen {
		a, err := p2p.ParseListen(s)
		if err != nil {
			return badInputf("--listen %q: %v", s, err)
		}
		if err := portFree(a); err != nil {
			return badInputf("--listen %q: %v", s, err)
		}
	}
	for _, s := range bootstrap {
		if _, err := p2p.ParseBootstrap(s); err != nil {
			return badInputf("--bootstrap %q: %v", s, err)
		}
	}
	return nil
}

// portFree tries the fixed TCP or UDP port of a listen address, so a port
// another program holds is reported as one line naming the flag rather
// than as libp2p's start-up failure. Port 0 and other shapes pass: the
// host reports those itself.
func portFree(a ma.Multiaddr) error {
	host, err := a.ValueForProtocol(ma.P_IP4)
	if err != nil {
		if host, err = a.ValueForProtocol(ma.P_IP6); err != nil {
			return nil
		}
	}
	if port, err := a.ValueForProtocol(ma.P_TCP); err == nil && port != "0" {
		ln, err := net.Listen("tcp", net.JoinHostPort(host, port))
		if err != nil {
			return err
		}
		return ln.Close()
	}
	if port, err := a.ValueForProtocol(ma.P_UDP); err == nil && port != "0" {
		pc, err := net.ListenPacket("udp", net.JoinHostPort(host, port))
		if err != nil {
			return err
		}
		return pc.Close()
	}
	return nil
}

func newLogger(format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}

func parseGenesis(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if secs, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Unix(secs, 0), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither RFC 3339 nor Unix seconds", s)
	}
	return t, nil
}

// buildTrainer makes the node's trainer from the flags: the built-in
// reference model, the file-drop bridge, or none.
func buildTrainer(fed config.Config, trainData, trainerDir, federationID string) (node.Trainer, error) {
	switch {
	case trainerDir != "":
		t, err := node.NewFileDropTrainer(trainerDir, 0)
		if err != nil {
			return nil, fmt.Errorf("--trainer-dir %s: %w", trainerDir, err)
		}
		return t, nil
	case trainData != "":
		shards, err := dlm.LoadShards([]string{trainData})
		if err != nil {
			return nil, fmt.Errorf("--train-data %s: %w", trainData, err)
		}
		base, err := dlm.DefaultBase()
		if err != nil {
			return nil, err
		}
		text := append(append([]byte(nil), shards[0].Train...), shards[0].Heldout...)
		cfg := dlm.DefaultTrainConfig()
		return &refTrainer{Trainer: dlm.NewTrainer(base, text, cfg), base: base, groups: groupsOf(fed), initSeed: initialBanksSeed(federationID)}, nil
	}
	return nil, nil
}

// refTrainer is the reference model's trainer plus the initial banks every
// node of the federation starts from. Averaging LoRA factors is only
// meaningful from a shared start (the A factors of two random inits have
// nothing to do with each other), so the banks come from a seed of the
// federation, never from anything a node chooses for itself.
type refTrainer struct {
	*dlm.Trainer
	base     *dlm.Base
	groups   []adapter.GroupRange
	initSeed uint64
}

func (r *refTrainer) InitialAdapter() (*adapter.Update, error) {
	return dlm.NewBanks(r.base, r.groups, r.initSeed), nil
}

// initialBanksSeed is the federation-wide seed of the initial banks: the
// first 8 bytes (big-endian) of SHA-256 over a domain tag and the
// federation id, the same on every node that passes the same --federation-id.
func initialBanksSeed(federationID string) uint64 {
	sum := sha256.Sum256([]byte("daf/initial-banks/v1\x00" + federationID))
	return binary.BigEndian.Uint64(sum[:8])
}

// groupsOf are the timestep groups of [federation.daf].
func groupsOf(fed config.Config) []adapter.GroupRange {
	d := fed.Federation.DAF
	return []adapter.GroupRange{
		{Name: "coarse", Start: d.CoarseRange[0], End: d.CoarseRange[1]},
		{Name: "domain", Start: d.DomainRange[0], End: d.DomainRange[1]},
		{Name: "fine", Start: d.FineRange[0], End: d.FineRange[1]},
	}
}

func serveMetrics(ln net.Listener, n *node.Node) *http.Server {
	mux := http.NewServeMux()
	mux.Handle("/metrics", n.Metrics().Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return srv
}
