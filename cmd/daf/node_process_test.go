package main

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dafnet/daf/adapter"
)

// nodeProc is one `daf node` process of the integration test.
type nodeProc struct {
	dir, id, metrics string
	args             []string
	cmd              *exec.Cmd
	exited           chan error
	log              *os.File
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func (p *nodeProc) start(t *testing.T, bin string) {
	t.Helper()
	cmd := exec.Command(bin, p.args...)
	cmd.Stdout, cmd.Stderr = p.log, p.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.cmd, p.exited = cmd, make(chan error, 1)
	go func() { p.exited <- cmd.Wait() }()
}

// metric scrapes one unlabelled series from the node's /metrics; -1 while
// the endpoint is not up.
func (p *nodeProc) metric(name string) float64 {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get("http://" + p.metrics + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return -1
}

func (p *nodeProc) adapterRound(t *testing.T) uint64 {
	u, err := adapter.ReadFile(filepath.Join(p.dir, "adapters", "current.safetensors"))
	if err != nil {
		return 0
	}
	return u.Meta.Round
}

func eventually(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// externalTrainer plays the external program of the file-drop bridge
// (docs/TRAINER.md): for every ticket in outbox/ it drops a small update
// for that round into inbox/, written under a temporary name and renamed.
func externalTrainer(dir string, scale float32, stop <-chan struct{}) {
	done := map[string]bool{}
	for {
		select {
		case <-stop:
			return
		case <-time.After(50 * time.Millisecond):
		}
		tickets, _ := filepath.Glob(filepath.Join(dir, "outbox", "round-*.json"))
		for _, tk := range tickets {
			if done[tk] {
				continue
			}
			done[tk] = true
			var r uint64
			if _, err := fmt.Sscanf(filepath.Base(tk), "round-%d.json", &r); err != nil {
				continue
			}
			u := adapter.New()
			u.Meta.Round, u.Meta.Samples = r, 16
			for _, g := range adapter.DefaultGroups {
				a := adapter.NewTensor(4, 8)
				for j := range a.Data {
					a.Data[j] = 0.01 * scale * float32(j%5)
				}
				u.Set(g.Name, "base_model.model.layers.0.attn.q_proj.lora_A.weight", a)
			}
			tmp := filepath.Join(dir, "inbox", fmt.Sprintf(".round-%d.part", r))
			if adapter.WriteFile(tmp, u) == nil {
				_ = os.Rename(tmp, filepath.Join(dir, "inbox", fmt.Sprintf("round-%d.safetensors", r)))
			}
		}
	}
}

// buildDaf builds the daf binary into dir.
func buildDaf(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "daf")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// writeProcessConfig writes the process tests' federation.toml (2 s rounds)
// into dir, with extra TOML appended.
func writeProcessConfig(t *testing.T, dir, extra string) string {
	t.Helper()
	cfg := filepath.Join(dir, "federation.toml")
	if err := os.WriteFile(cfg, []byte(processTOML+extra), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg
}

const processTOML = `[federation]
enabled = true
round_interval_secs = 2
min_nodes_for_aggregation = 2
max_nodes_per_round = 50
peer_timeout_secs = 30
[federation.gossip]
fan_out = 4
max_hops = 3
propagation_timeout_secs = 1
[federation.privacy]
epsilon = 1.0
delta = 1e-5
clip_bound = 1.0
`

// launchNodeProcs creates count data directories (daf keygen), runs
// prepare (if set) with them before any node starts, then starts one
// `daf node` per directory on 127.0.0.1 with every other node as a
// bootstrap peer, training through the file-drop bridge, plus extra(i)
// arguments. Failed tests get each node's log tail.
func launchNodeProcs(t *testing.T, tmp, bin, cfg string, count int, prepare func(procs []*nodeProc), extra func(i int) []string) []*nodeProc {
	t.Helper()
	procs := make([]*nodeProc, count)
	for i := range procs {
		dir := filepath.Join(tmp, fmt.Sprintf("n%d", i))
		out, err := exec.Command(bin, "keygen", "--data-dir", dir).Output()
		if err != nil {
			t.Fatalf("keygen: %v", err)
		}
		log, err := os.Create(filepath.Join(tmp, fmt.Sprintf("n%d.log", i)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { log.Close() })
		procs[i] = &nodeProc{dir: dir, id: strings.TrimSpace(string(out)), log: log,
			metrics: fmt.Sprintf("127.0.0.1:%d", freePort(t))}
	}
	if prepare != nil {
		prepare(procs)
	}
	listen := make([]string, count)
	for i := range procs {
		listen[i] = fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", freePort(t))
	}
	for i, p := range procs {
		p.args = []string{"node", "--config", cfg, "--data-dir", p.dir, "--listen", listen[i],
			"--trainer-dir", filepath.Join(p.dir, "trainer"), "--metrics", p.metrics, "--log-format", "json"}
		for j := range procs {
			if j != i {
				p.args = append(p.args, "--bootstrap", listen[j]+"/p2p/"+procs[j].id)
			}
		}
		if extra != nil {
			p.args = append(p.args, extra(i)...)
		}
		p.start(t, bin)
		stop := make(chan struct{})
		t.Cleanup(func() { close(stop) })
		go externalTrainer(filepath.Join(p.dir, "trainer"), float32(i+1), stop)
	}
	t.Cleanup(func() {
		for _, p := range procs {
			if p.cmd.ProcessState == nil {
				_ = p.cmd.Process.Kill()
				<-p.exited
			}
		}
		if t.Failed() {
			for i := range procs {
				b, _ := os.ReadFile(filepath.Join(tmp, fmt.Sprintf("n%d.log", i)))
				t.Logf("node %d log (last 3000 bytes):\n%s", i, tail(b, 3000))
			}
		}
	})
	return procs
}

// TestNodeProcessesKillAndResume runs three real `daf node` processes on
// 127.0.0.1 (training through the file-drop bridge), SIGKILLs one mid-run, restarts it from its data directory and
// checks that it comes back with the same identity and model and completes
// rounds again, while the others carried on; SIGTERM then stops all three
// cleanly.
func TestNodeProcessesKillAndResume(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three node processes")
	}
	tmp := t.TempDir()
	bin := buildDaf(t, tmp)
	cfg := writeProcessConfig(t, tmp, "")
	procs := launchNodeProcs(t, tmp, bin, cfg, 3, nil, nil)
	for i, p := range procs {
		eventually(t, fmt.Sprintf("node %d to complete two rounds", i), 90*time.Second, func() bool {
			return p.metric("daf_rounds_completed_total") >= 2
		})
	}
	if got := procs[0].metric("daf_peers_connected"); got != 2 {
		t.Errorf("node 0 has %v peers, want 2", got)
	}

	victim := procs[2]
	before := victim.adapterRound(t)
	if before == 0 {
		t.Fatal("node 2 has no adapter file after two completed rounds")
	}
	if err := victim.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-victim.exited
	survivors := procs[0].metric("daf_rounds_completed_total")
	time.Sleep(3 * time.Second) // at least one round without node 2
	victim.start(t, bin)
	eventually(t, "the restarted node to complete a round past the one it had", 90*time.Second, func() bool {
		return victim.metric("daf_rounds_completed_total") >= 1 && victim.adapterRound(t) > before
	})
	if got := procs[0].metric("daf_rounds_completed_total"); got <= survivors {
		t.Errorf("node 0 completed no round while node 2 was down or restarting (%v → %v)", survivors, got)
	}
	logText, _ := os.ReadFile(filepath.Join(tmp, "n2.log"))
	if n := strings.Count(string(logText), "peer id: "+victim.id); n != 2 {
		t.Errorf("node 2 printed its peer id %d times across both runs, want 2 (same identity)", n)
	}
	roundNow := victim.metric("daf_round_current")
	if roundNow < float64(before) {
		t.Errorf("restarted node is in round %v, before it had applied round %d", roundNow, before)
	}

	for _, p := range procs {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
	for i, p := range procs {
		select {
		case err := <-p.exited:
			if err != nil {
				t.Errorf("node %d after SIGTERM: %v", i, err)
			}
		case <-time.After(20 * time.Second):
			t.Errorf("node %d did not stop within 20 s of SIGTERM", i)
		}
	}
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
