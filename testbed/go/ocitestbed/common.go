package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// htpasswd maps user names to bcrypt hashes. Only bcrypt is accepted, as in
// distribution, so one htpasswd file serves both registries.
type htpasswd map[string][]byte

func loadHtpasswd(path string) (htpasswd, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	entries := htpasswd{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		user, hash, ok := strings.Cut(line, ":")
		if !ok || !strings.HasPrefix(hash, "$2") {
			return nil, fmt.Errorf("%s: entry for %q is not user:bcrypt-hash", path, user)
		}
		entries[user] = []byte(hash)
	}
	return entries, sc.Err()
}

func (h htpasswd) valid(user, pass string) bool {
	hash, known := h[user]
	return known && bcrypt.CompareHashAndPassword(hash, []byte(pass)) == nil
}

func loadCertPool(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no PEM certificate found", path)
	}
	return pool, nil
}

// serve listens on addr (TLS when certFile is set, requiring client
// certificates signed by clientCA when that is set) and serves h until killed.
func serve(addr, certFile, keyFile, clientCA string, h http.Handler) error {
	srv := &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 30 * time.Second}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	if certFile == "" {
		if clientCA != "" {
			return fmt.Errorf("--client-ca needs --tls-cert and --tls-key")
		}
		fmt.Fprintf(os.Stderr, "listening on http://%s\n", ln.Addr())
		return srv.Serve(ln)
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if clientCA != "" {
		pool, err := loadCertPool(clientCA)
		if err != nil {
			return err
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	srv.TLSConfig = cfg
	fmt.Fprintf(os.Stderr, "listening on https://%s (client certificates required: %v)\n", ln.Addr(), clientCA != "")
	return srv.ServeTLS(ln, certFile, keyFile)
}
