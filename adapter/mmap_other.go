//go:build !linux

package adapter

import (
	"errors"
	"os"
)

// mapFile is Linux-only for now: elsewhere ReadFileMapped reads the file
// into memory, with the same checks and results.
func mapFile(*os.File, int) ([]byte, error) { return nil, errors.ErrUnsupported }

func unmapFile([]byte) error { return nil }
