package sim

import (
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dafnet/daf/config"
	"github.com/dafnet/daf/gossip"
	"github.com/dafnet/daf/privacy"
	"github.com/dafnet/daf/round"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the golden outputs of testdata/*.txt")

// A script is a sequence of cases:
//
//	# comments
//	command key=value ...
//	----
//	expected output (no blank lines)
//
// separated by blank lines.
type scriptCase struct {
	comments []string
	cmd      string
	want     []string
}

func parseScript(t *testing.T, path string) []scriptCase {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cases []scriptCase
	var cur scriptCase
	inOutput := false
	for i, line := range strings.Split(string(data), "\n") {
		switch {
		case inOutput && line == "":
			cases = append(cases, cur)
			cur, inOutput = scriptCase{}, false
		case inOutput:
			cur.want = append(cur.want, line)
		case line == "----":
			if cur.cmd == "" {
				t.Fatalf("%s:%d: output separator without a command", path, i+1)
			}
			inOutput = true
		case strings.HasPrefix(line, "#"):
			cur.comments = append(cur.comments, line)
		case line == "":
		default:
			if cur.cmd != "" {
				t.Fatalf("%s:%d: command %q follows %q without ----", path, i+1, line, cur.cmd)
			}
			cur.cmd = line
		}
	}
	if cur.cmd != "" {
		cases = append(cases, cur)
	}
	return cases
}

func writeScript(path string, cases []scriptCase) error {
	var b strings.Builder
	for i, c := range cases {
		if i > 0 {
			b.WriteString("\n")
		}
		for _, l := range c.comments {
			b.WriteString(l + "\n")
		}
		b.WriteString(c.cmd + "\n----\n")
		for _, l := range c.want {
			b.WriteString(l + "\n")
		}
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

func TestScenarios(t *testing.T) {
	paths, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no scenario scripts in testdata (%v)", err)
	}
	for _, path := range paths {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txt"), func(t *testing.T) {
			cases := parseScript(t, path)
			var s scenario
			for i := range cases {
				got, err := s.exec(cases[i].cmd)
				if err != nil {
					got = []string{"error: " + err.Error()}
				}
				if len(got) == 0 {
					got = []string{"ok"}
				}
				if *rewrite {
					cases[i].want = got
					continue
				}
				if !slices.Equal(got, cases[i].want) {
					t.Errorf("%s: %s\n got:\n%s\nwant:\n%s", path, cases[i].cmd, strings.Join(got, "\n"), strings.Join(cases[i].want, "\n"))
				}
			}
			if *rewrite {
				if err := writeScript(path, cases); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

type scenario struct {
	c *Cluster
}

func parseArgs(fields []string) (map[string]string, []string) {
	kv := map[string]string{}
	var pos []string
	for _, f := range fields {
		if k, v, ok := strings.Cut(f, "="); ok {
			kv[k] = v
		} else {
			pos = append(pos, f)
		}
	}
	return kv, pos
}

func (s *scenario) exec(line string) ([]string, error) {
	fields := strings.Fields(line)
	kv, pos := parseArgs(fields[1:])
	dur := func(key string, def time.Duration) (time.Duration, error) {
		v, ok := kv[key]
		if !ok {
			return def, nil
		}
		return time.ParseDuration(v)
	}
	num := func(key string, def int) (int, error) {
		v, ok := kv[key]
		if !ok {
			return def, nil
		}
		return strconv.Atoi(v)
	}
	if fields[0] != "cluster" && s.c == nil {
		return nil, fmt.Errorf("no cluster yet")
	}
	node := func() (*Node, error) {
		if len(pos) != 1 {
			return nil, fmt.Errorf("%s wants one node name", fields[0])
		}
		return s.c.Node(gossip.PeerID(pos[0]))
	}
	switch fields[0] {
	case "cluster":
		cfg := config.Default()
		f := &cfg.Federation
		var err error
		var n, params, seed int
		var interval, prop, peerTimeout, train, latency time.Duration
		for _, step := range []func() error{
			func() (e error) { n, e = num("nodes", 5); return },
			func() (e error) { params, e = num("params", 8); return },
			func() (e error) { seed, e = num("seed", 1); return },
			func() (e error) { f.MinNodesForAggregation, e = num("min", f.MinNodesForAggregation); return },
			func() (e error) { f.MaxNodesPerRound, e = num("max", f.MaxNodesPerRound); return },
			func() (e error) { f.Gossip.FanOut, e = num("fanout", f.Gossip.FanOut); return },
			func() (e error) { f.Gossip.MaxHops, e = num("hops", f.Gossip.MaxHops); return },
			func() (e error) { interval, e = dur("interval", 120*time.Second); return },
			func() (e error) { prop, e = dur("prop", 30*time.Second); return },
			func() (e error) { peerTimeout, e = dur("peer_timeout", 300*time.Second); return },
			func() (e error) { train, e = dur("train", 5*time.Second); return },
			func() (e error) { latency, e = dur("latency", 20*time.Millisecond); return },
		} {
			if err = step(); err != nil {
				return nil, err
			}
		}
		rc, err := round.FromConfig(cfg, "template", true)
		if err != nil {
			return nil, err
		}
		rc.Interval, rc.PropagationTimeout, rc.PeerTimeout = interval, prop, peerTimeout
		if tier, ok := kv["tier"]; ok {
			pt, err := privacy.ParseTier(tier)
			if err != nil {
				return nil, err
			}
			rc.Memberships = []gossip.Membership{{Tier: pt, Scope: kv["scope"]}}
		}
		if kv["byzantine_detection"] == "false" {
			rc.ByzantineDetection = false
		}
		c, err := NewCluster(ClusterConfig{Nodes: n, Round: rc, Params: params, Seed: uint64(seed), Latency: latency, TrainTime: train})
		if err != nil {
			return nil, err
		}
		s.c = c
		return c.TakeLog(), nil
	case "run":
		d, err := dur("for", 0)
		if err != nil {
			return nil, err
		}
		if r, ok := kv["rounds"]; ok {
			k, err := strconv.Atoi(r)
			if err != nil {
				return nil, err
			}
			sched := s.c.Schedule()
			// Stop just after the slot boundary so the last round's log is in.
			d = sched.Start(sched.RoundAt(s.c.Now)+uint64(k)).Sub(s.c.Now) + time.Millisecond
		}
		s.c.RunUntil(s.c.Now.Add(d))
		return s.c.TakeLog(), nil
	case "train":
		n, err := node()
		if err != nil {
			return nil, err
		}
		if n.TrainTime, err = dur("time", n.TrainTime); err != nil {
			return nil, err
		}
		return nil, nil
	case "down", "up":
		n, err := node()
		if err != nil {
			return nil, err
		}
		if err := s.c.SetDown(n.ID, fields[0] == "down"); err != nil {
			return nil, err
		}
		return s.c.TakeLog(), nil
	case "partition":
		var groups [][]gossip.PeerID
		for _, g := range pos {
			var ids []gossip.PeerID
			for _, id := range strings.Split(g, ",") {
				ids = append(ids, gossip.PeerID(id))
			}
			groups = append(groups, ids)
		}
		s.c.Net.Partition(groups...)
		return nil, nil
	case "heal":
		s.c.Net.Heal()
		s.c.heartbeat()
		return s.c.TakeLog(), nil
	case "byzantine":
		n, err := node()
		if err != nil {
			return nil, err
		}
		scale, err := strconv.ParseFloat(kv["scale"], 32)
		if err != nil {
			return nil, fmt.Errorf("byzantine: scale: %w", err)
		}
		n.Scale = float32(scale)
		return nil, nil
	case "forge":
		n, err := node()
		if err != nil {
			return nil, err
		}
		n.ForgeAs = gossip.PeerID(kv["as"])
		return nil, nil
	case "crash":
		n, err := node()
		if err != nil {
			return nil, err
		}
		return nil, s.c.Crash(n.ID)
	case "restart":
		n, err := node()
		if err != nil {
			return nil, err
		}
		err = s.c.Restart(n.ID)
		return s.c.TakeLog(), err
	case "models":
		mean := s.c.MeanTarget()
		var out []string
		for _, n := range s.c.Nodes {
			out = append(out, fmt.Sprintf("%s to_mean_target=%.4f", n.ID, distance(n.Model, mean)))
		}
		var ids []gossip.PeerID
		for _, id := range pos {
			ids = append(ids, gossip.PeerID(id))
		}
		return append(out, fmt.Sprintf("spread=%.4f", s.c.Spread(ids...))), nil
	case "stats":
		var out []string
		for _, n := range s.c.Nodes {
			if n.M == nil {
				out = append(out, fmt.Sprintf("%s crashed", n.ID))
				continue
			}
			st := n.M.Stats()
			var recv []string
			for _, k := range slices.Sorted(maps.Keys(st.Gossip.Received)) {
				recv = append(recv, fmt.Sprintf("%s=%d", k, st.Gossip.Received[k]))
			}
			var skips []string
			for _, k := range slices.Sorted(maps.Keys(st.RoundsSkipped)) {
				skips = append(skips, fmt.Sprintf("%s=%d", k, st.RoundsSkipped[k]))
			}
			var reps []string
			for _, p := range n.M.Engine().Table().All() {
				reps = append(reps, fmt.Sprintf("%s:%.2f", p.ID, p.Reputation))
			}
			out = append(out, fmt.Sprintf("%s r%d completed=%d skipped{%s} recv{%s} rep{%s}",
				n.ID, st.Round, st.RoundsCompleted, strings.Join(skips, " "), strings.Join(recv, " "), strings.Join(reps, " ")))
		}
		return out, nil
	}
	return nil, fmt.Errorf("unknown command %q", fields[0])
}
