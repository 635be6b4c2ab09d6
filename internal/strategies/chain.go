package strategies

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/authgateway/authgateway/internal/tracing"
)

// Named is a strategy with its configured name.
type Named struct {
	Name     string
	Strategy Strategy
}

// Outcome is one strategy's result in a chain run, for logs and explain.
type Outcome struct {
	Strategy string
	Result   string // "identity", "no_credentials", "invalid", "error"
	Reason   Reason
	Err      error
}

// Result is the decision of a chain.
type Result struct {
	Identity *Identity
	// Invalid is true when some strategy found an invalid credential (counts
	// as an auth failure).
	Invalid bool
	// Err is the first technical error, when no strategy succeeded.
	Err      error
	Outcomes []Outcome
	// Reason is the first denial reason (or ReasonNoCredentials).
	Reason Reason
}

// Run tries the strategies in order; the first identity wins. A strategy that
// finds no credential of its own, or an invalid one, does not stop the chain:
// a later strategy may still recognise a valid credential (an opaque OAuth2
// token after a jwt strategy). withOutcomes records every step (explain).
func Run(ctx context.Context, chain []Named, r *http.Request, withOutcomes bool) Result {
	var res Result
	// Within a recorded trace each strategy tried is a span of its own.
	var tracer trace.Tracer
	if sp := trace.SpanFromContext(ctx); sp.IsRecording() {
		tracer = sp.TracerProvider().Tracer(tracing.InstrumentationName)
	}
	for _, n := range chain {
		var id *Identity
		var err error
		if tracer != nil {
			id, err = authenticateTraced(ctx, tracer, n, r)
		} else {
			id, err = n.Strategy.Authenticate(ctx, r)
		}
		var o Outcome
		switch {
		case err == nil && id != nil && !cleanIdentity(id):
			o := Outcome{Strategy: n.Name, Result: "invalid", Reason: ReasonBadIdentityValue}
			res.Invalid = true
			if res.Reason == "" || res.Reason == ReasonNoCredentials {
				res.Reason = o.Reason
			}
			if withOutcomes {
				res.Outcomes = append(res.Outcomes, o)
			}
			continue
		case err == nil && id != nil:
			id.Strategy = n.Name
			res.Identity = id
			if withOutcomes {
				res.Outcomes = append(res.Outcomes, Outcome{Strategy: n.Name, Result: "identity"})
			}
			return res
		case errors.Is(err, ErrNoCredentials):
			o = Outcome{Strategy: n.Name, Result: "no_credentials", Reason: ReasonNoCredentials}
		case errors.Is(err, ErrInvalidCredentials):
			o = Outcome{Strategy: n.Name, Result: "invalid", Reason: reasonOf(err), Err: err}
			res.Invalid = true
			if ie := (*InvalidError)(nil); errors.As(err, &ie) && ie.Final {
				res.Reason = o.Reason
				if withOutcomes {
					res.Outcomes = append(res.Outcomes, o)
				}
				return res
			}
		default:
			if err == nil {
				err = errors.New("strategy returned no identity and no error")
			}
			o = Outcome{Strategy: n.Name, Result: "error", Reason: ReasonStrategyError, Err: err}
			if res.Err == nil {
				res.Err = err
			}
		}
		if res.Reason == "" || (res.Reason == ReasonNoCredentials && o.Reason != ReasonNoCredentials) {
			res.Reason = o.Reason
		}
		if withOutcomes {
			res.Outcomes = append(res.Outcomes, o)
		}
	}
	if res.Reason == "" {
		res.Reason = ReasonNoCredentials
	}
	return res
}

// authenticateTraced runs one strategy in a span that records its result
// and denial reason (never the credential, nor the error's text, which may
// quote what the client sent).
func authenticateTraced(ctx context.Context, tracer trace.Tracer, n Named, r *http.Request) (*Identity, error) {
	ctx, span := tracer.Start(ctx, "strategy "+n.Name, trace.WithAttributes(attribute.String("authgateway.strategy", n.Name)))
	defer span.End()
	id, err := n.Strategy.Authenticate(ctx, r)
	result, reason := "identity", Reason("")
	switch {
	case err == nil && id != nil:
	case errors.Is(err, ErrNoCredentials):
		result, reason = "no_credentials", ReasonNoCredentials
	case errors.Is(err, ErrInvalidCredentials):
		result, reason = "invalid", reasonOf(err)
	default:
		result, reason = "error", ReasonStrategyError
		span.SetStatus(codes.Error, string(reason))
	}
	span.SetAttributes(attribute.String("authgateway.result", result))
	if reason != "" {
		span.SetAttributes(attribute.String("authgateway.reason", string(reason)))
	}
	return id, err
}

func reasonOf(err error) Reason {
	var ie *InvalidError
	if errors.As(err, &ie) {
		return ie.Reason
	}
	return ReasonInvalidCredentials
}

// cleanIdentity makes an identity's values safe to put in headers and keeps
// the gateway's decision and the upstream's reading of them the same: roles
// are sent comma-separated and scopes space-separated, so a role with a comma
// or a scope with a space would read as two to the upstream while the gateway
// saw one. Such values are dropped. A value with control characters cannot be
// sent at all (header injection), and a subject, email or client id with
// space around it would be one value for the decision, the log and the quota
// key and another in the header (HTTP trims it, and so do upstreams): the
// identity is refused (false).
func cleanIdentity(id *Identity) bool {
	for _, v := range []string{id.Subject, id.Email, id.ClientID} {
		if hasControl(v) || spaceAround(v) {
			return false
		}
	}
	if slices.ContainsFunc(id.Roles, hasControl) || slices.ContainsFunc(id.Scopes, hasControl) {
		return false
	}
	if id.Subject == "" {
		return false
	}
	id.Roles = keepClean(id.Roles, ",")
	id.Scopes = keepClean(id.Scopes, ",")
	return true
}

// keepClean returns vals without the empty ones and those holding
// whitespace, control characters or any byte of sep. It allocates only when
// something is dropped.
func keepClean(vals []string, sep string) []string {
	bad := func(v string) bool {
		if v == "" || strings.ContainsAny(v, sep) {
			return true
		}
		for _, r := range v {
			if unicode.IsSpace(r) || unicode.IsControl(r) {
				return true
			}
		}
		return false
	}
	if !slices.ContainsFunc(vals, bad) {
		return vals
	}
	out := make([]string, 0, len(vals))
	for _, v := range vals {
		if !bad(v) {
			out = append(out, v)
		}
	}
	return out
}

// spaceAround reports whether s begins or ends with white space: Unicode's
// (unicode.IsSpace: what Go, .NET and Java's strip() trim), and the zero-width
// characters JavaScript's trim() or older Unicode count as space (U+FEFF,
// U+180E, U+200B).
func spaceAround(s string) bool {
	if s == "" {
		return false
	}
	first, _ := utf8.DecodeRuneInString(s)
	last, _ := utf8.DecodeLastRuneInString(s)
	return isSpace(first) || isSpace(last)
}

func isSpace(r rune) bool {
	return unicode.IsSpace(r) || r == '\uFEFF' || r == '\u180E' || r == '\u200B'
}

func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return true
		}
	}
	return false
}
