// Command ocitestbed is test-bed code for ocisource, not product code. It runs
// the OCI registry with the referrers API (go-containerregistry's registry
// behind TLS, mTLS, htpasswd or bearer-token auth) and the Docker token server
// that both this registry and Debian's distribution 2.8 use for bearer auth.
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "registry":
		err = runRegistry(os.Args[2:])
	case "token-server":
		err = runTokenServer(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "ocitestbed %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: ocitestbed registry|token-server [flags] (-h for flags)")
	os.Exit(2)
}
