// Package compliance keeps the compliance pack in docs/compliance true by
// construction: the PHI inventory is rendered from internal/phi's one
// declaration of every column (Inventory; a test fails when the file in
// docs/compliance differs), and the safeguard mapping names tests and
// config keys that a test checks still exist (mapping_test.go).
//
// Regenerate the inventory after changing the declaration:
//
//	go test ./internal/compliance -run TestPHIInventoryCurrent -update
package compliance

import (
	"bytes"
	"fmt"
	"slices"
	"strings"

	"github.com/openvisit/openvisit/internal/phi"
)

// InventoryPath is the generated inventory, relative to the repository root.
const InventoryPath = "docs/compliance/phi-inventory.md"

// Beyond the database columns: where PHI is also stored, processed or
// transmitted. These are not columns, so they are stated here, beside the
// generator, where a reviewer of a change to them looks.
var elsewhere = [][3]string{
	{"Consult recordings (audio and video of a visit)",
		"S3 objects, AES-256-GCM streaming AEAD under a per-recording data key wrapped by a KEK (recording/FORMAT.md); ciphertext parts in the recorder's spool; copies in backup archives",
		"recorder and media node memory (plaintext media never touches disk); playback decrypts in the API process and streams over HTTPS to an admin"},
	{"Live call media", "not stored (only the consented recording above)",
		"DTLS-SRTP between browsers and the media node; decrypted in the media node's memory to forward"},
	{"Backups (`openvisit backup`)",
		"an age-encrypted archive: the database dump (PHI columns as ciphertext), recording objects (ciphertext), key escrow sealed again to the recovery key",
		"wherever the operator stores archives; restore decrypts on the restoring host"},
	{"Logs and the audit trail", "opaque IDs only: no PHI by design (STYLE: errors and logs carry IDs); IP addresses and user agents as listed above",
		"the log pipeline the operator runs"},
}

// Inventory renders the PHI inventory from phi.Columns.
func Inventory() []byte {
	var b bytes.Buffer
	b.WriteString(`# PHI inventory

<!-- Generated from internal/phi's declaration (phi.Columns) by internal/compliance.
     Do not edit: run ` + "`go test ./internal/compliance -run TestPHIInventoryCurrent -update`" + `. -->

Every database column is classified once, in ` + "`internal/phi`" + ` (` + "`phi.Columns`" + `); a column
that is not classified fails ` + "`TestEveryColumnClassified`" + `, and this file is checked against the
declaration by ` + "`TestPHIInventoryCurrent`" + `.

## PHI in the database

| kind | table.column | stored as | blind indexes | stored | processed | transmitted | note |
|---|---|---|---|---|---|---|---|
`)
	cols := slices.Clone(phi.Columns)
	slices.SortStableFunc(cols, func(a, c phi.Column) int {
		return strings.Compare(string(a.Kind)+a.Table+"."+a.Column, string(c.Kind)+c.Table+"."+c.Column)
	})
	for _, c := range cols {
		if !c.Kind.IsPHI() {
			continue
		}
		as := "plaintext"
		if c.Encrypted() {
			as = "AES-256-GCM ciphertext in `" + c.Cipher + "`"
		}
		var idx []string
		for _, i := range c.Indexes {
			idx = append(idx, string(i))
		}
		fmt.Fprintf(&b, "| %s | `%s.%s` | %s | %s | %s | %s | %s | %s |\n", c.Kind, c.Table, c.Column, as,
			cell(strings.Join(idx, ", ")), cell(c.Stored), cell(c.Processed), cell(c.Transmitted), cell(c.Why))
	}
	b.WriteString("\n## Derived columns (not PHI themselves)\n\n| table.column | kind | why |\n|---|---|---|\n")
	for _, c := range phi.Columns {
		if c.Kind == phi.Ciphertext || c.Kind == phi.BlindIndex {
			fmt.Fprintf(&b, "| `%s.%s` | %s | %s |\n", c.Table, c.Column, c.Kind, cell(c.Why))
		}
	}
	b.WriteString("\n## PHI outside the database\n\n| what | stored | processed and transmitted |\n|---|---|---|\n")
	for _, e := range elsewhere {
		fmt.Fprintf(&b, "| %s | %s | %s |\n", e[0], e[1], e[2])
	}
	n := 0
	for _, c := range phi.Columns {
		if !c.Kind.IsPHI() && c.Kind != phi.Ciphertext && c.Kind != phi.BlindIndex {
			n++
		}
	}
	fmt.Fprintf(&b, "\nThe other %d columns hold no PHI; `internal/phi` gives the reason for each.\n", n)
	return b.Bytes()
}

// cell makes s safe inside a markdown table cell.
func cell(s string) string {
	if s == "" {
		return "—"
	}
	return strings.ReplaceAll(strings.ReplaceAll(s, "|", "\\|"), "\n", " ")
}
