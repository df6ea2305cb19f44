package dlm

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestBaseRoundTrip(t *testing.T) {
	b, _ := randomModel(t, tinyConfig(), 1)
	path := filepath.Join(t.TempDir(), "base.safetensors")
	if err := b.Save(path); err != nil {
		t.Fatal(err)
	}
	got, err := LoadBase(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.Config != b.Config || !reflect.DeepEqual(got.p.flat, b.p.flat) || !reflect.DeepEqual(got.p.head.wt, b.p.head.wt) {
		t.Fatal("round trip changed the model")
	}
}

func TestDefaultBaseLoads(t *testing.T) {
	b, err := DefaultBase()
	if err != nil {
		t.Fatal(err)
	}
	if b.Config != DefaultConfig() {
		t.Fatalf("shipped base has shape %+v, DefaultConfig is %+v", b.Config, DefaultConfig())
	}
	if len(shippedBase) > 1<<20 {
		t.Fatalf("shipped base is %d bytes, budget 1 MiB", len(shippedBase))
	}
}

func TestLoadBaseRejectsCorruptFiles(t *testing.T) {
	b, _ := randomModel(t, tinyConfig(), 1)
	good, err := b.encode()
	if err != nil {
		t.Fatal(err)
	}
	hlen := int(binary.LittleEndian.Uint64(good))
	header := string(good[8 : 8+hlen])
	withHeader := func(h string) []byte {
		out := binary.LittleEndian.AppendUint64(nil, uint64(len(h)))
		return append(append(out, h...), good[8+hlen:]...)
	}
	nan := append([]byte(nil), good...)
	binary.LittleEndian.PutUint32(nan[8+hlen+4:], 0x7fc00000)
	cases := map[string]struct {
		data []byte
		want string
	}{
		"short":        {good[:5], "too short"},
		"huge header":  {append(binary.LittleEndian.AppendUint64(nil, 1<<40), good[8:]...), "header length"},
		"bad json":     {withHeader("{" + header[2:]), "not valid JSON"},
		"truncated":    {good[:len(good)-4], "data bytes"},
		"trailing":     {append(append([]byte(nil), good...), 1, 2, 3, 4), "data bytes"},
		"format":       {withHeader(strings.Replace(header, baseFormat, "other/1", 1)), "dlm.format"},
		"dtype":        {withHeader(strings.Replace(header, `"F32"`, `"F16"`, 1)), "dtype"},
		"nan weight":   {nan, "embed.tokens[1]"},
		"heads":        {withHeader(strings.Replace(header, `"dlm.heads":"2"`, `"dlm.heads":"3"`, 1)), "heads"},
		"renamed":      {withHeader(strings.Replace(header, `"head.bias"`, `"head.bias2"`, 1)), "head.bias missing"},
		"bad offsets":  {withHeader(strings.Replace(header, `"data_offsets":[0,`, `"data_offsets":[4,`, 1)), "embed.tokens"},
		"huge d_model": {withHeader(strings.Replace(header, `"dlm.d_model":"8"`, `"dlm.d_model":"4096"`, 1)), "weights"},
	}
	for name, tc := range cases {
		_, err := decodeBase(tc.data)
		if !errors.Is(err, ErrBaseFile) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want ErrBaseFile mentioning %q", name, err, tc.want)
		}
	}
	if _, err := LoadBase(filepath.Join(t.TempDir(), "missing.safetensors")); err == nil || !strings.Contains(err.Error(), "missing.safetensors") {
		t.Errorf("missing file: %v", err)
	}
	p := filepath.Join(t.TempDir(), "bad.safetensors")
	os.WriteFile(p, good[:20], 0o644)
	if _, err := LoadBase(p); !errors.Is(err, ErrBaseFile) || !strings.Contains(err.Error(), p) {
		t.Errorf("corrupt file: %v should name %s", err, p)
	}
}

func FuzzDecodeBase(f *testing.F) {
	c := ModelConfig{SeqLen: 4, DModel: 4, Heads: 1, Layers: 1, FF: 4, Rank: 1, Alpha: 1}
	b, err := newBase(c, 1)
	if err != nil {
		f.Fatal(err)
	}
	good, _ := b.encode()
	f.Add(good)
	f.Add(good[:100])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := decodeBase(data)
		if err != nil {
			if !errors.Is(err, ErrBaseFile) {
				t.Fatalf("error %v is not ErrBaseFile", err)
			}
			return
		}
		again, err := got.encode()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := decodeBase(again); err != nil {
			t.Fatalf("re-encoded model does not decode: %v", err)
		}
	})
}

// TestShippedBaseReadsContext checks that the shipped base is a trained
// denoiser, not just loadable: on held-out Opticks prose it beats the
// uniform guess (ln 256 = 5.55 nats) by far, and it predicts better the more
// context is left unmasked (fine < domain < coarse).
func TestShippedBaseReadsContext(t *testing.T) {
	b, err := DefaultBase()
	if err != nil {
		t.Fatal(err)
	}
	shards, err := DefaultCorpus(1)
	if err != nil {
		t.Skipf("no default corpus: %v", err)
	}
	ev, err := Evaluate(b, nil, shards[0].Heldout, 32, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !(ev.Loss["fine"] < ev.Loss["domain"] && ev.Loss["domain"] < ev.Loss["coarse"]) {
		t.Errorf("losses %v: want fine < domain < coarse", ev.Loss)
	}
	if ev.Loss["fine"] > 2.6 || ev.Overall > 3.2 || ev.ELBO > 3.2 {
		t.Errorf("losses %v, overall %.3f, ELBO %.3f: the shipped base looks untrained", ev.Loss, ev.Overall, ev.ELBO)
	}
}
