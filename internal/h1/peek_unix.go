//go:build unix

package h1

import (
	"net"
	"syscall"
)

// idleProbe looks at an idle connection without waiting and without
// consuming anything: the upstream has closed it (EOF), or sent bytes
// nobody asked for, or neither. http.Transport learns the same from a read
// it keeps pending on every idle connection; this asks once, before reuse.
type idleProbe struct {
	raw syscall.RawConn
	buf [1]byte
	n   int
	err error
	fn  func(fd uintptr) bool
}

func newIdleProbe(nc net.Conn) *idleProbe {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	p := &idleProbe{raw: raw}
	p.fn = p.peek
	return p
}

func (p *idleProbe) peek(fd uintptr) bool {
	p.n, _, p.err = syscall.Recvfrom(int(fd), p.buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	return true // never wait for the descriptor to be readable
}

// quiet reports whether the connection has nothing to read and is open.
func (p *idleProbe) quiet() bool {
	if p == nil {
		return true
	}
	if err := p.raw.Read(p.fn); err != nil {
		return false
	}
	return p.err == syscall.EAGAIN || p.err == syscall.EWOULDBLOCK
}
