package main

import (
	"context"
	"fmt"
	"io"

	"github.com/openvisit/openvisit/internal/store"
)

const phiUsage = `usage: openvisit phi COMMAND [--config FILE]

  migrate   seal the PHI that rows written before field encryption (migration 0012)
            still hold in plaintext, 500 rows per transaction; safe to stop and
            rerun, and to run while the server runs (which does the same at start)
  status    count the rows that still hold plaintext PHI`

// phiCmd runs `openvisit phi …`: the field encryption's operator tools
// (docs/DESIGN.md decision 13).
func phiCmd(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "migrate" && args[0] != "status") {
		return usageError(phiUsage)
	}
	fs, cfgPath := configFlags("phi "+args[0], stderr)
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usageError(phiUsage)
	}
	ctx := context.Background()
	cfg, pool, err := configAndDatabase(ctx, *cfgPath, applyMigrations)
	if err != nil {
		return err
	}
	defer pool.Close()
	if args[0] == "status" {
		n, err := store.PlaintextPHIRows(ctx, pool)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%d rows still hold plaintext PHI\n", n)
		return nil
	}
	st, err := openStore(cfg, pool, true)
	if err != nil {
		return err
	}
	n, err := store.MigratePHI(ctx, st, store.MigrateBatch)
	fmt.Fprintf(stdout, "sealed %d rows\n", n)
	if err != nil {
		return fmt.Errorf("phi migrate (rerun to resume): %w", err)
	}
	left, err := store.PlaintextPHIRows(ctx, pool)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%d rows still hold plaintext PHI\n", left)
	return nil
}
