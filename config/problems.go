package config

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
)

// ErrInvalid is wrapped by every error Decode, Load and Validate return for
// a config that cannot be used (syntax, unknown keys, wrong types or values).
var ErrInvalid = errors.New("invalid federation config")

// Problem is one thing wrong with a config, attached to the dotted key at
// fault (e.g. "federation.privacy.epsilon"). Line is the 1-based line in the
// file when the problem comes from decoding a document, 0 otherwise.
type Problem struct {
	Key     string `json:"key"`
	Message string `json:"message"`
	Line    int    `json:"line,omitempty"`
}

func (p Problem) String() string {
	var b strings.Builder
	if p.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", p.Line)
	}
	if p.Key != "" {
		b.WriteString(displayKey(p.Key))
		b.WriteString(": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// displayKey quotes a key holding anything but printable characters: a
// quoted TOML key may contain a newline or a terminal escape, and a problem
// must stay one line.
func displayKey(k string) string {
	for _, r := range k {
		if !unicode.IsPrint(r) {
			return strconv.Quote(k)
		}
	}
	return k
}

// Problems is the error type of Validate, Decode and Load: every problem
// found, not only the first, so a user fixes a file in one pass.
type Problems struct {
	// File names the document the problems come from ("" for a Config
	// built in code).
	File string
	List []Problem
}

func (p *Problems) add(key, format string, args ...any) {
	p.List = append(p.List, Problem{Key: key, Message: fmt.Sprintf(format, args...)})
}

func (p *Problems) addAt(line int, key, format string, args ...any) {
	p.List = append(p.List, Problem{Key: key, Message: fmt.Sprintf(format, args...), Line: line})
}

// Error lists every problem, one per line after a heading line.
func (p *Problems) Error() string {
	var b strings.Builder
	if p.File != "" {
		b.WriteString(p.File)
		b.WriteString(": ")
	}
	if len(p.List) == 1 {
		b.WriteString(p.List[0].String())
		return b.String()
	}
	fmt.Fprintf(&b, "%d problems", len(p.List))
	for _, pr := range p.List {
		b.WriteString("\n  ")
		b.WriteString(pr.String())
	}
	return b.String()
}

// Unwrap makes errors.Is(err, ErrInvalid) hold for every Problems value.
func (p *Problems) Unwrap() error { return ErrInvalid }

// Keys returns the keys named by the problems, in order, for tests and
// tools that want to check which keys are at fault.
func (p *Problems) Keys() []string {
	keys := make([]string, len(p.List))
	for i, pr := range p.List {
		keys[i] = pr.Key
	}
	return keys
}

// orNil returns nil when nothing was found, so callers can return it directly.
func (p *Problems) orNil() error {
	if len(p.List) == 0 {
		return nil
	}
	return p
}
