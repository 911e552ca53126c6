package main

import "github.com/mqim/mqim/attachment"

// attachParts holds the attachment store and its sweeper.
type attachParts struct {
	store *attachment.Store
}

// openAttachments opens the attachment store under the data directory.
func (m *Main) openAttachments() error { return nil }

// attachStarted runs once the HTTP listener is bound (the default public
// URL derives from it).
func (m *Main) attachStarted() {}

// closeAttachments stops the sweeper.
func (m *Main) closeAttachments() {}
