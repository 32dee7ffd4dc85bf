package httpapi

import (
	"errors"
	"net"
	"os"
)

// Listener wraps ln so that a connection whose client stopped reading is let go entirely.
// When a write times out (WriteTimeout), the server closes the connection; by default the
// kernel would then keep what was still queued for the client (megabytes) and keep trying to
// deliver it for minutes. Here, once a write has timed out, closing the connection resets it
// and drops that data. Connections that never time out close as usual, their data delivered.
func Listener(ln net.Listener) net.Listener { return dropOnWriteTimeout{ln} }

type dropOnWriteTimeout struct{ net.Listener }

func (l dropOnWriteTimeout) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &dropConn{Conn: c}, nil
}

type dropConn struct{ net.Conn }

func (c *dropConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		if tc, ok := c.Conn.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
	}
	return n, err
}
