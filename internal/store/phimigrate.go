package store

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/openvisit/openvisit/internal/phi"
)

// The migration of PHI written before migration 0012: a batched, resumable
// job (`openvisit phi migrate`, and in the background when the API role
// starts) seals each row's plaintext PHI into its ciphertext columns,
// writes a patient's blind indexes, and empties the plaintext. Each batch
// is one transaction, committed before the next, so a crash loses at most
// the batch in flight and a rerun resumes where the last stopped: it
// selects only rows that still hold plaintext. Rows are locked with SKIP
// LOCKED, so several processes may run it at once; reads meanwhile use the
// ciphertext when a row has it and the plaintext when not.

// MigrateBatch is how many rows one transaction of the job seals.
const MigrateBatch = 500

// plainTable is one table the job walks: its row key (what the ciphertext
// is bound to) and how each encrypted column's plaintext reads as text.
type plainTable struct {
	table string
	rowID string // SQL for the row ID text
	key   string // SQL of the row's key, in the UPDATE's WHERE
	cols  []phi.Column
	read  map[string]string // column → SQL reading it as text (default: the column)
	bytes bool              // the plaintext is bytea (attachments)
}

func plainTables() []plainTable {
	byTable := map[string][]phi.Column{}
	var order []string
	for _, c := range phi.Encrypted {
		if byTable[c.Table] == nil {
			order = append(order, c.Table)
		}
		byTable[c.Table] = append(byTable[c.Table], c)
	}
	out := make([]plainTable, 0, len(order))
	for _, t := range order {
		pt := plainTable{table: t, rowID: "id::text", key: "id::text", cols: byTable[t]}
		switch t {
		case "patients":
			pt.read = map[string]string{"date_of_birth": "to_char(date_of_birth, 'YYYY-MM-DD')"}
		case "dev_outbox_attachments":
			pt.rowID = "message_id::text || '/' || n"
			pt.key = pt.rowID
			pt.bytes = true
		}
		out = append(out, pt)
	}
	return out
}

// MigratePHI seals every row's remaining plaintext PHI, batch by batch, and
// returns how many rows it sealed. It stops at the first error; run again,
// it goes on from there.
func MigratePHI(ctx context.Context, db *DB, batch int) (int, error) {
	total := 0
	for _, pt := range plainTables() {
		for {
			var n int
			err := db.Tx(ctx, func(tx pgx.Tx) error {
				var err error
				n, err = migrateBatch(ctx, tx, pt, batch)
				return err
			})
			if err != nil {
				return total, fmt.Errorf("store: phi migrate %s: %w", pt.table, err)
			}
			total += n
			if n < batch {
				break
			}
		}
	}
	return total, nil
}

// migrateBatch seals up to batch rows of pt that still hold plaintext.
func migrateBatch(ctx context.Context, tx pgx.Tx, pt plainTable, batch int) (int, error) {
	sel := []string{pt.rowID}
	var pending []string
	for _, c := range pt.cols {
		expr := c.Column
		if r, ok := pt.read[c.Column]; ok {
			expr = r
		}
		sel = append(sel, expr)
		pending = append(pending, c.Column+" IS NOT NULL")
	}
	rows, err := tx.Query(ctx, `SELECT `+strings.Join(sel, ", ")+` FROM `+pt.table+`
		WHERE `+strings.Join(pending, " OR ")+` LIMIT $1 FOR UPDATE SKIP LOCKED`, batch)
	if err != nil {
		return 0, err
	}
	type row struct {
		id   string
		vals []*string
		data []byte
	}
	var list []row
	for rows.Next() {
		r := row{vals: make([]*string, len(pt.cols))}
		dest := []any{&r.id}
		if pt.bytes {
			dest = append(dest, &r.data)
		} else {
			for i := range r.vals {
				dest = append(dest, &r.vals[i])
			}
		}
		if err := rows.Scan(dest...); err != nil {
			rows.Close()
			return 0, err
		}
		list = append(list, r)
	}
	if err := rows.Err(); err != nil {
		return 0, err
	}
	for _, r := range list {
		if err := sealRow(ctx, tx, pt, r.id, r.vals, r.data); err != nil {
			return 0, err
		}
	}
	return len(list), nil
}

// sealRow seals one row's plaintext columns and empties them; a patient's
// indexes are written from the same values.
func sealRow(ctx context.Context, tx pgx.Tx, pt plainTable, id string, vals []*string, data []byte) error {
	c := cipherOf(tx)
	var sets []string
	args := []any{id}
	for i, col := range pt.cols {
		var sealed []byte
		var err error
		switch {
		case pt.bytes:
			sealed, err = c.Seal(ctx, col, id, data)
		case vals[i] != nil:
			sealed, err = c.SealString(ctx, col, id, *vals[i])
		default:
			continue
		}
		if err != nil {
			return err
		}
		args = append(args, sealed)
		sets = append(sets, fmt.Sprintf("%s = $%d, %s = NULL", col.Cipher, len(args), col.Column))
	}
	if _, err := tx.Exec(ctx, `UPDATE `+pt.table+` SET `+strings.Join(sets, ", ")+` WHERE `+pt.key+` = $1`, args...); err != nil {
		return err
	}
	if pt.table != "patients" {
		return nil
	}
	str := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	key, err := c.CurrentIndexKey(ctx)
	if err != nil {
		return err
	}
	return indexPatient(ctx, tx, key, Patient{ID: id, Name: str(vals[0]), DateOfBirth: str(vals[1]), Email: str(vals[2]), MRN: str(vals[4])})
}

// PlaintextPHIRows counts the rows that still hold plaintext PHI (what
// the job has left to do; 0 once it is done everywhere).
func PlaintextPHIRows(ctx context.Context, db DBTX) (int64, error) {
	var total int64
	for _, pt := range plainTables() {
		var pending []string
		for _, c := range pt.cols {
			pending = append(pending, c.Column+" IS NOT NULL")
		}
		var n int64
		if err := db.QueryRow(ctx, `SELECT count(*) FROM `+pt.table+` WHERE `+strings.Join(pending, " OR ")).Scan(&n); err != nil {
			return 0, fmt.Errorf("store: phi plaintext rows: %w", err)
		}
		total += n
	}
	return total, nil
}
