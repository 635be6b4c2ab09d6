//go:build !unix

package h1

import "net"

// idleProbe is not available here: a closed idle connection is found when
// used (and the request sent again, see RoundTrip).
type idleProbe struct{}

func newIdleProbe(net.Conn) *idleProbe { return nil }

func (p *idleProbe) quiet() bool { return true }
