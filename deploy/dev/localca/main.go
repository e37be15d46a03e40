// Command localca keeps the private CA and the server certificate that the
// local PostgreSQL and MinIO serve (deploy/services.sh; the Compose file's
// certs step): see certs.LocalCA.
//
//	go run ./deploy/dev/localca -dir DIR [-hosts localhost,127.0.0.1,::1]
//
// It prints "changed" when it wrote a new server certificate (the servers
// must then load it) and "kept" otherwise.
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/openvisit/openvisit/internal/certs"
)

func main() {
	dir := flag.String("dir", "", "directory of ca.crt, ca.key, server.crt, server.key")
	hosts := flag.String("hosts", "localhost,127.0.0.1,::1", "comma-separated names and IPs the server certificate covers")
	flag.Parse()
	if *dir == "" || flag.NArg() != 0 {
		flag.Usage()
		os.Exit(2)
	}
	changed, err := certs.LocalCA(*dir, strings.Split(*hosts, ","), time.Now())
	if err != nil {
		fmt.Fprintln(os.Stderr, "localca:", err)
		os.Exit(1)
	}
	if changed {
		fmt.Println("changed")
	} else {
		fmt.Println("kept")
	}
}
