package proxy

// Outcome is what the gateway did with a request: logged with every auth
// event, a label of the request metric, and the audit log's event kind.
type Outcome uint8

// The outcomes. Their names (String) are the "outcome" values of the auth
// event log and the request metric.
const (
	OutcomeNone             Outcome = iota // not decided yet
	OutcomeAllowed                         // authenticated, authorized, forwarded
	OutcomePublic                          // forwarded on a public route
	OutcomeUnauthenticated                 // no credentials: 401, or 302 to login
	OutcomeInvalid                         // an invalid credential: 401
	OutcomeForbidden                       // roles, scopes, cross-origin, untrusted forward-auth caller: 403
	OutcomeRateLimited                     // over the auth-failure limit or the route's quota: 429
	OutcomeAuthUnavailable                 // a strategy or a limit's store failed: 503
	OutcomeBadRequest                      // the path or the request itself is refused: 400, 413
	OutcomeNotFound                        // no route: 404
	OutcomeMethodNotAllowed                // 405
	OutcomeCORSPreflight                   // a preflight answered by the gateway: 204
	OutcomeCORSRefused                     // a preflight refused: 403
	OutcomeEndpoint                        // answered by one of the gateway's own endpoints
)

var outcomeNames = [...]string{
	OutcomeNone:             "",
	OutcomeAllowed:          "allowed",
	OutcomePublic:           "public",
	OutcomeUnauthenticated:  "unauthenticated",
	OutcomeInvalid:          "invalid",
	OutcomeForbidden:        "forbidden",
	OutcomeRateLimited:      "rate_limited",
	OutcomeAuthUnavailable:  "auth_unavailable",
	OutcomeBadRequest:       "bad_request",
	OutcomeNotFound:         "not_found",
	OutcomeMethodNotAllowed: "method_not_allowed",
	OutcomeCORSPreflight:    "cors_preflight",
	OutcomeCORSRefused:      "cors_refused",
	OutcomeEndpoint:         "endpoint",
}

func (o Outcome) String() string {
	if int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return "unknown"
}

// MarshalText writes the outcome's name (explain's JSON).
func (o Outcome) MarshalText() ([]byte, error) { return []byte(o.String()), nil }

// Class groups outcomes for what metrics and the audit log count: the one
// classification both use.
type Class uint8

const (
	// ClassOther is neither an authentication nor a refusal: public
	// routes, no route, wrong method, preflights, the gateway's endpoints.
	ClassOther Class = iota
	// ClassSuccess is an authenticated request that was forwarded.
	ClassSuccess
	// ClassAuthFailure is a request refused for its authentication or
	// authorization (401, 403, a 302 to login, 503 when it cannot be told).
	ClassAuthFailure
	// ClassRateLimited is a request refused by a limit (429).
	ClassRateLimited
	// ClassRefused is a request refused before authentication for its form:
	// a bad path, a body over the limit, a refused CORS preflight.
	ClassRefused
)

// Class says how metrics and the audit log count the outcome.
func (o Outcome) Class() Class {
	switch o {
	case OutcomeAllowed:
		return ClassSuccess
	case OutcomeUnauthenticated, OutcomeInvalid, OutcomeForbidden, OutcomeAuthUnavailable:
		return ClassAuthFailure
	case OutcomeRateLimited:
		return ClassRateLimited
	case OutcomeBadRequest, OutcomeCORSRefused:
		return ClassRefused
	}
	return ClassOther
}

// IsAuthFailure reports a refusal for authentication or authorization.
func (o Outcome) IsAuthFailure() bool { return o.Class() == ClassAuthFailure }

// The reasons the pipeline itself gives ("reason" in the auth event log,
// the metrics and the audit log). Strategies give their own (expired,
// bad_signature, unknown_key, no_credentials, ...).
const (
	ReasonBadPath              = "bad_path"
	ReasonNoRoute              = "no_route"
	ReasonBadHost              = "bad_host"
	ReasonPathCaseMismatch     = "path_case_mismatch"
	ReasonMethod               = "method"
	ReasonCORSPreflightRefused = "cors_preflight_refused"
	ReasonAuthFailures         = "auth_failures"
	ReasonStoreUnavailable     = "store_unavailable"
	ReasonStrategyError        = "strategy_error"
	ReasonCrossOriginRefused   = "cross_origin_refused"
	ReasonMissingRole          = "missing_role"
	ReasonMissingScope         = "missing_scope"
	ReasonRouteQuota           = "route_quota"
	ReasonBodyTooLarge         = "body_too_large"

	// ReasonPolicyDenied: the route's allow_if was false or failed.
	ReasonPolicyDenied = "policy_denied"

	// Refusals of /auth/verify's caller.
	ReasonUntrustedCaller    = "untrusted_forward_auth_caller"
	ReasonBadOriginalRequest = "bad_original_request"
	// Forwarding failures, and a client that went away before the
	// upstream answered.
	ReasonUpstreamUnavailable = "upstream_unavailable"
	ReasonUpstreamTimeout     = "upstream_timeout"
	// Every target of the route's upstreams is down.
	ReasonNoHealthyUpstream = "no_healthy_upstream"
	ReasonClientClosed      = "client_closed"
)
