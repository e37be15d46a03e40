package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/openvisit/openvisit/internal/store"
)

const phiUsage = `usage: openvisit phi COMMAND [--config FILE]

  migrate   seal the PHI that rows written before field encryption (migration 0012)
            still hold in plaintext, 500 rows per transaction; safe to stop and
            rerun, and to run while the server runs (which does the same at start)
  reindex   replace the blind-index key (on suspected compromise): make a new index
            key, which new writes use at once, recompute every patient's indexes
            under it, 500 patients per transaction, then delete the old key; search
            works throughout; safe to stop (^C) and rerun, which resumes (audited)
  status    count the rows that still hold plaintext PHI, list the index keys and
            the patients a re-index has left`

// phiCommands are the subcommands of `openvisit phi`.
var phiCommands = []string{"migrate", "reindex", "status"}

// phiCmd runs `openvisit phi …`: the field encryption's operator tools
// (docs/DESIGN.md decision 13).
func phiCmd(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || !slices.Contains(phiCommands, args[0]) {
		return usageError(phiUsage)
	}
	fs, cfgPath := configFlags("phi "+args[0], stderr)
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usageError(phiUsage)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	cfg, pool, err := configAndDatabase(ctx, *cfgPath, applyMigrations)
	if err != nil {
		return err
	}
	defer pool.Close()
	if args[0] == "status" {
		return phiStatus(ctx, pool, stdout)
	}
	st, err := openStore(cfg, pool, true)
	if err != nil {
		return err
	}
	if args[0] == "reindex" {
		return phiReindex(ctx, st, stdout)
	}
	n, err := store.MigratePHI(ctx, st, store.MigrateBatch)
	fmt.Fprintf(stdout, "sealed %d rows\n", n)
	if err != nil {
		return fmt.Errorf("phi migrate (rerun to resume): %w", err)
	}
	return phiStatus(ctx, pool, stdout)
}

// phiReindex runs the blind-index key replacement, printing its progress.
func phiReindex(ctx context.Context, st *store.DB, stdout io.Writer) error {
	progress := func(done int) {
		if done%(20*store.ReindexBatch) == 0 {
			fmt.Fprintf(stdout, "re-indexed %d patients…\n", done)
		}
	}
	res, err := store.ReindexPatients(ctx, st, operatorName(), store.ReindexBatch, progress)
	fmt.Fprintf(stdout, "re-indexed %d patients under index key %d\n", res.Patients, res.Key)
	if err != nil {
		return fmt.Errorf("phi reindex (rerun to resume): %w", err)
	}
	fmt.Fprintf(stdout, "retired index keys: %v\n", res.Retired)
	return phiStatus(ctx, st.Pool(), stdout)
}

// phiStatus prints what the migration and the re-index have left.
func phiStatus(ctx context.Context, pool *pgxpool.Pool, stdout io.Writer) error {
	n, err := store.PlaintextPHIRows(ctx, pool)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%d rows still hold plaintext PHI\n", n)
	ix, err := store.PHIIndexStatus(ctx, pool)
	if err != nil {
		return err
	}
	for i, k := range ix.Keys {
		role := "retiring"
		if i == len(ix.Keys)-1 {
			role = "current"
		}
		fmt.Fprintf(stdout, "index key %d (generation %s, %s, KEK %s, made %s): %d patients\n",
			k.ID, k.Generation, role, k.KEK, k.CreatedAt.UTC().Format("2006-01-02 15:04Z"), k.Patients)
	}
	if ix.Reindexing() {
		fmt.Fprintf(stdout, "re-index under way: %d patients left; run `openvisit phi reindex` to finish it\n", ix.Left)
	}
	return nil
}
