package proxy

import (
	"net/http"
	"time"

	"github.com/authgateway/authgateway/internal/policy"
)

// policyResult is what the route's allow_if said for a request.
type policyResult struct {
	ran     bool
	allowed bool
	err     error // the evaluation failed: denied
}

// checkPolicy evaluates the route's allow_if over the request and its
// identity: false or an evaluation error (a missing claim, a bad address,
// the cost limit) is 403. The error's text is kept for explain only: it
// may quote a value the client sent.
func (g *Gateway) checkPolicy(r *http.Request, st *reqState) Decision {
	st.policyIn = policy.Input{
		Identity: st.identity, Method: r.Method, Path: st.path, Host: r.Host,
		ClientIP: st.ev.ClientIP, Header: r.Header, RawQuery: st.query, Now: time.Now(),
	}
	ok, err := st.route.Policy.Eval(&st.policyIn)
	st.policy = policyResult{ran: true, allowed: ok, err: err}
	if ok {
		return Decision{}
	}
	return refuse(http.StatusForbidden, OutcomeForbidden, ReasonPolicyDenied, "forbidden by policy")
}

// policyView is explain's account of the policy: the expression and its
// result for the request.
func (st *reqState) policyView() *PolicyView {
	rt := st.route
	if rt == nil || rt.Policy == nil {
		return nil
	}
	v := &PolicyView{AllowIf: rt.Policy.Source(), Result: "not evaluated"}
	switch p := st.policy; {
	case !p.ran:
	case p.err != nil:
		v.Result, v.Error = "error", p.err.Error()
	case p.allowed:
		v.Result = "true"
	default:
		v.Result = "false"
	}
	return v
}

// PolicyView is the route's allow_if and what it gave for the request:
// "true", "false", "error" (with Error), or "not evaluated" when an
// earlier step decided.
type PolicyView struct {
	AllowIf string `json:"allow_if"`
	Result  string `json:"result"`
	Error   string `json:"error,omitempty"`
}
