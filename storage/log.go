package storage

import (
	"fmt"
	"strings"

	"github.com/rs/zerolog"
)

// badgerLogger adapts zerolog to badger.Logger, level for level. Badger's
// info lines (table flushes, compactions, replay progress) are chatty: the
// logger given to Open has its own level (storage.log_level, default warn).
type badgerLogger struct{ l zerolog.Logger }

func (b badgerLogger) Errorf(format string, args ...any) {
	b.log(b.l.Error(), format, args)
}

func (b badgerLogger) Warningf(format string, args ...any) {
	b.log(b.l.Warn(), format, args)
}

func (b badgerLogger) Infof(format string, args ...any) {
	b.log(b.l.Info(), format, args)
}

func (b badgerLogger) Debugf(format string, args ...any) {
	b.log(b.l.Debug(), format, args)
}

// log formats only when the level is enabled (e is nil otherwise) and trims
// the trailing newlines many Badger format strings carry.
func (b badgerLogger) log(e *zerolog.Event, format string, args []any) {
	if e == nil {
		return
	}
	e.Str("engine", "badger").Msg(strings.TrimSpace(fmt.Sprintf(format, args...)))
}
