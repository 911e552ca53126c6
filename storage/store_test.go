package storage

import (
	"testing"

	"github.com/mqim/mqim/chat"
	"github.com/mqim/mqim/chat/storetest"
)

// The contract shared with every engine (chat/storetest).
func TestStoreContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) chat.Store { return newTestDB(t) })
	storetest.RunReopen(t, func(t *testing.T) func(t *testing.T) chat.Store {
		dir := t.TempDir()
		return func(t *testing.T) chat.Store { return openTestDB(t, dir) }
	})
}
