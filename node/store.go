package node

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"time"

	"github.com/dafnet/daf/defense"
	"github.com/dafnet/daf/gossip"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Bucket names of state.db. Changing one orphans existing data, so they are
// part of the data-directory format (docs/FORMATS.md).
var (
	bucketPeers      = []byte("peers")
	bucketReputation = []byte("reputation")
	bucketRounds     = []byte("rounds")
	bucketLedger     = []byte("privacy_ledger")
	bucketDetector   = []byte("detector")
	bucketMeta       = []byte("meta")
	allBuckets       = [][]byte{bucketPeers, bucketReputation, bucketRounds, bucketLedger, bucketDetector, bucketMeta}
)

// ErrCorruptState marks a state.db value that does not decode: the file was
// damaged or written by an incompatible version.
var ErrCorruptState = errors.New("corrupt node state")

// Store is the node's durable state in one bbolt file. Every write is its
// own transaction, committed and fsynced before the call returns, so a node
// killed at any moment restarts from the last completed write.
type Store struct {
	db   *bolt.DB
	path string
}

// OpenStore opens (creating if needed) the bbolt file at path.
//
// A file that exists but is not a sound database is refused with
// ErrCorruptState and left untouched. bbolt would initialise an empty
// file as a new database, and a node that quietly started with a fresh
// state would have forgotten its privacy ledger and spend the budget
// again; what to do with a damaged file is the operator's call.
func OpenStore(path string) (*Store, error) {
	if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() && fi.Size() == 0 {
		return nil, fmt.Errorf("%w: %s is empty (0 bytes): refusing to start over with a fresh privacy ledger; remove it only if this node never ran", ErrCorruptState, path)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, fmt.Errorf("open state %s: locked by another process (is another daf node running on this data directory?)", path)
		}
		if errors.Is(err, os.ErrPermission) || errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("open state %s: %w", path, err)
		}
		return nil, fmt.Errorf("%w: %s: %v", ErrCorruptState, path, err)
	}
	if err := checkConsistent(db); err != nil {
		db.Close()
		return nil, fmt.Errorf("%w: %s: %v", ErrCorruptState, path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("init state %s: %w", path, err)
	}
	return &Store{db: db, path: path}, nil
}

// checkConsistent walks the page tree once at start-up (milliseconds for a
// node's state), so damage inside the file is found before the node acts
// on it rather than as a panic in the middle of a round.
func checkConsistent(db *bolt.DB) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("consistency check: %v", r)
		}
	}()
	return db.View(func(tx *bolt.Tx) error {
		// The channel is drained to the end: the checker goroutine reads
		// the transaction until it closes it.
		var first error
		for e := range tx.Check() {
			if first == nil {
				first = fmt.Errorf("consistency check: %w", e)
			}
		}
		return first
	})
}

// Close closes the file.
func (s *Store) Close() error { return s.db.Close() }

func (s *Store) put(bucket, key, val []byte) error {
	return s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucket).Put(key, val) })
}

// get returns a copy of the value, or ok=false.
func (s *Store) get(bucket, key []byte) (val []byte, ok bool, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucket).Get(key)
		if v != nil {
			val, ok = append([]byte(nil), v...), true
		}
		return nil
	})
	return val, ok, err
}

// ledgerKey is the single key of the ledger bucket.
var ledgerKey = []byte("ledger")

// LoadLedger and SaveLedger make the store a privacy.LedgerStore.
func (s *Store) LoadLedger() ([]byte, bool, error) { return s.get(bucketLedger, ledgerKey) }
func (s *Store) SaveLedger(data []byte) error      { return s.put(bucketLedger, ledgerKey, data) }

// LoadStats and SaveStats make the store a defense.StatsStore: the
// Byzantine detector's statistics per source node, as JSON.
func (s *Store) LoadStats(node string) (defense.NodeStats, bool, error) {
	var st defense.NodeStats
	v, ok, err := s.get(bucketDetector, []byte(node))
	if err != nil || !ok {
		return st, false, err
	}
	if err := json.Unmarshal(v, &st); err != nil {
		return st, false, fmt.Errorf("%w: detector/%s: %v", ErrCorruptState, node, err)
	}
	return st, true, nil
}

func (s *Store) SaveStats(node string, st defense.NodeStats) error {
	buf, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("detector statistics of %s: %w", node, err)
	}
	return s.put(bucketDetector, []byte(node), buf)
}

// PutPeer records what the node knows of a peer (keys, addresses,
// memberships, reputation, last seen).
func (s *Store) PutPeer(p gossip.PeerInfo) error {
	buf, err := json.Marshal(p)
	if err != nil {
		return err
	}
	return s.put(bucketPeers, []byte(p.ID), buf)
}

// Peers returns every recorded peer, in ID order.
func (s *Store) Peers() ([]gossip.PeerInfo, error) {
	var out []gossip.PeerInfo
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketPeers).ForEach(func(k, v []byte) error {
			var p gossip.PeerInfo
			if err := json.Unmarshal(v, &p); err != nil {
				return fmt.Errorf("%w: peers/%s: %v", ErrCorruptState, k, err)
			}
			out = append(out, p)
			return nil
		})
	})
	return out, err
}

// PutReputations stores reputations (a float64 per peer) in one transaction.
func (s *Store) PutReputations(rep map[string]float64) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketReputation)
		for id, r := range rep {
			if math.IsNaN(r) || math.IsInf(r, 0) {
				return fmt.Errorf("reputation of peer %s is %v", id, r)
			}
			var v [8]byte
			binary.BigEndian.PutUint64(v[:], math.Float64bits(r))
			if err := b.Put([]byte(id), v[:]); err != nil {
				return err
			}
		}
		return nil
	})
}

// Reputations returns every stored reputation.
func (s *Store) Reputations() (map[string]float64, error) {
	out := map[string]float64{}
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketReputation).ForEach(func(k, v []byte) error {
			if len(v) != 8 {
				return fmt.Errorf("%w: reputation/%s has %d bytes, want 8", ErrCorruptState, k, len(v))
			}
			r := math.Float64frombits(binary.BigEndian.Uint64(v))
			if math.IsNaN(r) || math.IsInf(r, 0) {
				return fmt.Errorf("%w: reputation/%s is %v", ErrCorruptState, k, r)
			}
			out[string(k)] = r
			return nil
		})
	})
	return out, err
}

// RoundRecord is one line of the round log.
type RoundRecord struct {
	Round        uint64    `json:"round"`
	Scope        string    `json:"scope"`
	Completed    bool      `json:"completed"`
	SkipReason   string    `json:"skip_reason,omitempty"`
	Contributors []string  `json:"contributors,omitempty"`
	Rejected     int       `json:"rejected,omitempty"`
	AdapterFile  string    `json:"adapter_file,omitempty"`
	Finished     time.Time `json:"finished"`
}

// roundKey orders the log by round, then scope.
func roundKey(round uint64, scope string) []byte {
	k := make([]byte, 8, 8+len(scope))
	binary.BigEndian.PutUint64(k, round)
	return append(k, scope...)
}

// AppendRound writes a round's outcome.
func (s *Store) AppendRound(r RoundRecord) error {
	buf, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return s.put(bucketRounds, roundKey(r.Round, r.Scope), buf)
}

// LastRound returns the highest logged round, or ok=false on a fresh node.
func (s *Store) LastRound() (rec RoundRecord, ok bool, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		k, v := tx.Bucket(bucketRounds).Cursor().Last()
		if k == nil {
			return nil
		}
		if err := json.Unmarshal(v, &rec); err != nil {
			return fmt.Errorf("%w: rounds/%x: %v", ErrCorruptState, k, err)
		}
		ok = true
		return nil
	})
	return rec, ok, err
}

// Rounds returns the log from round `from` on, in order.
func (s *Store) Rounds(from uint64) ([]RoundRecord, error) {
	var out []RoundRecord
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketRounds).Cursor()
		for k, v := c.Seek(roundKey(from, "")); k != nil; k, v = c.Next() {
			var r RoundRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("%w: rounds/%x: %v", ErrCorruptState, k, err)
			}
			out = append(out, r)
		}
		return nil
	})
	return out, err
}

// PutMeta and Meta keep small named values (genesis time, federation id).
func (s *Store) PutMeta(key string, val []byte) error  { return s.put(bucketMeta, []byte(key), val) }
func (s *Store) Meta(key string) ([]byte, bool, error) { return s.get(bucketMeta, []byte(key)) }

// Batch is a set of writes committed in one transaction (one fsync): the
// round loop persists everything a step produced at once, since a
// transaction per record would cost the loop tens of milliseconds each.
type Batch struct {
	Peers       []gossip.PeerInfo
	Reputations map[string]float64
	Rounds      []RoundRecord
	Meta        map[string][]byte
	Stats       map[string]defense.NodeStats
}

// Empty reports whether the batch writes nothing.
func (b *Batch) Empty() bool {
	return len(b.Peers) == 0 && len(b.Reputations) == 0 && len(b.Rounds) == 0 && len(b.Meta) == 0 && len(b.Stats) == 0
}

// Commit writes the batch atomically.
func (s *Store) Commit(b *Batch) error {
	if b.Empty() {
		return nil
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		for _, p := range b.Peers {
			buf, err := json.Marshal(p)
			if err != nil {
				return err
			}
			if err := tx.Bucket(bucketPeers).Put([]byte(p.ID), buf); err != nil {
				return err
			}
		}
		for id, r := range b.Reputations {
			if math.IsNaN(r) || math.IsInf(r, 0) {
				return fmt.Errorf("reputation of peer %s is %v", id, r)
			}
			var v [8]byte
			binary.BigEndian.PutUint64(v[:], math.Float64bits(r))
			if err := tx.Bucket(bucketReputation).Put([]byte(id), v[:]); err != nil {
				return err
			}
		}
		for _, r := range b.Rounds {
			buf, err := json.Marshal(r)
			if err != nil {
				return err
			}
			if err := tx.Bucket(bucketRounds).Put(roundKey(r.Round, r.Scope), buf); err != nil {
				return err
			}
		}
		for k, v := range b.Meta {
			if err := tx.Bucket(bucketMeta).Put([]byte(k), v); err != nil {
				return err
			}
		}
		for node, st := range b.Stats {
			buf, err := json.Marshal(st)
			if err != nil {
				return err
			}
			if err := tx.Bucket(bucketDetector).Put([]byte(node), buf); err != nil {
				return err
			}
		}
		return nil
	})
}
