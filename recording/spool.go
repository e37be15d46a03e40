package recording

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/openvisit/openvisit/internal/ids"
)

// Spool is a bounded directory of ciphertext parts on their way to object
// storage. Every part passes through it: a chunk's ciphertext is appended
// to the file of its current part as it is sealed, and a full part (or the
// last one) is queued for upload and removed once stored. So an outage only
// makes it fill — when it is full, writers wait (and the recorder's queue
// drops media, counted) until uploads drain it — and a crash leaves on disk
// what was sealed but not yet uploaded, for recovery to upload on restart
// (recover.go). It never holds plaintext.
//
// A part file is named <recording>.<chunk seq>.<part number>.part.
type Spool struct {
	dir  string
	max  int64
	used atomic.Int64
}

// NewSpool opens dir (mode 0700) with room for max bytes. Parts left by a
// previous process stay (and count as used) until recovery has uploaded
// them or found them stale (Service.Start).
func NewSpool(dir string, max int64) (*Spool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("recording: spool: %w", err)
	}
	s := &Spool{dir: dir, max: max}
	for _, f := range s.leftovers() {
		s.used.Add(f.size)
	}
	return s, nil
}

// Used returns the bytes spooled now.
func (s *Spool) Used() int64 { return s.used.Load() }

// reserve takes room for n bytes, waiting while the spool is full, or fails
// when cancel closes first.
func (s *Spool) reserve(n int64, cancel <-chan struct{}) error {
	for {
		u := s.used.Load()
		if u+n <= s.max {
			if s.used.CompareAndSwap(u, u+n) {
				return nil
			}
			continue
		}
		select {
		case <-cancel:
			return errSpoolFull
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (s *Spool) release(n int64) { s.used.Add(-n) }

// partPath is the file of part n (from 1) of chunk seq of recording rec.
func (s *Spool) partPath(rec string, seq, n int) string {
	return filepath.Join(s.dir, fmt.Sprintf("%s.%d.%d.part", rec, seq, n))
}

// create opens a new part file for appending.
func (s *Spool) create(rec string, seq, n int) (*os.File, string, error) {
	p := s.partPath(rec, seq, n)
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|os.O_APPEND, 0o600)
	if err != nil {
		return nil, "", fmt.Errorf("recording: spool create: %w", err)
	}
	return f, p, nil
}

func (s *Spool) remove(path string, n int64) {
	if err := os.Remove(path); err == nil || errors.Is(err, os.ErrNotExist) {
		s.used.Add(-n)
	}
}

// spoolFile is a part file found in the spool.
type spoolFile struct {
	path     string
	rec      string
	seq, num int
	size     int64
}

// leftovers lists the part files in the spool, by recording, chunk and part
// number.
func (s *Spool) leftovers() []spoolFile {
	paths, _ := filepath.Glob(filepath.Join(s.dir, "*.part"))
	var out []spoolFile
	for _, p := range paths {
		f, ok := parseSpoolName(filepath.Base(p))
		if !ok {
			continue
		}
		info, err := os.Stat(p)
		if err != nil {
			continue
		}
		f.path, f.size = p, info.Size()
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.rec != b.rec {
			return a.rec < b.rec
		}
		if a.seq != b.seq {
			return a.seq < b.seq
		}
		return a.num < b.num
	})
	return out
}

// parseSpoolName reads <recording>.<seq>.<part>.part.
func parseSpoolName(name string) (spoolFile, bool) {
	f := strings.Split(strings.TrimSuffix(name, ".part"), ".")
	if len(f) != 3 || !ids.Valid(f[0]) {
		return spoolFile{}, false
	}
	seq, err1 := strconv.Atoi(f[1])
	num, err2 := strconv.Atoi(f[2])
	if err1 != nil || err2 != nil || seq < 0 || num < 1 || num > 10000 {
		return spoolFile{}, false
	}
	return spoolFile{rec: f[0], seq: seq, num: num}, true
}

var errSpoolFull = errors.New("recording: spool full and the chunk was abandoned")
