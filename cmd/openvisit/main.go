// Command openvisit is the one OpenVisit binary: every role (api, media,
// recorder) and every operator tool is a subcommand.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

const usage = `openvisit — telemedicine video visits

Usage:
  openvisit serve   [--config FILE] [--addr HOST:PORT] [--roles api,media,recorder] [--web-dir DIR]
  openvisit migrate [--config FILE]
  openvisit keys    generate|list|rotate|rewrap|retire KEK_ID [--config FILE]
  openvisit phi     migrate|status [--config FILE]   (seal PHI rows written before field encryption)
  openvisit loadtest --spawn [--sweep] | --url URL --signing-key FILE | --clients-only --target URL --signing-key FILE [--visits N] [--duration D] [--json]
  openvisit user create --role admin|provider --email ADDRESS [--name NAME] [--if-no-admin]
  openvisit user reset-mfa --email ADDRESS --reason TEXT
  openvisit scim token create --idp NAME | list | revoke --id CLIENT_ID
  openvisit webhook add --url URL --kinds KIND,… [--phi] | list | disable --id ID | log [--id ID]
  openvisit client create --name NAME --keys FILE --scopes "SCOPE ..." | list | revoke --id CLIENT_ID   (EHR clients of FHIR)
  openvisit alerts ack ALERT_ID --reason TEXT
  openvisit break-glass review GRANT_ID --reason TEXT
  openvisit audit verify [--config FILE] [--public-key BASE64]
  openvisit audit record-restore --backup-id LABEL [--config FILE]   (after a point-in-time restore)
  openvisit backup  --out FILE [--config FILE] [--recipients FILE] [--recovery-recipients FILE]
  openvisit restore --from FILE --identity FILE --recovery-identity FILE [--config FILE]
  openvisit doctor  [--config FILE] [--roles ROLES]   (what the media node advertises; can browsers reach it)

An admin cannot acknowledge an alert about themselves, review their own
break-glass grant or reset their own sign-in; another admin does, or (with one
admin) the operator with the commands above, audited as the operator.

Configuration comes from defaults, then the YAML file, then OPENVISIT_*
environment variables (see README.md).
`

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "openvisit:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	switch args[0] {
	case "serve":
		return serve(args[1:], stdout, stderr)
	case "migrate":
		return migrate(args[1:], stderr)
	case "user":
		return userCmd(args[1:], stdout, stderr)
	case "loadtest":
		return loadtestCmd(args[1:], stdout, stderr)
	case "keys":
		return keysCmd(args[1:], stdout, stderr)
	case "phi":
		return phiCmd(args[1:], stdout, stderr)
	case "audit":
		return auditCmd(args[1:], stdout, stderr)
	case "backup":
		return backupCmd(args[1:], stdout, stderr)
	case "restore":
		return restoreCmd(args[1:], stdout, stderr)
	case "doctor":
		return doctorCmd(args[1:], stdout, stderr)
	case "scim":
		return scimCmd(args[1:], stdout, stderr)
	case "webhook":
		return webhookCmd(args[1:], stdout, stderr)
	case "client":
		return clientCmd(args[1:], stdout, stderr)
	case "alerts":
		return alertsCmd(args[1:], stdout, stderr)
	case "break-glass":
		return breakGlassCmd(args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

// nowFunc is the clock of the commands (a variable for tests).
var nowFunc = time.Now
