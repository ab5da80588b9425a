package server

import (
	"crypto/tls"
	"fmt"
	"net/http"

	"github.com/junctionhq/junction/internal/platform/config"
)

// protocols are the HTTP versions Junction serves. Without TLS that is
// HTTP/1.1 and cleartext HTTP/2 with prior knowledge (h2c), which the AWS
// SDK for JavaScript speaks by default; with TLS it is HTTP/1.1 and HTTP/2,
// chosen by ALPN. Upgrading an HTTP/1.1 connection to h2c is not offered:
// no SDK asks for it.
func protocols() *http.Protocols {
	p := new(http.Protocols)
	p.SetHTTP1(true)
	p.SetHTTP2(true)
	p.SetUnencryptedHTTP2(true)
	return p
}

// tlsConfig loads the configured certificate, or returns nil when TLS is
// not configured.
func tlsConfig(c *config.TLS) (*tls.Config, error) {
	if c == nil {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("server.tls: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// serve serves s.http on s.ln, over TLS when it is configured, or the
// lean HTTP/1.1 server when server.http1 picks it.
func (s *Server) serve() error {
	if s.lean != nil {
		return s.lean.Serve(s.ln)
	}
	if s.http.TLSConfig != nil {
		// ServeTLS adds "h2" and "http/1.1" to the ALPN protocols.
		return s.http.ServeTLS(s.ln, "", "")
	}
	return s.http.Serve(s.ln)
}
