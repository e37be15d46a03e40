package db

import (
	"errors"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// Unreachable reports whether err means that PostgreSQL could not be
// reached or could not serve at all — a connection refused or cut, a
// connect or I/O timeout, a server shutting down or out of connections —
// as opposed to an answer about the request (a constraint violation, bad
// input, a missing row). Callers answer the first kind "try again
// shortly" (HTTP 503) and the second by what it says.
func Unreachable(err error) bool {
	if err == nil {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return unavailableState(pgErr.Code)
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	switch {
	case errors.As(err, &connectErr), pgconn.Timeout(err), errors.As(err, &netErr):
		return true
	case errors.Is(err, pgconn.ErrConnClosed), errors.Is(err, io.ErrUnexpectedEOF):
		// The connection died under the query (a restart, a failover, a
		// terminated backend).
		return true
	}
	return false
}

// unavailableState reports the SQLSTATEs of a server that cannot serve
// now: connection exceptions (class 08), too many connections, and the
// shutdown and startup states (57P01–57P03, 57P05 idle session timeout).
func unavailableState(code string) bool {
	switch code {
	case "53300", "57P01", "57P02", "57P03", "57P05":
		return true
	}
	return strings.HasPrefix(code, "08")
}

// BadText reports whether PostgreSQL refused a value as text it cannot
// hold (NUL, or bytes invalid in the database encoding): the request's
// fault, not the server's. Input checks should refuse such text first;
// this keeps a missed path at 400 instead of 500.
func BadText(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "22021" || pgErr.Code == "22P05")
}
