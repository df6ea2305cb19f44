// Package atomicfile writes files so that a crash at any moment leaves
// either the old content or the new, never a torn file: adapters, the
// file-drop bridge's outbox and the demo's results all go through it.
package atomicfile
