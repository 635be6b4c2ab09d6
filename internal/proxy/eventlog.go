package proxy

import (
	"encoding/hex"
	"io"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// eventEncoder writes the per-request auth event as one JSON line, in the
// same shape as the slog JSON handler's records, without slog's per-attribute
// overhead: the event log sits on every request.
type eventEncoder struct {
	w    io.Writer
	pool sync.Pool
}

func newEventEncoder(w io.Writer) *eventEncoder {
	return &eventEncoder{w: w, pool: sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}}
}

func (e *eventEncoder) write(ev *Event, now time.Time) {
	bp := e.pool.Get().(*[]byte)
	b := (*bp)[:0]
	lvl := "INFO"
	if ev.Status >= 500 {
		lvl = "WARN"
	}
	b = append(b, `{"time":"`...)
	b = now.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","level":"`...)
	b = append(b, lvl...)
	b = append(b, `","msg":"auth","component":"proxy"`...)
	b = appendField(b, "request_id", ev.RequestID)
	b = appendField(b, "route", ev.Route)
	b = appendField(b, "method", ev.Method)
	b = appendField(b, "path", ev.Path)
	b = append(b, `,"client_ip":"`...)
	b = ev.ClientIP.AppendTo(b)
	b = append(b, '"')
	b = appendField(b, "strategy", ev.Strategy)
	b = appendField(b, "outcome", ev.Outcome.String())
	b = appendField(b, "reason", ev.Reason)
	b = appendField(b, "subject", ev.Subject)
	b = appendField(b, "token_id", ev.TokenID)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(ev.Status), 10)
	b = append(b, `,"duration_us":`...)
	b = strconv.AppendInt(b, now.Sub(ev.Start).Microseconds(), 10)
	if ev.TraceID.IsValid() {
		b = append(b, `,"trace_id":"`...)
		b = hex.AppendEncode(b, ev.TraceID[:])
		b = append(b, '"')
	}
	b = append(b, "}\n"...)
	_, _ = e.w.Write(b)
	*bp = b
	e.pool.Put(bp)
}

func appendField(b []byte, key, val string) []byte {
	b = append(b, ',', '"')
	b = append(b, key...)
	b = append(b, '"', ':')
	return appendJSONString(b, val)
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string: quotes, backslashes and
// control characters escaped, invalid UTF-8 replaced, and <, >, & escaped
// like encoding/json so a log line is safe to embed in HTML viewers.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
