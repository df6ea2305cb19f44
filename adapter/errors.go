package adapter

import (
	"errors"
	"strconv"
	"unicode"
)

// Sentinel errors; wrapped with the file and tensor at fault.
var (
	// ErrNonFinite marks a tensor holding NaN or ±Inf.
	ErrNonFinite = errors.New("non-finite value")
	// ErrCorrupt marks a file whose bytes do not form a valid update.
	ErrCorrupt = errors.New("corrupt update file")
)

// printable returns a name from a file as it is, or quoted if it holds
// anything but printable characters (a newline, a terminal escape), so an
// error about it stays one clean line.
func printable(s string) string {
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return strconv.Quote(s)
		}
	}
	return s
}
