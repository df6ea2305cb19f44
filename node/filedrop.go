package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/dafnet/daf/internal/atomicfile"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/dafnet/daf/adapter"
)

// FileDropTrainer lets an external program (PyTorch + PEFT, say) train for
// the node through a directory; docs/TRAINER.md is the user's guide.
//
//	DIR/outbox/round-N.json          ticket the node writes when round N's training starts
//	DIR/outbox/round-N.safetensors   the node's current adapter (absent before its first aggregate)
//	DIR/inbox/*.safetensors          the trainer's update for round N (daf.round = N, or 0 = any)
//	DIR/inbox/done/, DIR/inbox/rejected/  where the node moves files it has read
//	DIR/inbox/metrics.json           optional {"name": value} that Evaluate reports
//
// Files are read only once complete: the trainer writes under another name
// and renames to *.safetensors. The node waits for the update until the
// round's Collect closes (the context deadline), then takes part without
// one (ErrNoUpdate).
type FileDropTrainer struct {
	Dir  string
	Poll time.Duration
}

// Ticket is the JSON the node writes to the outbox for each round.
type Ticket struct {
	Round    uint64    `json:"round"`
	Deadline time.Time `json:"deadline,omitzero"`
	Adapter  string    `json:"adapter,omitempty"` // file name in outbox/, "" before the first aggregate
}

// NewFileDropTrainer creates DIR/outbox and DIR/inbox (and its done/ and
// rejected/) if needed. poll 0 = 200 ms.
func NewFileDropTrainer(dir string, poll time.Duration) (*FileDropTrainer, error) {
	if dir == "" {
		return nil, errors.New("trainer directory: empty path")
	}
	for _, d := range []string{"outbox", "inbox", "inbox/done", "inbox/rejected"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, fmt.Errorf("trainer directory %s: %w", dir, err)
		}
	}
	if poll <= 0 {
		poll = 200 * time.Millisecond
	}
	return &FileDropTrainer{Dir: dir, Poll: poll}, nil
}

// Train writes the round's ticket and adapter, then waits for the update.
func (f *FileDropTrainer) Train(ctx context.Context, round uint64, current *adapter.Update) (*adapter.Update, error) {
	t := Ticket{Round: round}
	t.Deadline, _ = ctx.Deadline()
	if current != nil {
		t.Adapter = fmt.Sprintf("round-%d.safetensors", round)
		a := current.Clone()
		a.Meta.Kind = adapter.KindAdapter
		a.Meta.Round = round
		if err := adapter.WriteFile(filepath.Join(f.Dir, "outbox", t.Adapter), a); err != nil {
			return nil, fmt.Errorf("trainer outbox: %w", err)
		}
	}
	ticket, err := json.Marshal(t)
	if err != nil {
		return nil, err
	}
	if err := atomicfile.WriteFile(filepath.Join(f.Dir, "outbox", fmt.Sprintf("round-%d.json", round)), ticket, 0o644); err != nil {
		return nil, fmt.Errorf("trainer outbox: %w", err)
	}
	f.pruneOutbox(round)
	tick := time.NewTicker(f.Poll)
	defer tick.Stop()
	for {
		u, err := f.take(round)
		if u != nil || err != nil {
			return u, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: no file in %s for round %d before the deadline", ErrNoUpdate, filepath.Join(f.Dir, "inbox"), round)
		case <-tick.C:
		}
	}
}

// take reads the oldest inbox file. A file for another round, or one that
// does not parse, is moved to rejected/ with the reason logged in its name's
// companion .txt, so a trainer can see why.
func (f *FileDropTrainer) take(round uint64) (*adapter.Update, error) {
	inbox := filepath.Join(f.Dir, "inbox")
	entries, err := os.ReadDir(inbox)
	if err != nil {
		return nil, fmt.Errorf("trainer inbox: %w", err)
	}
	var names []string
	for _, e := range entries {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".safetensors") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	for _, name := range names {
		path := filepath.Join(inbox, name)
		u, err := adapter.ReadFile(path)
		if err == nil && u.Meta.Round != 0 && u.Meta.Round != round {
			if u.Meta.Round > round {
				continue // early: keep it for its round
			}
			err = fmt.Errorf("file is for round %d, the node is training round %d", u.Meta.Round, round)
		}
		if err == nil && (math.IsNaN(u.Meta.Samples) || u.Meta.Samples <= 0) {
			err = fmt.Errorf("daf.samples = %v, want > 0", u.Meta.Samples)
		}
		if err != nil {
			_ = os.Rename(path, filepath.Join(inbox, "rejected", name))
			_ = os.WriteFile(filepath.Join(inbox, "rejected", name+".txt"), []byte(err.Error()+"\n"), 0o644)
			continue
		}
		if err := os.Rename(path, filepath.Join(inbox, "done", name)); err != nil {
			return nil, fmt.Errorf("trainer inbox: %w", err)
		}
		u.Meta.Round = round
		return u, nil
	}
	return nil, nil
}

// pruneOutbox keeps the last few rounds' files.
func (f *FileDropTrainer) pruneOutbox(round uint64) {
	const keep = 3
	if round < keep {
		return
	}
	for r := round - keep; r > 0 && r+keep*4 > round; r-- {
		for _, ext := range []string{".json", ".safetensors"} {
			_ = os.Remove(filepath.Join(f.Dir, "outbox", fmt.Sprintf("round-%d%s", r, ext)))
		}
	}
}

// Evaluate returns DIR/inbox/metrics.json if the trainer wrote one.
func (f *FileDropTrainer) Evaluate(ctx context.Context, _ *adapter.Update) (map[string]float64, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	path := filepath.Join(f.Dir, "inbox", "metrics.json")
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return map[string]float64{}, nil
	}
	if err != nil {
		return nil, err
	}
	var m map[string]float64
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}
