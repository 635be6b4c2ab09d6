package strategies

import (
	"context"
	"errors"
	"net/http"
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
	Reason   string
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
	// Reason is the first denial reason (or "no_credentials").
	Reason string
}

// Run tries the strategies in order; the first identity wins. A strategy that
// finds no credential of its own, or an invalid one, does not stop the chain:
// a later strategy may still recognise a valid credential (an opaque OAuth2
// token after a jwt strategy). withOutcomes records every step (explain).
func Run(ctx context.Context, chain []Named, r *http.Request, withOutcomes bool) Result {
	var res Result
	for _, n := range chain {
		id, err := n.Strategy.Authenticate(ctx, r)
		var o Outcome
		switch {
		case err == nil && id != nil:
			id.Strategy = n.Name
			res.Identity = id
			if withOutcomes {
				res.Outcomes = append(res.Outcomes, Outcome{Strategy: n.Name, Result: "identity"})
			}
			return res
		case errors.Is(err, ErrNoCredentials):
			o = Outcome{Strategy: n.Name, Result: "no_credentials", Reason: "no_credentials"}
		case errors.Is(err, ErrInvalidCredentials):
			o = Outcome{Strategy: n.Name, Result: "invalid", Reason: reasonOf(err), Err: err}
			res.Invalid = true
		default:
			if err == nil {
				err = errors.New("strategy returned no identity and no error")
			}
			o = Outcome{Strategy: n.Name, Result: "error", Reason: "strategy_error", Err: err}
			if res.Err == nil {
				res.Err = err
			}
		}
		if res.Reason == "" || (res.Reason == "no_credentials" && o.Reason != "no_credentials") {
			res.Reason = o.Reason
		}
		if withOutcomes {
			res.Outcomes = append(res.Outcomes, o)
		}
	}
	if res.Reason == "" {
		res.Reason = "no_credentials"
	}
	return res
}

func reasonOf(err error) string {
	var ie *InvalidError
	if errors.As(err, &ie) {
		return ie.Reason
	}
	return "invalid_credentials"
}
