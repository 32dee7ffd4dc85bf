package jobs

import (
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"
)

// NATSAuth is how the service proves itself to an external NATS server, and checks the
// server: what a NATS server configured with authorization and TLS asks of its clients. Each
// file is read at connect time (a mounted Secret).
type NATSAuth struct {
	User     string // with Password: user/password authorization (or put them in the URL)
	Password string
	NKey     string // a file with an NKey seed (SU...): NKey authorization, the seed never leaves the process
	Creds    string // a .creds file (a user JWT and its seed): decentralised JWT authorization
	CA       string // the CA that signed the server's certificate (PEM); turns TLS on
	Cert     string // a client certificate (PEM), for servers that verify clients (mTLS); with Key
	Key      string
}

func (a NATSAuth) options() ([]nats.Option, error) {
	var opts []nats.Option
	if (a.User == "") != (a.Password == "") {
		return nil, errors.New("NATS: --nats-user and --nats-password go together")
	}
	if a.User != "" {
		opts = append(opts, nats.UserInfo(a.User, a.Password))
	}
	if a.NKey != "" {
		o, err := nats.NkeyOptionFromSeed(a.NKey)
		if err != nil {
			return nil, fmt.Errorf("NATS NKey seed: %w", err)
		}
		opts = append(opts, o)
	}
	if a.Creds != "" {
		opts = append(opts, nats.UserCredentials(a.Creds))
	}
	if a.CA != "" {
		opts = append(opts, nats.RootCAs(a.CA))
	}
	if (a.Cert == "") != (a.Key == "") {
		return nil, errors.New("NATS: --nats-cert and --nats-key go together")
	}
	if a.Cert != "" {
		opts = append(opts, nats.ClientCert(a.Cert, a.Key))
	}
	return opts, nil
}

// refused reports whether the server refused the credentials (or their absence): waiting for
// it will not help.
func refused(err error) bool {
	if err == nil {
		return false
	}
	return errors.Is(err, nats.ErrAuthorization) || errors.Is(err, nats.ErrAuthExpired) || errors.Is(err, nats.ErrAuthRevoked) ||
		strings.Contains(strings.ToLower(err.Error()), "authorization violation")
}
