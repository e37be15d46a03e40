package store

import "time"

// Env is what every domain service stands on: the one database and the
// clock its rules read. A service embeds it (directly, or in its Params
// beside its own settings), so the wiring is one value and tests inject
// time through Clock. The zero Clock reads the system clock.
type Env struct {
	DB    *DB
	Clock func() time.Time
}

// Now is the time by the Env's clock.
func (e Env) Now() time.Time {
	if e.Clock == nil {
		return time.Now()
	}
	return e.Clock()
}
