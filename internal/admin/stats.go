package admin

import (
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/authgateway/authgateway/internal/proxy"
)

// Window is how far back the dashboard's traffic goes, in one-minute
// buckets.
const (
	Window  = 15 * time.Minute
	buckets = int(Window / time.Minute)
	// recentDenials is how many denials the dashboard lists.
	recentDenials = 50
)

// Stats keeps what the dashboard shows of the traffic: requests and
// denials per route and minute over the last Window, and the latest
// denials. It sits on the request path: a request costs a map read and
// two atomic adds; a denial also a short lock.
type Stats struct {
	routes sync.Map // route name -> *routeStats
	mu     sync.Mutex
	recent []Denial // ring, newest at next-1
	next   int
}

// Denial is one refused request as the dashboard lists it: never the
// path, query, headers or credential, only what the gateway decided.
type Denial struct {
	Time     time.Time
	Route    string
	ClientIP netip.Addr
	Method   string
	Status   int
	Reason   string
}

type routeStats struct {
	mu sync.Mutex // taken only to start a new minute in a bucket
	b  [buckets]bucket
}

type bucket struct {
	minute atomic.Int64
	total  atomic.Int64
	denied atomic.Int64
}

// NewStats returns empty stats.
func NewStats() *Stats { return &Stats{recent: make([]Denial, 0, recentDenials)} }

// Observe counts one request (proxy.Options.Observer).
func (s *Stats) Observe(ev *proxy.Event) {
	route := ev.Route
	if route == "" {
		route = "(no route)"
	}
	v, ok := s.routes.Load(route)
	if !ok {
		v, _ = s.routes.LoadOrStore(route, &routeStats{})
	}
	denied := isDenial(ev)
	v.(*routeStats).add(ev.Start.Unix()/60, denied)
	if denied {
		s.deny(Denial{Time: ev.Start, Route: route, ClientIP: ev.ClientIP, Method: ev.Method, Status: ev.Status, Reason: ev.Reason})
	}
}

// isDenial: the gateway refused the request (an upstream's own 4xx, and
// its failures, are not denials).
func isDenial(ev *proxy.Event) bool {
	switch ev.Outcome {
	case proxy.OutcomeAllowed, proxy.OutcomePublic, proxy.OutcomeEndpoint, proxy.OutcomeCORSPreflight:
		return false
	}
	return ev.Status >= 400
}

func (r *routeStats) add(minute int64, denied bool) {
	b := &r.b[minute%int64(buckets)]
	if b.minute.Load() != minute {
		r.mu.Lock()
		if b.minute.Load() != minute {
			b.total.Store(0)
			b.denied.Store(0)
			b.minute.Store(minute)
		}
		r.mu.Unlock()
	}
	b.total.Add(1)
	if denied {
		b.denied.Add(1)
	}
}

func (s *Stats) deny(d Denial) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.recent) < recentDenials {
		s.recent = append(s.recent, d)
	} else {
		s.recent[s.next] = d
	}
	s.next = (s.next + 1) % recentDenials
}

// Recent returns the latest denials, newest first.
func (s *Stats) Recent() []Denial {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Denial, 0, len(s.recent))
	for i := range len(s.recent) {
		j := (s.next - 1 - i + 2*recentDenials) % recentDenials
		if j < len(s.recent) {
			out = append(out, s.recent[j])
		}
	}
	return out
}

// Series is one route's requests and denials per minute, oldest first,
// the last one the current minute.
type Series struct {
	Route  string
	Total  [buckets]int64
	Denied [buckets]int64
}

// Traffic returns every route's series up to now.
func (s *Stats) Traffic(now time.Time) []Series {
	cur := now.Unix() / 60
	var out []Series
	s.routes.Range(func(k, v any) bool {
		r := v.(*routeStats)
		se := Series{Route: k.(string)}
		for i := range buckets {
			minute := cur - int64(buckets-1-i)
			b := &r.b[minute%int64(buckets)]
			if b.minute.Load() == minute {
				se.Total[i], se.Denied[i] = b.total.Load(), b.denied.Load()
			}
		}
		out = append(out, se)
		return true
	})
	slices.SortFunc(out, func(a, b Series) int {
		switch {
		case a.Route < b.Route:
			return -1
		case a.Route > b.Route:
			return 1
		}
		return 0
	})
	return out
}
