package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A number too large for its type is a value problem like any other: it
// names its key and line, and the rest of the file is still checked.
func TestOutOfRangeLiteralNamesKeyAndKeepsGoing(t *testing.T) {
	doc := `[federation]
round_interval_secs = 99999999999999999999
bogus = 1

[federation.privacy]
epsilon = 1e400
delta = 2.0

[federation.daf]
coarse_range = [700, 1_000_000_000_000_000_000_000]
`
	_, err := Decode([]byte(doc), "huge.toml")
	var probs *Problems
	if !errors.As(err, &probs) {
		t.Fatalf("want *Problems, got %v", err)
	}
	want := map[string]int{
		"federation.round_interval_secs": 2,
		"federation.bogus":               3,
		"federation.privacy.epsilon":     6,
		"federation.privacy.delta":       7,
		"federation.daf.coarse_range":    10,
	}
	if len(probs.List) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%v", len(probs.List), len(want), err)
	}
	for _, p := range probs.List {
		line, ok := want[p.Key]
		if !ok || p.Line != line {
			t.Errorf("unexpected problem %v (want keys and lines %v)", p, want)
		}
	}
	if !strings.Contains(err.Error(), "1e400") || !strings.Contains(err.Error(), "99999999999999999999") {
		t.Errorf("problems do not quote the literal at fault:\n%v", err)
	}
}

// Durations are used as time.Duration downstream; a number of seconds that
// overflows it would turn into a negative interval.
func TestDurationsFitTimeDuration(t *testing.T) {
	doc := `[federation]
round_interval_secs = 9223372036854775807
peer_timeout_secs = 9223372037

[federation.gossip]
propagation_timeout_secs = 9223372036854775807
`
	_, err := Decode([]byte(doc), "long.toml")
	var probs *Problems
	if !errors.As(err, &probs) {
		t.Fatalf("accepted seconds that overflow time.Duration: %v", err)
	}
	got := strings.Join(probs.Keys(), " ")
	if got != "federation.round_interval_secs federation.peer_timeout_secs federation.gossip.propagation_timeout_secs" {
		t.Fatalf("got problems for %q:\n%v", got, err)
	}
	cfg := Default()
	cfg.Federation.RoundIntervalSecs = MaxSeconds
	if err := cfg.Validate(); err != nil {
		t.Fatalf("MaxSeconds itself rejected: %v", err)
	}
}

// An array of the right length with elements of the wrong type says which
// element is wrong, instead of "want 2 values, got 2 values".
func TestRangeElementOfWrongTypeIsNamed(t *testing.T) {
	_, err := Decode([]byte("[federation.daf]\ndomain_range = [300.0, 700]\nfine_range = [0, \"300\"]\n"), "elem.toml")
	var probs *Problems
	if !errors.As(err, &probs) || len(probs.List) != 2 {
		t.Fatalf("want 2 problems, got %v", err)
	}
	for i, want := range []string{"element 0 is float 300.0", `element 1 is string "300"`} {
		if !strings.Contains(probs.List[i].Message, want) {
			t.Errorf("problem %v does not say %q", probs.List[i], want)
		}
	}
}

// Load reads only regular files: a device such as /dev/zero never ends and
// a FIFO blocks, and neither is a config a user meant to pass.
func TestLoadRefusesNonRegularFiles(t *testing.T) {
	if _, err := os.Stat("/dev/zero"); err != nil {
		t.Skip("no /dev/zero")
	}
	_, err := Load("/dev/zero")
	if err == nil || !strings.Contains(err.Error(), "/dev/zero") || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("got %v", err)
	}
	dir := t.TempDir()
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), dir) {
		t.Fatalf("directory: got %v", err)
	}
}

// A config file is small; a huge one is a mistake and is refused without
// being read into memory.
func TestLoadRefusesHugeFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "big.toml")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(MaxFileBytes + 1); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("got %v", err)
	}
}

// A quoted TOML key may hold a newline or a terminal escape; a problem is
// still one line, with such a key quoted.
func TestProblemWithControlCharactersStaysOneLine(t *testing.T) {
	_, err := Decode([]byte("[federation]\n\"bad\\nkey\" = 1\n\"x\\u001b[31m\" = 2\n"), "ctl.toml")
	var probs *Problems
	if !errors.As(err, &probs) || len(probs.List) != 2 {
		t.Fatalf("want 2 problems, got %v", err)
	}
	if lines := strings.Count(err.Error(), "\n"); lines != 2 {
		t.Errorf("error spans %d lines, want heading + 2:\n%s", lines+1, err)
	}
	if strings.ContainsRune(err.Error(), 0x1b) {
		t.Errorf("error carries a raw escape character: %q", err)
	}
	if !strings.Contains(err.Error(), `"federation.bad\nkey": unknown key`) {
		t.Errorf("key not quoted: %q", err)
	}
}

// Finding each key's line used to scan the document from its start, and
// go-toml compares each new key with every earlier one of its table, so a
// file of many keys took quadratic time (60 000 unknown keys: minutes).
// MaxKeys keys decode in linear time; more are refused before decoding.
func TestManyKeysAreBoundedAndFast(t *testing.T) {
	doc := func(n int) []byte {
		var b strings.Builder
		for i := 0; i < n; i++ {
			fmt.Fprintf(&b, "k%d = %d\n", i, i)
		}
		return []byte(b.String())
	}
	_, err := Decode(doc(MaxKeys), "many.toml")
	var probs *Problems
	if !errors.As(err, &probs) || len(probs.List) != MaxKeys {
		t.Fatalf("want %d unknown keys, got %v", MaxKeys, len(probs.List))
	}
	if last := probs.List[MaxKeys-1]; last.Line != MaxKeys || last.Key != fmt.Sprintf("k%d", MaxKeys-1) {
		t.Errorf("last problem %v, want line %d", last, MaxKeys)
	}

	start := time.Now()
	_, err = Decode(doc(50000), "huge.toml")
	elapsed := time.Since(start)
	if !errors.As(err, &probs) || len(probs.List) != 1 || probs.List[0].Line != MaxKeys+1 || !strings.Contains(err.Error(), "more than 1000 keys") {
		t.Fatalf("got %v", err)
	}
	// Well under a second; the bound leaves room for a slow shared
	// machine but not for the quadratic decode.
	if elapsed > 10*time.Second {
		t.Errorf("refusing 50 000 keys took %v", elapsed)
	}
	var b strings.Builder
	b.WriteString("x = {")
	for i := 0; i <= MaxKeys; i++ {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "k%d = 1", i)
	}
	b.WriteString("}\n")
	if _, err := Decode([]byte(b.String()), "inline.toml"); !strings.Contains(fmt.Sprint(err), "more than 1000 keys") {
		t.Errorf("inline table of %d keys: %v", MaxKeys+1, err)
	}
}

// Lines are right after multi-line strings, comments, CRLF line ends and
// in inline tables.
func TestLinesAcrossMultiLineValues(t *testing.T) {
	doc := "# comment\r\n[federation]\r\nnote = \"\"\"\nline\nline\n\"\"\"\r\nbogus = 1\n[federation.gossip]\nfan_out = 0\nx = { y = 1,\n z = 2 }\n"
	_, err := Decode([]byte(doc), "lines.toml")
	var probs *Problems
	if !errors.As(err, &probs) {
		t.Fatal(err)
	}
	want := map[string]int{"federation.note": 3, "federation.bogus": 7, "federation.gossip.fan_out": 9, "federation.gossip.x": 10}
	if len(probs.List) != len(want) {
		t.Fatalf("got %v", err)
	}
	for _, p := range probs.List {
		if want[p.Key] != p.Line {
			t.Errorf("%v: want line %d", p, want[p.Key])
		}
	}
}

// Windows editors may start a UTF-8 file with a byte order mark; it is not
// content, and refusing it as "invalid character at start of key: U+00EF"
// sends the user looking for a character they cannot see.
func TestByteOrderMarkIsIgnored(t *testing.T) {
	cfg, err := Decode([]byte("\xef\xbb\xbf[federation]\r\nround_interval_secs = 60\r\n"), "bom.toml")
	if err != nil || cfg.Federation.RoundIntervalSecs != 60 {
		t.Fatalf("got %v, %v", cfg.Federation.RoundIntervalSecs, err)
	}
	_, err = Decode([]byte("\xef\xbb\xbf[federation]\nbogus = 1\n"), "bom.toml")
	var probs *Problems
	if !errors.As(err, &probs) || len(probs.List) != 1 || probs.List[0].Line != 2 {
		t.Fatalf("got %v", err)
	}
}

// A key defined twice is named in full, like every other problem.
func TestDuplicateKeyIsNamedInFull(t *testing.T) {
	_, err := Decode([]byte("[federation.gossip]\nfan_out = 1\nfan_out = 2\n"), "dup.toml")
	var probs *Problems
	if !errors.As(err, &probs) || len(probs.List) != 1 || probs.List[0].Key != "federation.gossip.fan_out" || probs.List[0].Line != 3 {
		t.Fatalf("got %v", err)
	}
}
