// Package jwscheck refuses compact JWS tokens (JWTs) that can be read in
// more than one way, or that demand an extension the gateway does not
// implement. Signature libraries verify the bytes; this package makes sure
// the bytes have one meaning:
//
//   - Duplicate members, at any depth of the JOSE header or the claims set.
//     encoding/json (golang-jwt, go-jose, go-oidc) keeps the last of
//     {"sub":"alice","sub":"root"}; other readers keep the first. RFC 7515
//     §5.2 and RFC 7519 §4 let a parser refuse such a token; the gateway
//     does (RFC 8725: one reading only).
//   - Member names that differ only in case (Unicode simple folding, as
//     encoding/json matches struct fields: "sub", "SUB", "ſub"): go-oidc
//     decodes ID tokens into a struct, which reads them as one member, while
//     a map keeps them apart.
//   - A "crit" header member (RFC 7515 §4.1.11): the gateway understands no
//     JWS extension, so a token that makes one critical is invalid. go-jose
//     itself accepts crit ["b64"] (RFC 7797); golang-jwt ignores crit.
//   - Anything that is not exactly one JSON value, such as trailing data
//     after the claims object.
//
// Check runs after the signature verified (on a verified-token cache miss),
// so only a key holder's tokens reach it; it costs a few percent of an RS256
// verification.
package jwscheck

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/authgateway/authgateway/internal/strategies"
)

// Errors of Check; Reason maps them to the gateway's denial reasons.
var (
	ErrDuplicateMember = errors.New("jws: duplicate JSON member")
	ErrCrit            = errors.New("jws: crit header")
	ErrMalformed       = errors.New("jws: malformed header or payload")
)

// Reason is the denial reason for an error of Check: duplicate_member,
// unsupported_crit or malformed_token.
func Reason(err error) strategies.Reason {
	switch {
	case errors.Is(err, ErrDuplicateMember):
		return strategies.ReasonDuplicateMember
	case errors.Is(err, ErrCrit):
		return strategies.ReasonUnsupportedCrit
	}
	return strategies.ReasonMalformedToken
}

// maxDepth bounds nesting: real headers and claims sets are a few levels
// deep, and the scanner recurses once per level.
const maxDepth = 32

// Check checks the header and payload of the compact JWS raw
// (header.payload.signature).
func Check(raw string) error {
	head, rest, ok := strings.Cut(raw, ".")
	payload, _, ok2 := strings.Cut(rest, ".")
	if !ok || !ok2 {
		return ErrMalformed
	}
	// Three allocations, sized once: the decoded segments (one after the
	// other), the folded names (never longer than the text), their spans.
	n := base64.RawURLEncoding.DecodedLen(max(len(head), len(payload)))
	b, err := decodeSegment(make([]byte, 0, n), head)
	if err != nil {
		return err
	}
	s := scanner{folded: make([]byte, 0, n), names: make([]span, 0, 32)}
	if err := s.check(b, true); err != nil {
		return err
	}
	if b, err = decodeSegment(b[:0], payload); err != nil {
		return err
	}
	return s.check(b, false)
}

// decodeSegment appends the base64url segment seg, decoded, to dst. Padding
// is tolerated as go-jose tolerates it.
func decodeSegment(dst []byte, seg string) ([]byte, error) {
	out, err := base64.RawURLEncoding.AppendDecode(dst, []byte(strings.TrimRight(seg, "=")))
	if err != nil {
		return nil, ErrMalformed
	}
	return out, nil
}

// scanner validates one JSON text (RFC 8259, as encoding/json accepts it)
// and finds duplicate member names. The folded names of the objects being
// scanned live in one buffer, reused from the header to the payload.
type scanner struct {
	b      []byte
	i      int
	folded []byte // folded names of the open objects' members
	names  []span // their positions in folded, object after object
	header bool   // a JOSE header: crit is refused at the top level
}

type span struct{ from, to int }

func (s *scanner) check(b []byte, header bool) error {
	s.b, s.i, s.header = b, 0, header
	s.folded, s.names = s.folded[:0], s.names[:0]
	if err := s.value(0); err != nil {
		return err
	}
	s.space()
	if s.i != len(s.b) {
		return ErrMalformed
	}
	return nil
}

func (s *scanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) value(depth int) error {
	s.space()
	if s.i >= len(s.b) {
		return ErrMalformed
	}
	switch c := s.b[s.i]; {
	case c == '{':
		return s.object(depth + 1)
	case c == '[':
		return s.array(depth + 1)
	case c == '"':
		_, err := s.str()
		return err
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case c == '-' || '0' <= c && c <= '9':
		return s.number()
	}
	return ErrMalformed
}

func (s *scanner) literal(word string) error {
	if !bytes.HasPrefix(s.b[s.i:], []byte(word)) {
		return ErrMalformed
	}
	s.i += len(word)
	return nil
}

func (s *scanner) number() error {
	if s.b[s.i] == '-' {
		s.i++
	}
	switch {
	case s.i < len(s.b) && s.b[s.i] == '0':
		s.i++
	case s.digits() == 0:
		return ErrMalformed
	}
	if s.i < len(s.b) && s.b[s.i] == '.' {
		s.i++
		if s.digits() == 0 {
			return ErrMalformed
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if s.digits() == 0 {
			return ErrMalformed
		}
	}
	return nil
}

func (s *scanner) digits() int {
	n := 0
	for s.i < len(s.b) && '0' <= s.b[s.i] && s.b[s.i] <= '9' {
		s.i++
		n++
	}
	return n
}

// str scans a string at s.i (its opening quote) and reports whether it is
// plain: printable ASCII without escapes, so that its bytes are its value.
func (s *scanner) str() (plain bool, err error) {
	s.i++
	plain = true
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return plain, nil
		case c < 0x20:
			return false, ErrMalformed
		case c == '\\':
			plain = false
			s.i++
			if s.i >= len(s.b) {
				return false, ErrMalformed
			}
			switch s.b[s.i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i++
			case 'u':
				if s.i+4 >= len(s.b) || !hex4(s.b[s.i+1:s.i+5]) {
					return false, ErrMalformed
				}
				s.i += 5
			default:
				return false, ErrMalformed
			}
		default:
			plain = plain && c < utf8.RuneSelf
			s.i++
		}
	}
	return false, ErrMalformed
}

func hex4(b []byte) bool {
	for _, c := range b {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

func (s *scanner) array(depth int) error {
	if depth > maxDepth {
		return ErrMalformed
	}
	s.i++ // [
	s.space()
	if s.i < len(s.b) && s.b[s.i] == ']' {
		s.i++
		return nil
	}
	for {
		if err := s.value(depth); err != nil {
			return err
		}
		s.space()
		if s.i >= len(s.b) {
			return ErrMalformed
		}
		switch s.b[s.i] {
		case ',':
			s.i++
		case ']':
			s.i++
			return nil
		default:
			return ErrMalformed
		}
	}
}

func (s *scanner) object(depth int) error {
	if depth > maxDepth {
		return ErrMalformed
	}
	s.i++ // {
	first, firstByte := len(s.names), len(s.folded)
	s.space()
	if s.i < len(s.b) && s.b[s.i] == '}' {
		s.i++
		return nil
	}
	for {
		s.space()
		if s.i >= len(s.b) || s.b[s.i] != '"' {
			return ErrMalformed
		}
		start := s.i
		plain, err := s.str()
		if err != nil {
			return err
		}
		if err := s.member(s.b[start:s.i], plain, depth, first); err != nil {
			return err
		}
		s.space()
		if s.i >= len(s.b) || s.b[s.i] != ':' {
			return ErrMalformed
		}
		s.i++
		if err := s.value(depth); err != nil {
			return err
		}
		s.space()
		if s.i >= len(s.b) {
			return ErrMalformed
		}
		switch s.b[s.i] {
		case ',':
			s.i++
			continue
		case '}':
			s.i++
		default:
			return ErrMalformed
		}
		break
	}
	s.names, s.folded = s.names[:first], s.folded[:firstByte]
	return nil
}

// linearNames is how many members an object may have before a new name is
// checked against the others by sorting rather than one by one.
const linearNames = 16

// member records the name quoted (with its quotes) of an object whose names
// start at names[first], refusing one that folds like an earlier one.
func (s *scanner) member(quoted []byte, plain bool, depth, first int) error {
	from := len(s.folded)
	if plain {
		for _, c := range quoted[1 : len(quoted)-1] {
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			s.folded = append(s.folded, c)
		}
	} else {
		// Escapes, non-ASCII, invalid UTF-8: the name is whatever
		// encoding/json makes of it (it replaces invalid bytes and lone
		// surrogates with U+FFFD).
		var name string
		if json.Unmarshal(quoted, &name) != nil {
			return ErrMalformed
		}
		s.folded = appendFolded(s.folded, name)
	}
	name := s.folded[from:]
	if s.header && depth == 1 && string(name) == "CRIT" {
		return ErrCrit
	}
	others := s.names[first:]
	at := len(others)
	if len(others) < linearNames {
		for _, o := range others {
			if bytes.Equal(s.folded[o.from:o.to], name) {
				return ErrDuplicateMember
			}
		}
	} else {
		// From here on this object's names are kept sorted (sorted once,
		// then inserted in place): a binary search finds a duplicate.
		if len(others) == linearNames {
			sortSpans(s.folded, others)
		}
		var found bool
		if at, found = search(s.folded, others, name); found {
			return ErrDuplicateMember
		}
	}
	s.names = slices.Insert(s.names, first+at, span{from, len(s.folded)})
	return nil
}

// sortSpans sorts the linearNames spans of an object by their folded bytes
// (insertion sort: there are few, and it happens once per large object).
func sortSpans(folded []byte, spans []span) {
	for i := 1; i < len(spans); i++ {
		for j := i; j > 0 && bytes.Compare(folded[spans[j-1].from:spans[j-1].to], folded[spans[j].from:spans[j].to]) > 0; j-- {
			spans[j-1], spans[j] = spans[j], spans[j-1]
		}
	}
}

// search finds name among sorted spans of folded: its index, or where it
// would go.
func search(folded []byte, spans []span, name []byte) (int, bool) {
	lo, hi := 0, len(spans)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		switch c := bytes.Compare(folded[spans[mid].from:spans[mid].to], name); {
		case c == 0:
			return mid, true
		case c < 0:
			lo = mid + 1
		default:
			hi = mid
		}
	}
	return lo, false
}

// appendFolded appends name folded as encoding/json folds names when it
// matches them to struct fields: ASCII upper case, and every other rune
// replaced by the smallest rune of its simple fold orbit.
func appendFolded(dst []byte, name string) []byte {
	for _, r := range name {
		switch {
		case 'a' <= r && r <= 'z':
			r -= 'a' - 'A'
		case r >= utf8.RuneSelf:
			r = foldRune(r)
		}
		dst = utf8.AppendRune(dst, r)
	}
	return dst
}

func foldRune(r rune) rune {
	for {
		r2 := unicode.SimpleFold(r)
		if r2 <= r {
			return r2
		}
		r = r2
	}
}
